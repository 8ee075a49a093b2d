"""An identity the OIDC mapping refuses (not mapped, no user, disabled) is a sentence on the page
and a way to sign out of the identity provider, never an uncaught exception; a mapped identity
signs in as its user."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from tests.ui.apptest import TIMEOUT, texts

ISSUER = "https://id.example.test"
MAPPING = f"""
[[identity]]
issuer = "{ISSUER}"
group = "recon-finance"
role = "finance"
tenants = ["acme"]
"""


def _signed_in_page() -> None:
    """What the app does first in production: who is signed in, from the provider's claims."""
    import os
    from types import SimpleNamespace

    import streamlit as st

    from recon.db.engine import make_engine
    from ui import auth

    claims = st.session_state["claims"]
    auth.identity_claims = lambda: claims  # type: ignore[assignment]
    engine = make_engine(os.environ["RECON_DATABASE_URL"])
    who = auth.current_user(engine, SimpleNamespace(is_production=True))  # type: ignore[arg-type]
    st.markdown(f"signed in: {who.actor.email if who else 'nobody'}")


def _open(claims: dict[str, object]) -> AppTest:
    app = AppTest.from_function(_signed_in_page, default_timeout=TIMEOUT)
    app.session_state["claims"] = claims
    return app.run()


@pytest.fixture
def mapped(app_db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING, encoding="utf-8")
    monkeypatch.setenv("RECON_OIDC_MAPPING", str(path))
    from recon.settings import get_settings

    get_settings.cache_clear()
    return app_db


@pytest.mark.parametrize(
    ("claims", "said"),
    [
        ({"iss": ISSUER, "email": "stranger@elsewhere.test", "groups": []}, "not mapped"),
        (
            {"iss": ISSUER, "email": "newcomer@acme.test", "groups": ["recon-finance"]},
            "has no user here",
        ),
    ],
)
def test_a_refused_identity_is_a_sentence_and_a_way_out(
    mapped: Engine, claims: dict[str, object], said: str
) -> None:
    app = _open(claims)
    assert not app.exception, app.exception
    assert said in texts(app) and "signed in: nobody" in texts(app)
    assert [b.label for b in app.button] == ["Sign out of the identity provider"]


def test_a_mapped_identity_signs_in_as_its_user(mapped: Engine) -> None:
    from tests.ui.seed import FINANCE

    app = _open({"iss": ISSUER, "email": FINANCE, "groups": ["recon-finance"]})
    assert not app.exception, app.exception
    assert f"signed in: {FINANCE}" in texts(app) and not app.error
