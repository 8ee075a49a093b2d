"""Exceptions: the work queue (filters, sort and pages from the database), one exception in
detail, and the actions on it. Auditors see the same page without any action."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from recon.errors import ReconError
from recon.review import exceptions as detail_service
from recon.review import queue as queue_service
from recon.review.views import (
    ExceptionDetail,
    ExceptionStatus,
    QueueCursor,
    QueueFilter,
    QueueSort,
    ResolutionKind,
)
from ui import actions, components, state

PAGER = "queue_cursors"
TABLE = "exc_table"  # the table's selection: row numbers of the page it was made on

st.title("Exceptions")
tenant = state.tenant()
engine, me = state.engine(), state.acting()
can_work = state.can("work")
actions.show_flash()


def _unselect() -> None:
    """Forget the table's selection: its row numbers would name other rows of a new page."""
    st.session_state.pop(TABLE, None)


def _reset() -> None:
    st.session_state[PAGER] = [None]
    st.session_state.pop("exc_selected", None)
    _unselect()


with st.expander("Filters and sort", expanded=False):
    cols = st.columns(4)
    status = cols[0].selectbox(
        "Status", ["open", "resolved", "closed", "any"], key="f_status", on_change=_reset
    )
    kind = cols[1].text_input("Kind", key="f_kind", on_change=_reset)
    assignee = cols[2].text_input("Assignee (email, or none)", key="f_assignee", on_change=_reset)
    source = cols[3].selectbox(
        "Source", ["", "bank", "stripe", "gocardless"], key="f_source", on_change=_reset
    )
    cols = st.columns(4)
    min_amount = cols[0].text_input("Min amount", key="f_min", on_change=_reset)
    max_amount = cols[1].text_input("Max amount", key="f_max", on_change=_reset)
    older = cols[2].number_input(
        "Older than (days)", min_value=0, value=0, key="f_older", on_change=_reset
    )
    sort = cols[3].selectbox("Sort", [s.value for s in QueueSort], key="f_sort", on_change=_reset)
    search = st.text_input("Search payer or reference", key="f_search", on_change=_reset)


def _bound(text: str) -> int | None:
    if not text.strip():
        return None
    return queue_service.parse_amount_bound(text, None)


try:
    filters = QueueFilter(
        kind=kind.strip() or None,
        status=None if status == "any" else status,
        assignee=assignee.strip() or None,
        source=source or None,
        min_minor=_bound(min_amount),
        max_minor=_bound(max_amount),
        older_than_days=int(older) or None,
        search=search.strip() or None,
    )
except ReconError as problem:  # a bound that is not an amount: say so, show the queue unfiltered
    st.error(components.plain(problem))
    filters = QueueFilter()

cursors: list[str | None] = st.session_state.setdefault(PAGER, [None])
token = cursors[-1]
page = components.call(
    queue_service.list_exceptions,
    engine,
    me,
    tenant,
    filters,
    sort=QueueSort(sort),
    after=QueueCursor.decode(token) if token else None,
    limit=25,
)
if page is None:
    st.stop()
if not page.items:
    components.empty(
        "Nothing in the queue matches: clear the filters. An empty open queue means every payment is placed."
    )
    st.stop()

table = pd.DataFrame(
    [
        {
            "id": e.id,
            "kind": e.kind,
            "status": e.status,
            "amount": components.money(e.amount_minor, e.currency),
            "age (days)": e.age_days,
            "payer": e.payer or "",
            "reference": e.reference or "",
            "assignee": e.assignee or "",
            "source": e.source or "",
        }
        for e in page.items
    ]
)
event = st.dataframe(
    table, hide_index=True, on_select="rerun", selection_mode="multi-row", key=TABLE
)
left, right = st.columns(2)
if left.button("Newer", disabled=len(cursors) <= 1, key="q_newer"):
    cursors.pop()
    _unselect()
    st.rerun()
if right.button("Older", disabled=page.next is None, key="q_older"):
    cursors.append(page.next.encode() if page.next else None)
    _unselect()
    st.rerun()

if can_work:
    with st.form("bulk_accept"):
        st.write("Bulk accept the engine's suggestions")
        floor = st.slider("Minimum confidence", 0, 100, 90)
        if st.form_submit_button("Accept suggestions at or above"):
            actions.accept(engine, me, tenant, min_confidence=floor)
            st.rerun()

selected = event.selection.rows if event is not None else []
if can_work and selected and st.button(f"Accept the suggestions of the {len(selected)} selected"):
    suggestions: list[int] = []
    for index in selected:
        picked = components.call(
            detail_service.exception_detail, engine, me, tenant, page.items[index].id
        )
        if picked is not None:
            suggestions += [c.allocation_id for c in picked.candidates if c.decision == "review"]
    if suggestions:
        actions.accept(engine, me, tenant, ids=suggestions)
    else:
        actions.flash("info", "the selected exceptions have no suggestion to accept")
    _unselect()  # the accepted rows leave the queue: the same row numbers are other exceptions
    st.rerun()
if selected:
    chosen = page.items[selected[0]].id
else:
    chosen = st.selectbox("Open exception", [e.id for e in page.items], key="exc_selected")
found = components.call(detail_service.exception_detail, engine, me, tenant, int(chosen))
if found is None:
    st.stop()
