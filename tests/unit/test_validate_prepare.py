"""`tasks.validate.prepare` builds the GX context once, in the background, and never blocks."""

from __future__ import annotations

import threading

import pytest

from tasks import validate


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """No context and no warm-up yet; `_gx_context` replaced by a recorder."""
    built: list[str] = []
    monkeypatch.setattr(validate, "_context", None)
    monkeypatch.setattr(validate, "_warming", None)
    monkeypatch.setattr(
        validate, "_gx_context", lambda: built.append(threading.current_thread().name)
    )
    return built


def test_prepare_builds_the_context_once_in_a_background_thread(fresh: list[str]) -> None:
    for _ in range(4):  # every source of a run calls it
        validate.prepare()
    assert validate._warming is not None
    validate._warming.join()
    assert fresh == ["gx-context"]


def test_prepare_does_not_wait_for_a_build_in_progress(fresh: list[str]) -> None:
    """The build holds the context lock for seconds: prepare must not take that lock."""
    with validate._context_lock:
        validate.prepare()
        validate.prepare()  # returns at once although the lock is held
    assert validate._warming is not None
    validate._warming.join()
    assert fresh == ["gx-context"]


def test_a_failed_warm_up_is_logged_and_left_to_the_first_validation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(validate, "_context", None)
    monkeypatch.setattr(validate, "_warming", None)

    def broken() -> None:
        raise RuntimeError("no GX here")

    monkeypatch.setattr(validate, "_gx_context", broken)
    validate.prepare()
    assert validate._warming is not None
    validate._warming.join()
    assert validate._context is None
    assert "ahead of time failed" in caplog.text
