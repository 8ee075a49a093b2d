"""The ops UI's router: sign-in gate, tenant picker, then the pages the user's role may see.

Run it with `recon ui` (or `streamlit run ui/app.py`). A page left out of `st.navigation` cannot be
reached, so the role decides the menu; every service still checks the role and grant itself."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from recon.errors import ReconError
from recon.review.access import ROLE_PERMISSIONS, Permission
from recon.settings import load_settings
from ui import auth, state
from ui.components import plain

HERE = Path(__file__).parent


def _page(name: str, title: str, icon: str) -> st.Page:
    return st.Page(str(HERE / "pages" / f"{name}.py"), title=title, icon=icon, url_path=name)


def _pages(permissions: frozenset[Permission]) -> dict[str, list[st.Page]]:
    sections = {
        "Finance": [
            _page("overview", "Overview", ":material/dashboard:"),
            _page("exceptions", "Exceptions", ":material/rule:"),
            _page("transactions", "Transactions", ":material/payments:"),
            _page("invoices", "Invoices", ":material/receipt_long:"),
            _page("runs", "Runs", ":material/sync:"),
        ],
        "Audit": [
            _page("reports", "Reports", ":material/summarize:"),
            _page("audit_log", "Audit log", ":material/verified:"),
        ],
    }
    if Permission.MANAGE in permissions:
        sections["Admin"] = [
            _page("users", "Users", ":material/group:"),
            _page("connections", "Connections", ":material/account_balance:"),
        ]
    return sections


def _sidebar(user: auth.SignedIn) -> None:
    with st.sidebar:
        st.caption(plain(f"Signed in as {user.actor.email} ({user.actor.role.value})"))
        if not user.tenants:
            st.warning("You have no tenant yet: ask an admin to grant you one.")
        else:
            current = st.session_state.get(state.TENANT_KEY)
            index = user.tenants.index(current) if current in user.tenants else 0
            st.session_state[state.TENANT_KEY] = st.selectbox(
                "Tenant", user.tenants, index=index, key="tenant_picker"
            )
        if st.button("Sign out"):
            auth.sign_out()
            st.rerun()


def main() -> None:
    """Gate, sidebar, navigation."""
    st.set_page_config(
        page_title="recon ops", page_icon=":material/account_balance:", layout="wide"
    )
    settings = load_settings()
    problem = auth.production_problem(settings)
    if problem:
        st.error(problem)
        st.stop()
    try:
        engine = state.engine()
    except ReconError as exc:  # schema not at head, a bad database URL: one sentence
        st.error(plain(exc))
        st.stop()
    user = auth.current_user(engine, settings)
    if user is None:
        auth.login_screen(engine, settings)
        st.stop()
    st.session_state[state.ROLE_KEY] = user.actor.role.value
    _sidebar(user)
    if not user.tenants:
        st.stop()
    navigation = st.navigation(_pages(ROLE_PERMISSIONS[user.actor.role]))
    navigation.run()


main()