item: ExceptionDetail = found
exc = item.exception
# Act on the version the person saw on the previous run, not the one just re-read: a click
# re-runs this script, and a change made meanwhile must come back as a ConflictError.
seen_versions: dict[int, int] = st.session_state.setdefault("exc_seen_versions", {})
seen: int = seen_versions.get(exc.id, exc.version)
seen_versions[exc.id] = exc.version
st.header(components.plain(f"Exception {exc.id}: {exc.kind}"))
st.caption(
    components.plain(
        f"status {exc.status} · version {exc.version} · {components.money(exc.amount_minor, exc.currency)} · "
        f"age {exc.age_days} days · assignee {exc.assignee or 'nobody'} · last change by {exc.updated_by or 'the engine'}"
    )
)
st.text(exc.detail)
if exc.resolution_kind:
    st.text(f"resolved {exc.resolution_kind} by {exc.resolved_by}: {exc.resolution_note or ''}")

tab_payment, tab_candidates, tab_invoices, tab_talk = st.tabs(
    ["Payment", "Candidates", "Open invoices", "Comments and history"]
)
with tab_payment:
    if item.payment is None:
        components.empty(
            "This exception names no payment (it is about an invoice, a payout or a WHMCS payment)."
        )
    else:
        p = item.payment
        st.text(
            f"{p.transaction_ref} · booked {p.booked_on} · {components.money(p.amount_minor, p.currency)}"
        )
        st.text(f"payer: {p.counterparty or ''}\nreference: {p.reference or ''}")
        st.write("Raw provider record (as landed, secrets masked)")
        st.code(
            json.dumps(p.raw_record, indent=2, sort_keys=True, default=str)
            if p.raw_record
            else "not found",
            language="json",
        )
with tab_candidates:
    if not item.candidates and not item.runners_up:
        components.empty("The engine proposed nothing for this payment: match it by hand below.")
    for c in item.candidates:
        pair = st.columns([4, 1])
        pair[0].text(
            f"invoice {c.invoice_id} · {components.money(c.amount_minor, c.currency)} · {c.rule} · confidence {c.confidence} · {c.decision} ({c.origin})"
        )
        if (
            can_work
            and c.decision == "review"
            and pair[1].button("Accept", key=f"accept_{c.allocation_id}")
        ):
            actions.accept(engine, me, tenant, ids=[c.allocation_id])
            st.rerun()
    for r in item.runners_up:
        st.text(
            f"runner-up: invoice {r.invoice_id} · confidence {r.confidence} · {r.rule} · {r.detail}"
        )
with tab_invoices:
    if not item.open_invoices:
        components.empty("No open invoice of this payer was found; search the Invoices page.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "invoice": i.invoice_id,
                        "number": i.invoice_num or "",
                        "client": i.company_name or i.client_name or "",
                        "issued": i.issued_on,
                        "balance": components.money(i.balance_minor, i.currency),
                        "status": i.status,
                    }
                    for i in item.open_invoices
                ]
            ),
            hide_index=True,
        )
with tab_talk:
    for remark in item.comments:
        st.text(
            f"{remark.created_at:%Y-%m-%d %H:%M} {remark.author}: {remark.body}"
            if remark.created_at
            else f"{remark.author}: {remark.body}"
        )
    if item.history:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "seq": h.seq,
                        "at": h.occurred_at,
                        "actor": h.actor,
                        "action": h.action,
                        "details": json.dumps(dict(h.details), sort_keys=True, default=str),
                    }
                    for h in item.history
                ]
            ),
            hide_index=True,
        )

if not can_work:
    st.caption("Your role reads and exports; decisions are made by finance staff.")
    st.stop()

st.subheader("Act")
is_open = exc.status == ExceptionStatus.OPEN.value
if item.payment is not None and is_open:
    with st.form("match_by_hand"):
        st.write("Match by hand: an amount next to each invoice this payment pays")
        typed = {
            i.invoice_id: st.text_input(
                f"Amount for invoice {i.invoice_id} (open {components.money(i.balance_minor, i.currency)})",
                key=f"amt_{exc.id}_{i.invoice_id}",
            )
            for i in item.open_invoices
        }
        others = st.text_area(
            "Other invoices, one per line as INVOICE_ID=AMOUNT", key="other_invoices"
        )
        note = st.text_input("Note", key="match_note")
        if st.form_submit_button("Allocate"):
            parts = [(inv, text) for inv, text in typed.items() if text.strip()]
            parts += [
                (left.strip(), right.strip())
                for left, _, right in (line.partition("=") for line in others.splitlines())
                if right.strip()
            ]
            actions.allocate(engine, me, tenant, item.payment.transaction_ref, parts, note)
            st.rerun()
    if st.button("Not a customer payment", key="not_customer"):
        actions.resolve(
            engine,
            me,
            tenant,
            exc.id,
            ResolutionKind.NOT_CUSTOMER.value,
            "not a customer payment",
            seen,
        )
        st.rerun()
if is_open:
    with st.form("resolve"):
        resolution = st.selectbox("Resolution", [k.value for k in ResolutionKind])
        note = st.text_input("Note", key="resolve_note")
        if st.form_submit_button("Resolve"):
            actions.resolve(engine, me, tenant, exc.id, resolution, note, seen)
            st.rerun()
    halves = st.columns(2)
    to = halves[0].text_input("Assign to (email)", value=me, key="assign_to")
    if halves[0].button("Assign", key="assign"):
        actions.assign(engine, me, tenant, exc.id, to, seen)
        st.rerun()
    if exc.assignee and halves[1].button("Unassign", key="unassign"):
        actions.unassign(engine, me, tenant, exc.id, seen)
        st.rerun()
elif exc.status == ExceptionStatus.RESOLVED.value and st.button("Reopen", key="reopen"):
    actions.reopen(engine, me, tenant, exc.id, seen)
    st.rerun()
with st.form("comment", clear_on_submit=True):
    text = st.text_area("Comment")
    if st.form_submit_button("Add comment"):
        actions.comment(engine, me, tenant, exc.id, text)
        st.rerun()
