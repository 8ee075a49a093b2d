"""Users (admins): who may sign in, with which role and tenants; add, change a role, grant,
revoke, disable. Every control is one service call, which checks the acting admin itself."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from recon.errors import ReconError
from recon.review import users as service
from recon.review.access import Role
from ui import actions, components, state

st.title("Users")
engine, me = state.engine(), state.acting()
actions.show_flash()
people = components.call(service.list_users, engine, me)
if people is None:
    st.stop()
st.dataframe(
    pd.DataFrame(
        [
            {
                "email": u.email,
                "name": u.display_name,
                "role": u.role.value,
                "active": u.active,
                "tenants": ", ".join(u.tenants),
                "last sign-in": u.last_login_at,
                "password set": u.password_set,
            }
            for u in people
        ]
    ),
    hide_index=True,
)


def _run(done: str, action: Callable[..., object], *args: object) -> None:
    try:
        action(*args)
    except ReconError as exc:
        actions.flash("error", str(exc))
    else:
        actions.flash("success", done)
    st.rerun()


with st.form("add_user", clear_on_submit=True):
    st.write("Add a user (they sign in with the password you give them once)")
    email = st.text_input("Email")
    role = st.selectbox("Role", [r.value for r in Role])
    tenant = st.text_input("Tenant", value=state.tenant())
    password = st.text_input("First password", type="password")
    if st.form_submit_button("Add"):
        _run(
            f"{email} added",
            lambda: service.add_user(
                engine, me, email, role, tenants=(tenant,), password=password or None
            ),
        )
emails = [u.email for u in people]
if emails:
    cols = st.columns(3)
    who = cols[0].selectbox("User", emails, key="user_pick")
    tenant_id = cols[1].text_input("Tenant id", value=state.tenant(), key="grant_tenant")
    if cols[2].button("Grant"):
        _run(f"{who} granted {tenant_id}", service.grant_tenant, engine, me, who, tenant_id)
    if cols[2].button("Revoke"):
        _run(f"{who} lost {tenant_id}", service.revoke_tenant, engine, me, who, tenant_id)
    if cols[2].button("Disable"):
        _run(f"{who} disabled", service.disable_user, engine, me, who)
    roles = [r.value for r in Role]
    current = next(u.role.value for u in people if u.email == who)
    role_cols = st.columns(2)
    new_role = role_cols[0].selectbox(
        f"Role of {who}", roles, index=roles.index(current), key=f"role_pick_{who}"
    )
    if role_cols[1].button("Change role", key="role_set", disabled=new_role == current):
        _run(f"{who} is now {new_role} (was {current})", service.set_role, engine, me, who,
             new_role)  # fmt: skip
