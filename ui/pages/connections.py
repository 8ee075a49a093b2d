"""Connections (admins): the tenant's bank accounts with consent expiry, last sync and quota left
today; the GoCardless wizard as steps (country -> institution -> agreement -> consent link ->
status -> linked accounts); connectivity checks for WHMCS, Stripe and GoCardless.

Every step is one call of `recon.review.connections`, which checks MANAGE itself: a forged widget
is refused the same way. Provider text (bank names, statuses) is shown as plain text."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from connectors.bank_access import TenantBank, probes
from recon.review import connections as service
from recon.review.connection_views import ConnectionStarted, InstitutionView
from recon.secrets import SecretResolver
from ui import actions, components, state

BANKS_KEY = "conn_banks"
STARTED_KEY = "conn_started"
STATE_KEY = "conn_state"
LINKED_KEY = "conn_linked"
CONSENT_ICON = {"ok": "✅", "expiring": "⚠️", "expired": "❌", "unknown": "❔"}


def _secrets() -> SecretResolver:
    return state.runtime().secrets


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _status(engine: Any, me: str, tenant: str) -> None:
    status = components.call(service.connection_status, engine, me, tenant)
    if status is None:
        st.stop()
    for warning in status.warnings:
        st.warning(warning)
    if not status.accounts:
        components.empty("No bank account yet: connect one with the steps below.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "account": a.external_id,
                    "name": a.name or "",
                    "currency": a.currency or "",
                    "bank": a.institution_id or "",
                    "consent": f"{CONSENT_ICON[a.consent.value]} {a.consent.value}",
                    "consent until": _when(a.consent_expires_at),
                    "days left": a.days_left,
                    "consent date from": a.consent_basis or "",
                    "last sync": _when(a.last_sync_at),
                    "quota left today": ", ".join(f"{q.scope} {q.left}/{q.limit}" for q in a.quota),
                }
                for a in status.accounts
            ]
        ),
        hide_index=True,
        key="conn_accounts",
    )


def _choose_bank(engine: Any, me: str, tenant: str) -> InstitutionView | None:
    st.markdown("**1. Country**")
    country = st.text_input("Country (two letters)", value="GB", key="conn_country")
    if st.button("Find banks", key="conn_find"):
        with TenantBank(engine, tenant, _secrets()) as bank:
            found = components.call(service.list_institutions, engine, me, tenant, bank, country)
        st.session_state[BANKS_KEY] = found or []
    banks: list[InstitutionView] = st.session_state.get(BANKS_KEY) or []
    if not banks:
        st.caption("Find the banks of a country first.")
        return None
    st.markdown("**2. Institution**")
    by_id = {b.id: b for b in banks}
    chosen = st.selectbox(
        "Bank", list(by_id), format_func=lambda i: f"{by_id[i].name} ({i})", key="conn_bank"
    )
    return by_id.get(chosen) if chosen else None


def _start(engine: Any, me: str, tenant: str, bank: InstitutionView) -> None:
    st.markdown("**3. Agreement**")
    history = st.number_input(
        "Days of history", 1, bank.transaction_total_days, bank.transaction_total_days,
        key="conn_history",
    )  # fmt: skip
    access = st.number_input(
        "Days the consent lasts", 1, bank.max_access_valid_for_days,
        min(90, bank.max_access_valid_for_days), key="conn_access",
    )  # fmt: skip
    redirect = st.text_input(
        "Return address after consent", value=service.DEFAULT_REDIRECT, key="conn_redirect"
    )
    if st.button("Create consent link", key="conn_start"):
        with TenantBank(engine, tenant, _secrets()) as directory:
            started = components.call(
                service.start_connection, engine, me, tenant, directory,
                country=st.session_state.get("conn_country", ""), institution_id=bank.id,
                redirect=redirect, max_historical_days=int(history),
                access_valid_for_days=int(access),
            )  # fmt: skip
        if started is not None:
            st.session_state[STARTED_KEY] = started
            st.session_state["conn_requisition"] = started.requisition_id
            st.session_state.pop(STATE_KEY, None)


def _finish(engine: Any, me: str, tenant: str) -> None:
    started: ConnectionStarted | None = st.session_state.get(STARTED_KEY)
    st.markdown("**4. Consent link**")
    if started is not None:
        st.write("Send the account holder to this link; the bank asks them to allow access:")
        st.code(started.link, language=None)
    requisition = st.text_input("Requisition id", key="conn_requisition")
    st.markdown("**5. Status**")
    if st.button("Check status", key="conn_check", disabled=not requisition):
        with TenantBank(engine, tenant, _secrets()) as directory:
            found = components.call(
                service.requisition_state, engine, me, tenant, directory, requisition
            )
        st.session_state[STATE_KEY] = found
    seen = st.session_state.get(STATE_KEY)
    if seen is not None:
        st.text(f"Requisition {seen.requisition_id}: {seen.status_text}")
    st.markdown("**6. Linked accounts**")
    if st.button("Store linked accounts", key="conn_link", disabled=not requisition):
        with TenantBank(engine, tenant, _secrets()) as directory:
            result = components.call(
                service.link_accounts, engine, me, tenant, directory, requisition
            )
        if result is not None:
            added = sum(a.change != "unchanged" for a in result.accounts)
            actions.flash("success", f"{len(result.accounts)} account(s) linked, {added} changed")
            st.session_state[LINKED_KEY] = result
            st.rerun()
    linked = st.session_state.get(LINKED_KEY)
    if linked is not None:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "account": a.external_id,
                        "name": a.name or "",
                        "currency": a.currency or "",
                        "consent until": _when(a.consent_expires_at),
                        "consent date from": a.consent_basis or "",
                        "change": a.change,
                    }
                    for a in linked.accounts
                ]
            ),
            hide_index=True,
            key="conn_linked_table",
        )


def _connectivity(engine: Any, me: str, tenant: str) -> None:
    st.subheader("Connectivity")
    if st.button("Check Stripe, WHMCS and GoCardless connectivity", key="conn_probe"):
        found = components.call(probes, engine, tenant, _secrets())
        results = (
            components.call(service.check_connectivity, engine, me, tenant, found)
            if found is not None
            else None
        )
        if results is not None and not results:
            components.empty("No provider is configured for this tenant.")
        for result in results or []:
            (st.success if result.ok else st.error)(f"{result.name}: {result.detail}")


st.title("Connections")
engine, me, tenant = state.engine(), state.acting(), state.tenant()
if not state.can("manage"):
    st.info("Bank connections and connectivity checks are for admins.")
    st.stop()
actions.show_flash()
st.subheader("Bank accounts")
_status(engine, me, tenant)
st.subheader("Connect a bank account")
chosen = _choose_bank(engine, me, tenant)
if chosen is not None:
    _start(engine, me, tenant, chosen)
_finish(engine, me, tenant)
_connectivity(engine, me, tenant)
