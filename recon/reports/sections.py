"""The report's sections: each one's columns, and the typed report turned into canonical rows
(text formula-safe, amounts in minor units, ISO dates), in the order every format writes them."""

from __future__ import annotations

from recon.reports.model import (
    FORMAT,
    NO_BALANCE,
    ONE_BALANCE,
    AllocationLine,
    BalanceTieOut,
    Column,
    Kind,
    Report,
    Row,
    Section,
    day,
    fixed,
    stamp,
    text,
)

T, N, A, D, S = Kind.TEXT, Kind.INT, Kind.AMOUNT, Kind.DATE, Kind.DATETIME


def _cols(*spec: tuple[str, Kind] | str) -> tuple[Column, ...]:
    out = []
    for item in spec:
        name, kind = (item, T) if isinstance(item, str) else item
        out.append(Column(name, kind, "currency" if kind is A else None))
    return tuple(out)


HEADER = _cols("field", "value")
SUMMARY = _cols("source", "currency", ("transactions", N), ("received", A), ("allocated_auto", A),
                ("allocated_people", A), ("suggested_not_allocated", A), ("unallocated", A),
                ("refunded", A), ("disputed", A), ("fees", A))  # fmt: skip
BANK = _cols("account_ref", "currency", ("credit_lines", N), ("credits", A), ("allocated", A),
             ("payouts", A), ("unallocated", A), ("non_customer", A), ("difference", A),
             "status")  # fmt: skip
PAYOUTS = _cols("source", "payout_id", ("arrival_on", D), "currency", "payout_status",
                ("amount", A), ("lines", N), ("lines_total", A), ("lines_difference", A),
                "bank_ref", ("bank_credit", A), ("bank_difference", A), "status")  # fmt: skip
RECORDED = _cols("currency", ("recorded_count", N), ("recorded", A), ("backed_count", N),
                 ("backed", A), ("unbacked_count", N), ("unbacked", A), ("unchecked_count", N),
                 ("unchecked", A), ("difference", A), "status")  # fmt: skip
BALANCES = _cols("account_ref", "currency", ("opening_on", D), ("opening", A), ("movements", A),
                 ("closing_on", D), ("closing", A), ("difference", A), "status")  # fmt: skip
AUDIT = _cols(("entries", N), ("head_seq", N), "head_hash", "key_id", "verdict")
ALLOCATIONS = _cols(("id", N), ("created_at", S), ("booked_on", D), "source", "transaction_ref",
                    "payer", "reference", "invoice_id", ("amount", A), "currency", "rule",
                    ("confidence", N), "decision", "origin", "created_by", "state",
                    ("reverses_id", N), ("reversed_by", N), "note")  # fmt: skip
EXCEPTIONS = _cols(("id", N), "kind", ("created_at", S), ("age_days", N), "transaction_ref",
                   "payer", "invoice_id", "subject_ref", ("amount", A), "currency", "assignee",
                   "detail")  # fmt: skip
DECISIONS = _cols(("at", S), "who", "what", ("ref_id", N), "transaction_ref", "invoice_id",
                  ("amount", A), "currency", "detail", "note")  # fmt: skip
QUARANTINED = _cols(("id", N), "provider", "dataset", "account_ref", "row_key", ("booked_on", D),
                    ("amount", A), "currency", "reasons", ("created_at", S))  # fmt: skip
VALIDATIONS = _cols("run_id", "dataset", "suite", ("rows_evaluated", N), ("rows_failed", N),
                    "held", ("created_at", S))  # fmt: skip


def _status(difference: int | None) -> str:
    if difference is None:
        return "incomplete"
    return "balanced" if difference == 0 else "DIFFERENCE"


def _balance_status(b: BalanceTieOut) -> str:
    if b.opening is None and b.closing is None:
        return NO_BALANCE
    if b.opening is None or b.closing is None:
        return ONE_BALANCE
    return _status(b.difference)


def _allocation_row(a: AllocationLine) -> Row:
    return (a.id, stamp(a.created_at), day(a.booked_on), text(a.source), text(a.transaction_ref),
            text(a.payer), text(a.reference), text(a.invoice_id), a.amount, text(a.currency),
            text(a.rule), a.confidence, text(a.decision), text(a.origin), text(a.created_by),
            text(a.state), a.reverses_id, a.reversed_by, text(a.note))  # fmt: skip


