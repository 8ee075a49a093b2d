"""Who is signed in. Development and demo: a login form against the users table. Production:
OpenID Connect through `st.login` only, the identity mapped to a user by the service layer; the
app refuses to start in production without an `[auth]` section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st
from sqlalchemy import Engine

from recon.db.tenancy import admin_session
from recon.errors import ReconError
from recon.review.access import Actor, load_actor
from recon.settings import Settings, load_settings
from ui import state
from ui.components import plain

AUTH_SECTION = "auth"


@dataclass(frozen=True)
class SignedIn:
    """The person using this session, as the database knows them now, and their tenants."""

    actor: Actor
    tenants: tuple[str, ...]


def _auth_config() -> Mapping[str, Any] | None:
    try:
        section = st.secrets.get(AUTH_SECTION)
    except (FileNotFoundError, KeyError, ValueError):  # no secrets.toml at all
        return None
    return section if isinstance(section, Mapping) else None


def production_problem(settings: Settings | None = None) -> str | None:
    """Why the app must not serve in production (no `[auth]` with a cookie secret), or None."""
    current = settings or load_settings()
    if not current.is_production:
        return None
    config = _auth_config()
    if not config or not config.get("cookie_secret") or not config.get("redirect_uri"):
        return (
            "the ops UI does not start in production without OpenID Connect: `recon ui` writes "
            "[auth] into .streamlit/secrets.toml from Vault (ui_cookie_secret) and the provider "
            "settings; see the README"
        )
    return None


def identity_claims() -> dict[str, object] | None:
    """The identity provider's claims of the signed-in person (st.user), or None."""
    if not st.user.is_logged_in:
        return None
    return {key: st.user[key] for key in st.user}


def _oidc_email(engine: Engine) -> str | None:
    claims = identity_claims()
    if claims is None:
        return None
    from recon.review.users import actor_from_identity

    cached = st.session_state.get(state.USER_KEY)
    if isinstance(cached, str) and cached:
        return cached
    actor = actor_from_identity(engine, claims)
    st.session_state[state.USER_KEY] = actor.email
    return actor.email


def current_user(engine: Engine, settings: Settings | None = None) -> SignedIn | None:
    """The signed-in person with role and tenants re-read from the database, or None."""
    current = settings or load_settings()
    try:
        email = _oidc_email(engine) if current.is_production else state.signed_in_email()
    except ReconError as exc:  # an identity the mapping refuses: say so, offer another sign-in
        st.session_state.pop(state.USER_KEY, None)
        st.error(plain(exc))
        st.button("Sign out of the identity provider", on_click=st.logout)
        return None
    if email is None:
        return None
    from recon.review.users import granted_tenants

    try:
        with admin_session(engine) as session:
            actor = load_actor(session, email)
        tenants = tuple(granted_tenants(engine, actor))
    except ReconError as exc:  # disabled or removed since signing in
        sign_out()
        st.error(plain(exc))
        return None
    return SignedIn(actor, tenants)


def login_screen(engine: Engine, settings: Settings | None = None) -> None:
    """The sign-in page: the identity provider in production, else an email/password form."""
    current = settings or load_settings()
    st.title("recon ops")
    if current.is_production:
        st.button("Sign in with your identity provider", on_click=st.login)
        return
    with st.form("login"):
        email = st.text_input("Email")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        from recon.review.users import authenticate

        try:
            actor = authenticate(engine, email, password, settings=current)
        except ReconError as exc:
            st.error(plain(exc))
            return
        st.session_state[state.USER_KEY] = actor.email
        st.rerun()


def sign_out() -> None:
    """Forget who is signed in (and, with OIDC, the identity cookie)."""
    for key in (state.USER_KEY, state.TENANT_KEY):
        st.session_state.pop(key, None)
    if load_settings().is_production and st.user.is_logged_in:
        st.logout()
