"""Transactions: every money movement, searchable, newest first, with its allocations."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recon.review import explore
from ui import components, state

PAGER = "transactions"

st.title("Transactions")
tenant = state.tenant()
left, middle, right = st.columns([3, 1, 2])
search = left.text_input(
    "Search payer, reference or id",
    key="tx_search",
    on_change=components.reset_pager,
    args=(PAGER,),
)
source = middle.selectbox(
    "Source",
    ["", "bank", "stripe", "gocardless"],
    key="tx_source",
    on_change=components.reset_pager,
    args=(PAGER,),
)
page = components.call(
    explore.transactions_page,
    state.engine(),
    state.acting(),
    tenant,
    search=search,
    source=source or None,
    after=components.cursor(PAGER),
    limit=50,
)
if page is None:
    st.stop()
if not page.rows:
    components.empty(
        "No transactions match: clear the search, or run a reconciliation to load some."
    )
    st.stop()
table = pd.DataFrame(
    [
        {
            "booked on": r.booked_on,
            "source": r.source,
            "kind": r.kind,
            "amount": components.money(r.amount_minor, r.currency),
            "allocated": components.money(r.allocated_minor, r.currency),
            "payer": r.counterparty or "",
            "reference": r.reference or "",
            "ref": r.ref,
        }
        for r in page.rows
    ]
)
event = st.dataframe(
    table, hide_index=True, on_select="rerun", selection_mode="single-row", key="tx_table"
)
components.keyset_pager(PAGER, page.next_after)
chosen = event.selection.rows if event is not None else []
if chosen:
    row = page.rows[chosen[0]]
    st.subheader(components.plain(f"Allocations of {row.ref}"))
    if not row.allocations:
        components.empty("No allocation names this payment: see the Exceptions page to place it.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "id": a.id,
                        "invoice": a.invoice_id,
                        "amount": components.money(a.amount_minor, a.currency),
                        "rule": a.rule,
                        "confidence": a.confidence,
                        "decision": a.decision,
                        "by": a.created_by,
                        "at": a.created_at,
                        "live": a.live,
                    }
                    for a in row.allocations
                ]
            ),
            hide_index=True,
        )
