"""Invoices: WHMCS invoices as last read, searchable, with the allocations that pay them."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from recon.review import explore
from ui import components, state

PAGER = "invoices"
STATUSES = ["", "Unpaid", "Paid", "Cancelled", "Refunded", "Collections", "Payment Pending"]

st.title("Invoices")
tenant = state.tenant()
left, right = st.columns([3, 1])
search = left.text_input(
    "Search id, number or client", key="inv_search", on_change=components.reset_pager, args=(PAGER,)
)
status = right.selectbox(
    "Status", STATUSES, key="inv_status", on_change=components.reset_pager, args=(PAGER,)
)
page = components.call(
    explore.invoices_page,
    state.engine(),
    state.acting(),
    tenant,
    search=search,
    status=status or None,
    after=components.cursor(PAGER),
    limit=50,
)
if page is None:
    st.stop()
if not page.rows:
    components.empty("No invoices match: clear the filters, or run a reconciliation to read WHMCS.")
    st.stop()
table = pd.DataFrame(
    [
        {
            "invoice": i.invoice_id,
            "number": i.invoice_num or "",
            "client": i.company_name or i.client_name or "",
            "issued": i.issued_on,
            "due": i.due_on,
            "total": components.money(i.total_minor, i.currency),
            "balance": components.money(i.balance_minor, i.currency),
            "allocated": components.money(i.allocated_minor, i.currency),
            "status": i.status,
        }
        for i in page.rows
    ]
)
event = st.dataframe(
    table, hide_index=True, on_select="rerun", selection_mode="single-row", key="inv_table"
)
components.keyset_pager(PAGER, page.next_after)
chosen = event.selection.rows if event is not None else []
if chosen:
    invoice = page.rows[chosen[0]]
    st.subheader(components.plain(f"Payments allocated to invoice {invoice.invoice_id}"))
    if not invoice.allocations:
        components.empty("No payment is allocated to this invoice yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "id": a.id,
                        "payment": a.transaction_ref,
                        "amount": components.money(a.amount_minor, a.currency),
                        "rule": a.rule,
                        "decision": a.decision,
                        "by": a.created_by,
                        "at": a.created_at,
                        "live": a.live,
                    }
                    for a in invoice.allocations
                ]
            ),
            hide_index=True,
        )
