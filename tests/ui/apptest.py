"""Running the ops UI under `streamlit.testing.v1.AppTest` against a seeded SQLite database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from recon.settings import get_settings
from ui import state

APP = Path(__file__).resolve().parents[2] / "ui" / "app.py"
TIMEOUT = 120  # a loaded CI machine imports pandas/altair slowly; not a performance goal


def point_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Make the app's settings name the test database."""
    monkeypatch.setenv("RECON_DATABASE_URL", url)
    get_settings.cache_clear()
    state._runtime.clear()


def open_app(email: str | None, page: str | None = None, tenant: str = "acme") -> AppTest:
    """The app as `email` sees it (signed in as the login form would leave it), on `page`."""
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if email is not None:
        app.session_state[state.USER_KEY] = email
        app.session_state[state.TENANT_KEY] = tenant
    app.run()
    if page is not None:
        app.switch_page(f"pages/{page}.py").run()
    return app


def unescaped(markdown: object) -> str:
    """The text a person reads from Markdown the UI escaped with `ui.components.plain`."""
    return re.sub(r"\\(.)", r"\1", str(markdown))


def texts(app: AppTest) -> str:
    """Everything the page says in markdown, titles, captions, metrics and alerts, as one text."""
    parts: list[str] = []
    for group in (
        app.title,
        app.header,
        app.subheader,
        app.markdown,
        app.caption,
        app.info,
        app.error,
        app.success,
        app.warning,
        app.text,
    ):
        parts.extend(unescaped(element.value) for element in group)
    parts.extend(f"{m.label}: {m.value}" for m in app.metric)
    return "\n".join(parts)