def sections(report: Report) -> list[Section]:
    """The report as canonical sections, in the order every format writes them."""
    h = report.header
    header = [
        ("format", FORMAT),
        ("tenant", h.tenant_id),
        ("tenant_name", h.tenant_name),
        ("period_from", day(h.date_from)),
        ("period_to", day(h.date_to)),
        ("generated_at", stamp(h.generated_at)),
        ("generated_by", h.generated_by),
        ("software_version", h.software_version),
        ("schema_revision", h.schema_revision),
    ]
    a = report.audit
    allocations = report.allocations
    return [
        fixed("header", "Report", HEADER, [(text(k), text(v)) for k, v in header]),
        fixed(
            "summary",
            "Summary per source and currency",
            SUMMARY,
            [
                (
                    text(s.source),
                    text(s.currency),
                    s.transactions,
                    s.received,
                    s.allocated_auto,
                    s.allocated_people,
                    s.suggested,
                    s.unallocated,
                    s.refunded,
                    s.disputed,
                    s.fees,
                )
                for s in report.summary
            ],
        ),
        fixed(
            "tieout_bank",
            "Tie-out per bank account: credits = allocated + payouts + unallocated + non-customer",
            BANK,
            [
                (
                    text(b.account_ref),
                    text(b.currency),
                    b.credit_lines,
                    b.credits,
                    b.allocated,
                    b.payouts,
                    b.unallocated,
                    b.non_customer,
                    b.difference,
                    _status(b.difference),
                )
                for b in report.bank
            ],
        ),
        fixed(
            "tieout_payouts",
            "Tie-out per payout: lines = amount = bank credit",
            PAYOUTS,
            [
                (
                    text(p.source),
                    text(p.payout_id),
                    day(p.arrival_on),
                    text(p.currency),
                    text(p.status),
                    p.amount,
                    p.lines,
                    p.lines_total,
                    p.lines_difference,
                    text(p.bank_ref),
                    p.bank_credit,
                    p.bank_difference,
                    "no bank credit matched"
                    if p.bank_credit is None
                    else _status(p.lines_difference or p.bank_difference),
                )
                for p in report.payouts
            ],
        ),
        fixed(
            "tieout_recorded",
            "WHMCS recorded payments backed by money",
            RECORDED,
            [
                (
                    text(r.currency),
                    r.recorded_count,
                    r.recorded,
                    r.backed_count,
                    r.backed,
                    r.unbacked_count,
                    r.unbacked,
                    r.unchecked_count,
                    r.unchecked,
                    r.difference,
                    _status(r.difference) if not r.unbacked_count else "UNBACKED PAYMENTS",
                )
                for r in report.recorded
            ],
        ),
        fixed(
            "tieout_balances",
            "Bank balances: opening + movements = closing",
            BALANCES,
            [
                (
                    text(b.account_ref),
                    text(b.currency),
                    day(b.opening_on),
                    b.opening,
                    b.movements,
                    day(b.closing_on),
                    b.closing,
                    b.difference,
                    _balance_status(b),
                )
                for b in report.balances
            ],
        ),
        fixed(
            "audit_chain",
            "Audit chain",
            AUDIT,
            [(a.entries, a.head_seq, text(a.head_hash), text(a.key_id), text(a.verdict))],
        ),
        Section(
            "allocations",
            "Allocations (reversals included)",
            ALLOCATIONS,
            lambda: (_allocation_row(line) for line in allocations()),
            report.allocation_count,
        ),
        fixed(
            "open_exceptions",
            "Open exceptions",
            EXCEPTIONS,
            [
                (
                    e.id,
                    text(e.kind),
                    stamp(e.created_at),
                    e.age_days,
                    text(e.transaction_ref),
                    text(e.payer),
                    text(e.invoice_id),
                    text(e.subject_ref),
                    e.amount,
                    text(e.currency),
                    text(e.assignee),
                    text(e.detail),
                )
                for e in report.open_exceptions
            ],
        ),
        fixed(
            "decisions",
            "Manual decisions and reversals",
            DECISIONS,
            [
                (
                    stamp(d.at),
                    text(d.who),
                    text(d.what),
                    d.ref_id,
                    text(d.transaction_ref),
                    text(d.invoice_id),
                    d.amount,
                    text(d.currency),
                    text(d.detail),
                    text(d.note),
                )
                for d in report.decisions
            ],
        ),
        fixed(
            "quarantined",
            "Quarantined rows",
            QUARANTINED,
            [
                (
                    q.id,
                    text(q.provider),
                    text(q.dataset),
                    text(q.account_ref),
                    text(q.row_key),
                    day(q.booked_on),
                    q.amount,
                    text(q.currency),
                    text(q.reasons),
                    stamp(q.created_at),
                )
                for q in report.quarantined
            ],
        ),
        fixed(
            "failed_validations",
            "Failed validations",
            VALIDATIONS,
            [
                (
                    text(v.run_id),
                    text(v.dataset),
                    text(v.suite),
                    v.rows_evaluated,
                    v.rows_failed,
                    "yes" if v.held else "no",
                    stamp(v.created_at),
                )
                for v in report.failed_validations
            ],
        ),
    ]
