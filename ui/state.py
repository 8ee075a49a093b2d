"""What a UI session holds: the engine (shared, never data), who is signed in, which tenant.

Data is never cached across users: every cached read takes the acting user's email and the
tenant's data version as part of its key (see `ui.components.cached`)."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING

import streamlit as st
from sqlalchemy import Engine

if TYPE_CHECKING:
    from connectors.runtime import Runtime

USER_KEY = "ui_user_email"
TENANT_KEY = "ui_tenant"
ROLE_KEY = "ui_role"


@st.cache_resource(show_spinner=False)
def _runtime() -> object:
    from connectors.runtime import Runtime  # installs the Vault store the secrets resolve from

    return Runtime()


def runtime() -> Runtime:
    """The process's settings, engines and secrets resolver (one per server process)."""
    from connectors.runtime import Runtime

    found = _runtime()
    assert isinstance(found, Runtime)
    return found


def engine() -> Engine:
    """The application engine, after the schema gate (at head; on PostgreSQL the app role)."""
    return runtime().checked_engine()


def signed_in_email() -> str | None:
    """The email the session signed in as (set only by `ui.auth`), or None."""
    value = st.session_state.get(USER_KEY)
    return value if isinstance(value, str) and value else None


def tenant() -> str:
    """The tenant chosen in the sidebar (the router stops before pages when there is none)."""
    value = st.session_state.get(TENANT_KEY)
    if not isinstance(value, str) or not value:
        st.info("Choose a tenant in the sidebar.")
        st.stop()
    return value


def acting() -> str:
    """The signed-in user's email, as every service call names the person acting."""
    email = signed_in_email()
    if email is None:
        st.stop()
    return email


def default_period(days: int = 30) -> tuple[dt.date, dt.date]:
    """The last `days` days up to the tenant's latest booking (today when it has none)."""
    from recon.errors import ReconError
    from recon.review.overview import latest_booking

    end = dt.datetime.now(dt.UTC).date()
    email, chosen = signed_in_email(), st.session_state.get(TENANT_KEY)
    if email and isinstance(chosen, str):
        with contextlib.suppress(ReconError):  # the page's own service call says why
            end = latest_booking(engine(), email, chosen) or end
    return end - dt.timedelta(days=days - 1), end


def can(permission: str) -> bool:
    """Whether the signed-in role has `permission` (only to hide widgets: services decide)."""
    from recon.review.access import ROLE_PERMISSIONS, Permission, Role

    role = st.session_state.get(ROLE_KEY)
    return role in set(Role) and Permission(permission) in ROLE_PERMISSIONS[Role(role)]
