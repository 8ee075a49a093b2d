"""Evidence: money outside the window that earlier runs decided, read only. It widens the days
a run may judge payouts and WHMCS payments on, finds a payout's bank credit and backs a recorded
payment's transid, but is never allocated and never raised on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from recon.matching import MatchConfig, MatchResult, match
from recon.matching.frames import TRANSACTION_COLUMNS
from recon.matching.validate import prepare_transactions
from tests.unit.matching.helpers import (
    FORMAT,
    frame,
    inputs,
    invoice,
    payment,
    payout,
    recorded,
)


def run_with(
    transactions: list[dict[str, str]],
    evidence: Iterable[dict[str, str]],
    *,
    recorded_rows: list[dict[str, str]] | None = None,
    payouts: list[dict[str, str]] | None = None,
) -> MatchResult:
    base = inputs([invoice(10234, "50.00")], transactions, recorded_rows, payouts, [])
    typed = prepare_transactions(frame(evidence, TRANSACTION_COLUMNS), "evidence")
    return match(replace(base, evidence=typed), MatchConfig(invoice_number_format=FORMAT))


def bank_day(name: str, day: str) -> dict[str, str]:
    """Some unrelated bank money booked on a day (it only says the bank covers that day)."""
    return payment(name, "-1.00", "rent", counterparty="Landlord", booked_on=day)


WINDOW = [bank_day("w0", "2026-03-10"), bank_day("w1", "2026-03-12")]
AROUND = [bank_day("e0", "2026-03-01"), bank_day("e1", "2026-03-25")]


def kinds(result: MatchResult) -> dict[str, set[str]]:
    e = result.exceptions
    return {k: set(e.loc[e["kind"] == k, "subject"]) for k in set(e["kind"])}


def judged(result: MatchResult, kind: str) -> set[str]:
    j = result.judged
    return set(j.loc[j["kind"] == kind, "subject"])


def test_a_payout_due_inside_the_evidence_days_is_judged_missing() -> None:
    payouts = [payout("po_1", "49.30", arrival_on="2026-03-11")]
    alone = run_with(WINDOW, [], payouts=payouts)
    assert "payout_missing" not in kinds(alone)  # 03-10..03-12 leaves no room after 03-11
    assert judged(alone, "payout_missing") == set()

    covered = run_with(WINDOW, AROUND, payouts=payouts)
    assert kinds(covered)["payout_missing"] == {"po_1"}
    assert judged(covered, "payout_missing") == {"po_1"}


def test_a_payout_whose_credit_is_evidence_is_found_and_the_credit_left_alone() -> None:
    credit = payment(
        "e_po", "49.30", "STRIPE PAYOUT", counterparty="Stripe", booked_on="2026-03-14"
    )
    result = run_with(
        WINDOW, [*AROUND, credit], payouts=[payout("po_1", "49.30", arrival_on="2026-03-13")]
    )
    matches = result.payout_matches
    assert list(zip(matches["payout_id"], matches["transaction_id"], strict=True)) == [
        ("po_1", "e_po")
    ]
    assert "payout_missing" not in kinds(result)
    assert judged(result, "payout_missing") == {"po_1"}
    assert "e_po" not in set(result.exceptions["transaction_id"])
    assert "e_po" not in set(result.allocations["transaction_id"])


def test_a_short_evidence_credit_raises_nothing_here() -> None:
    credit = payment(
        "e_po", "48.00", "STRIPE PAYOUT", counterparty="Stripe", booked_on="2026-03-14"
    )
    result = run_with(
        WINDOW, [*AROUND, credit], payouts=[payout("po_1", "49.30", arrival_on="2026-03-13")]
    )
    assert list(result.payout_matches["transaction_id"]) == ["e_po"]
    assert result.exceptions.empty


def test_evidence_is_never_allocated_nor_raised_on() -> None:
    customer = payment("e_pay", "50.00", "INV-2026-10234", booked_on="2026-03-20")
    refund = payment(
        "e_ref",
        "-5.00",
        "Refund of ch_123",
        source="stripe",
        counterparty="",
        booked_on="2026-03-21",
    )
    result = run_with(WINDOW, [*AROUND, customer, refund])
    assert result.allocations.empty
    assert result.exceptions.empty


def test_a_recorded_payment_is_judged_unbacked_once_evidence_covers_its_days() -> None:
    rows = [recorded("900", 10234, "50.00", gateway="banktransfer", recorded_on="2026-03-11")]
    alone = run_with(WINDOW, [], recorded_rows=rows)
    assert "unbacked_payment" not in kinds(alone)
    assert judged(alone, "unbacked_payment") == set()

    covered = run_with(WINDOW, AROUND, recorded_rows=rows)
    assert kinds(covered)["unbacked_payment"] == {"900"}
    assert judged(covered, "unbacked_payment") == {"900"}


def test_a_recorded_payment_whose_transid_evidence_quotes_is_backed() -> None:
    rows = [recorded("901", 10234, "50.00", transid="ch_3Nx9", recorded_on="2026-03-11")]
    stripe_days = [
        payment("s0", "1.00", "", source="stripe", counterparty="x", booked_on="2026-03-01"),
        payment("s1", "1.00", "", source="stripe", counterparty="x", booked_on="2026-03-25"),
    ]
    charge = payment(
        "stripe:acct:txn_1", "50.00", "charge ch_3Nx9", source="stripe", booked_on="2026-03-05"
    )
    unbacked = run_with(WINDOW, stripe_days, recorded_rows=rows)
    assert kinds(unbacked)["unbacked_payment"] == {"901"}

    backed = run_with(WINDOW, [*stripe_days, charge], recorded_rows=rows)
    assert "unbacked_payment" not in kinds(backed)
    assert judged(backed, "unbacked_payment") == {"901"}
    assert backed.allocations.empty


def test_a_payout_broken_down_is_judged_for_its_breakdown() -> None:
    charge = payment("ch", "50.00", "charge", source="stripe", booked_on="2026-03-10")
    base = inputs(
        [invoice(10234, "50.00")],
        [*WINDOW, charge],
        None,
        [payout("po_1", "40.00", arrival_on="2026-03-11"), payout("po_2", "9.00")],
        [("po_1", "ch")],
    )
    result = match(base, MatchConfig(invoice_number_format=FORMAT))
    assert kinds(result)["payout_shortfall"] == {"po_1"}
    assert judged(result, "payout_shortfall") == {"po_1"}
    assert judged(result, "payout_incomplete") == {"po_1"}


def test_a_window_without_transactions_still_raises_its_payout_exceptions() -> None:
    payouts = [payout("po_1", "49.30", arrival_on="2026-03-11")]
    result = run_with([], AROUND, payouts=payouts)
    assert kinds(result)["payout_missing"] == {"po_1"}
    assert set(
        result.exceptions.loc[result.exceptions["kind"] == "payout_missing", "transaction_id"]
    ) == {""}
