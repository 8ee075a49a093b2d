"""Audit log: every decision, searchable, and the chain's verification verdict."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from recon.review import explore
from ui import components, state

PAGER = "audit"

st.title("Audit log")
tenant = state.tenant()
if st.button("Verify chain", type="primary"):
    with st.spinner("verifying every entry of the chain (about a second per 100,000)"):
        verdict = components.call(
            explore.verify_audit_chain, state.engine(), state.acting(), tenant
        )
    if verdict is not None:
        (st.success if verdict.ok else st.error)(components.plain(verdict.message))
        st.caption(f"head hash {verdict.head_hash}")
search = st.text_input(
    "Search actor, action or entity",
    key="audit_search",
    on_change=components.reset_pager,
    args=(PAGER,),
)
page = components.call(
    explore.audit_page,
    state.engine(),
    state.acting(),
    tenant,
    search=search,
    after=components.cursor(PAGER),
    limit=50,
)
if page is None:
    st.stop()
if not page.rows:
    components.empty("No entry matches: clear the search.")
    st.stop()
# a plain table (text in the page, 50 rows at most): readable by assistive tools and browsers
st.table(
    pd.DataFrame(
        [
            {
                "seq": r.seq,
                "at": r.occurred_at,
                "actor": r.actor,
                "action": r.action,
                "entity": r.entity,
                "entity id": r.entity_id,
                "details": json.dumps(r.details, sort_keys=True, default=str),
            }
            for r in page.rows
        ]
    ),
)
components.keyset_pager(PAGER, page.next_after)
