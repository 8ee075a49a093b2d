"""Canary secrets pushed through every logging path never reach a sink."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from recon.logs import configure_logging
from recon.redaction import MASK, redact, register_secret


@pytest.fixture
def canary() -> str:
    value = f"CANARY-{uuid.uuid4()}"
    register_secret(value)
    return value


@pytest.fixture
def captured(request: pytest.FixtureRequest) -> io.StringIO:
    stream = io.StringIO()
    handler = configure_logging(
        "DEBUG", request.param if hasattr(request, "param") else "human", stream
    )
    yield stream
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize("captured", ["human", "json"], indirect=True)
def test_canary_never_reaches_a_log_sink(canary: str, captured: io.StringIO) -> None:
    log = logging.getLogger("recon.test.child")
    log.info("token is %s", canary)
    log.warning(f"inline {canary}")
    log.error("dict arg %(secret)s", {"secret": canary})
    try:
        raise RuntimeError(f"failed with key={canary}")
    except RuntimeError:
        log.exception("call failed")
    try:
        raise ValueError("outer") from KeyError(canary)
    except ValueError:
        log.error("chained", exc_info=True)
    log.info("stack", stack_info=True, extra={"note": "x"})
    output = captured.getvalue()
    assert canary not in output
    assert output.count(MASK) >= 5
    assert "call failed" in output and "RuntimeError" in output


def test_json_lines_are_valid_json(canary: str) -> None:
    stream = io.StringIO()
    handler = configure_logging("INFO", "json", stream)
    try:
        logging.getLogger("recon.test").info("hello %s", canary)
    finally:
        logging.getLogger().removeHandler(handler)
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["message"] == f"hello {MASK}"
    assert entry["level"] == "INFO" and entry["logger"] == "recon.test"


def test_handlers_added_by_libraries_are_redacted_too(canary: str) -> None:
    stream = io.StringIO()
    library_logger = logging.getLogger("some.library")
    library_logger.propagate = False
    library_handler = logging.StreamHandler(stream)
    library_logger.addHandler(library_handler)
    handler = configure_logging("INFO", "human", io.StringIO())
    try:
        library_logger.warning("leaking %s", canary)
    finally:
        library_logger.removeHandler(library_handler)
        logging.getLogger().removeHandler(handler)
        library_logger.propagate = True
    assert canary not in stream.getvalue()


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("GET https://api.example/x?token=abc123def&page=2", "abc123def"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
        ("{'X-Vault-Token': 'hvs.CAESIJ'}", "hvs.CAESIJ"),
        ("postgresql://recon:hunter22@db:5432/recon", "hunter22"),
        ("using sk_test_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
        ("secret whsec_abcdefgh12345678 here", "abcdefgh12345678"),
    ],
)
def test_credential_shapes_are_masked_without_registration(text: str, leak: str) -> None:
    assert leak not in redact(text)


def test_short_values_are_not_registered() -> None:
    register_secret("ab")
    assert redact("a b ab") == "a b ab"


def test_a_handler_added_after_setup_never_sees_a_secret(canary: str) -> None:
    """No `configure_logging` at all, handler added last: the record is masked at creation."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("recon.test.late")
    logger.addHandler(handler)
    try:
        logger.warning("token %s refused", canary)
        try:
            raise RuntimeError(canary)
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert canary not in stream.getvalue()
    assert f"token {MASK} refused" in stream.getvalue()


def test_positional_arguments_survive_masking(canary: str) -> None:
    """Formatters that unpack `args` (uvicorn's access log) still get a tuple."""
    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s"',
        ("1.2.3.4", "GET", canary),
        None,
    )
    assert record.args == ("1.2.3.4", "GET", MASK)
    assert canary not in record.getMessage()
    untouched = logging.getLogger("x").makeRecord(
        "x", logging.INFO, __file__, 1, "%s", ("a",), None
    )
    assert untouched.args == ("a",) and untouched.msg == "%s"
