"""Invariants of the engine on small random worlds (reliability.md §4 T5)."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.matching import MatchConfig, MatchInputs, MatchResult, match
from recon.matching.apply import CONFIRMING_PREFIX, apply_result
from recon.matching.frames import OPEN_STATUSES
from recon.money import to_minor
from tests.unit.matching.helpers import FORMAT, inputs, invoice, payment, recorded

CONFIG = MatchConfig(invoice_number_format=FORMAT)
NAMES = ("John Smith", "Anna Berg", "Hans Müller", "Nordwind Hosting GmbH")
PAYERS = ("JOHN SMITH", "Smith, J.", "BERG ANNA", "MUELLER HANS", "NORDWIND HOSTING", "Someone", "")
AMOUNTS = ("19.99", "9.99", "5.00", "24.90", "100.00", "0.50")
STATUSES = ("Unpaid", "Unpaid", "Unpaid", "Paid", "Cancelled", "Collections", "Payment Pending")
TEMPLATES = (
    "Invoice {id}",
    "INV-2026-{num}",
    "{id}",
    "RE {id} Kd-Nr {other}",
    "Invoices {id}, {other}",
    "Rechnung {other}",
    "",
    "Payment",
)

RUN_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def worlds(draw: st.DrawFn) -> MatchInputs:
    """A few invoices of a few clients, and payments that pay, overpay, repeat, miss, ..."""
    n_invoices = draw(st.integers(1, 6))
    ids = draw(
        st.lists(st.integers(1000, 1012), min_size=n_invoices, max_size=n_invoices, unique=True)
    )
    invoices = []
    for k, invoice_id in enumerate(ids):
        client = draw(st.integers(0, len(NAMES) - 1))
        total = draw(st.sampled_from(AMOUNTS))
        status = draw(st.sampled_from(STATUSES))
        balance = total if status in OPEN_STATUSES else "0.00"
        if status in OPEN_STATUSES and draw(st.booleans()):
            balance = draw(st.sampled_from([a for a in AMOUNTS if float(a) <= float(total)]))
        invoices.append(
            invoice(
                invoice_id,
                total,
                balance=balance,
                status=status,
                client_id=str(client),
                client_name=NAMES[client],
                currency=draw(st.sampled_from(("EUR", "EUR", "USD"))),
                invoice_num=f"INV-2026-{k + 1}" if draw(st.booleans()) else "",
                issued_on=f"2026-03-{draw(st.integers(1, 9)):02d}",
                due_on="2026-03-20",
            )
        )
    transactions = []
    for k in range(draw(st.integers(0, 8))):
        target = draw(st.sampled_from(invoices))
        amount = draw(
            st.one_of(
                st.just(target["balance"]),
                st.just(target["total"]),
                st.sampled_from(AMOUNTS),
                st.sampled_from(("-19.99", "-5.00", "0.01", "99.99")),
            )
        )
        template = draw(st.sampled_from(TEMPLATES))
        reference = template.format(
            id=target["invoice_id"],
            num=target["invoice_num"].rsplit("-", 1)[-1] or target["invoice_id"],
            other=draw(st.sampled_from(invoices))["invoice_id"],
        )
        transactions.append(
            payment(
                f"t{k}",
                amount,
                reference,
                counterparty=draw(st.sampled_from(PAYERS)),
                booked_on=f"2026-03-{draw(st.integers(5, 28)):02d}",
                currency=draw(st.sampled_from((target["currency"], target["currency"], "USD"))),
                source=draw(st.sampled_from(("bank", "bank", "stripe"))),
            )
        )
    recorded_rows = []
    for k in range(draw(st.integers(0, 2))):
        target = draw(st.sampled_from(invoices))
        transid = draw(st.sampled_from(["", *(t["transaction_id"] for t in transactions)]))
        recorded_rows.append(
            recorded(
                f"w{k}",
                int(target["invoice_id"]),
                target["total"],
                transid=transid,
                gateway=draw(st.sampled_from(("stripe", "banktransfer"))),
                currency=target["currency"],
                recorded_on=f"2026-03-{draw(st.integers(5, 28)):02d}",
            )
        )
    return _typed(invoices, transactions, recorded_rows)


_EPOCH = date(1970, 1, 1)


def _days(text: str) -> int:
    return (date.fromisoformat(text) - _EPOCH).days


def _typed(
    invoices: list[dict[str, str]],
    transactions: list[dict[str, str]],
    recorded_rows: list[dict[str, str]],
) -> MatchInputs:
    """Typed inputs straight from the rows (cheaper than validating text for every example)."""

    def text(rows: list[dict[str, str]], column: str) -> pd.Series:
        return pd.Series([r[column] for r in rows], dtype="str")

    def minor(rows: list[dict[str, str]], column: str) -> np.ndarray:
        return np.array([to_minor(r[column], r["currency"]) for r in rows], dtype=np.int64)

    def days(rows: list[dict[str, str]], column: str) -> np.ndarray:
        return np.array([_days(r[column]) for r in rows], dtype=np.int32)

    typed_invoices = pd.DataFrame(
        {
            "invoice_id": np.array([int(r["invoice_id"]) for r in invoices], dtype=np.int64),
            **{c: text(invoices, c) for c in ("invoice_num", "client_id", "client_name")},
            "company_name": text(invoices, "company_name"),
            "issued_on": days(invoices, "issued_on"),
            "due_on": days(invoices, "due_on"),
            "total": minor(invoices, "total"),
            "balance": minor(invoices, "balance"),
            "currency": text(invoices, "currency"),
            "status": text(invoices, "status"),
        }
    )
    typed_transactions = pd.DataFrame(
        {
            **{c: text(transactions, c) for c in ("transaction_id", "source", "account_id")},
            "booked_on": days(transactions, "booked_on"),
            "amount": minor(transactions, "amount"),
            **{c: text(transactions, c) for c in ("currency", "counterparty", "reference")},
        }
    )
    typed_recorded = pd.DataFrame(
        {
            "whmcs_txn_id": text(recorded_rows, "whmcs_txn_id"),
            "invoice_id": np.array([int(r["invoice_id"]) for r in recorded_rows], dtype=np.int64),
            "recorded_on": days(recorded_rows, "recorded_on"),
            "amount": minor(recorded_rows, "amount"),
            "fees": minor(recorded_rows, "fees"),
            **{c: text(recorded_rows, c) for c in ("currency", "gateway", "transid")},
        }
    )
    if not transactions:
        typed_transactions = inputs([], []).transactions
    if not recorded_rows:
        typed_recorded = inputs([], [], []).recorded
    return MatchInputs(typed_invoices, typed_transactions, typed_recorded)


def test_typed_inputs_equal_validated_inputs() -> None:
    """The shortcut above builds what file validation builds."""
    rows = [invoice(1000, "19.99", invoice_num="INV-2026-1")]
    txns = [payment("t1", "-5.00", "x")]
    recs = [recorded("w1", 1000, "19.99", transid="t1")]
    fast, checked = _typed(rows, txns, recs), inputs(rows, txns, recs)
    for name in ("invoices", "transactions", "recorded"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(checked, name))


def _shuffled(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _check_bounds(state: MatchInputs, result: MatchResult) -> None:
    a = result.allocations
    assert (a["amount"] > 0).all()
    txn = state.transactions.set_index("transaction_id")
    # per payment: never more than the payment, and only incoming payments
    per_payment = a.groupby("transaction_id")["amount"].sum()
    amounts = txn.loc[per_payment.index, "amount"]
    assert (amounts > 0).all()
    assert (per_payment <= amounts).all()
    # per invoice: allocations to apply never exceed what was open
    inv = state.invoices.set_index("invoice_id")
    new = a[~a["rule"].str.startswith(CONFIRMING_PREFIX)]
    per_invoice = new.groupby("invoice_id")["amount"].sum()
    is_open = inv["status"].isin(OPEN_STATUSES)
    open_balance = inv["balance"].where(is_open, 0)
    assert (per_invoice <= open_balance.loc[per_invoice.index]).all()
    # same currency, for every allocation to an invoice of the file
    known = a[a["invoice_id"].isin(inv.index)]
    assert (
        known["currency"].to_numpy() == inv.loc[known["invoice_id"], "currency"].to_numpy()
    ).all()
    assert (
        known["currency"].to_numpy() == txn.loc[known["transaction_id"], "currency"].to_numpy()
    ).all()


@RUN_SETTINGS
@given(world=worlds())
def test_allocation_bounds_currencies_and_debits(world: MatchInputs) -> None:
    result = match(world, CONFIG)
    _check_bounds(world, result)
    debits = world.transactions.loc[world.transactions["amount"] <= 0, "transaction_id"]
    assert not result.allocations["transaction_id"].isin(debits).any()


@RUN_SETTINGS
@given(world=worlds(), seed=st.integers(0, 2**16))
def test_result_does_not_depend_on_input_order(world: MatchInputs, seed: int) -> None:
    first = match(world, CONFIG)
    shuffled = MatchInputs(
        invoices=_shuffled(world.invoices, seed),
        transactions=_shuffled(world.transactions, seed + 1),
        recorded=_shuffled(world.recorded, seed + 2),
        payouts=world.payouts,
        payout_lines=world.payout_lines,
    )
    second = match(shuffled, CONFIG)
    pd.testing.assert_frame_equal(first.allocations, second.allocations)
    pd.testing.assert_frame_equal(first.exceptions, second.exceptions)


@RUN_SETTINGS
@given(world=worlds())
def test_rerunning_on_the_applied_state_adds_nothing(world: MatchInputs) -> None:
    first = match(world, CONFIG)
    state = apply_result(world, first)
    second = match(state, CONFIG)
    _check_bounds(state, second)
    added = second.allocations[~second.allocations["rule"].str.startswith(CONFIRMING_PREFIX)]
    assert added[added["decision"] == "auto"].empty
    # and every applied allocation is now confirmed by its recorded payment
    applied = first.allocations[
        (first.allocations["decision"] == "auto")
        & ~first.allocations["rule"].str.startswith(CONFIRMING_PREFIX)
    ]
    confirmed = second.allocations[second.allocations["rule"] == "recorded_transid"]
    pairs = set(zip(confirmed["transaction_id"], confirmed["invoice_id"], strict=True))
    assert set(zip(applied["transaction_id"], applied["invoice_id"], strict=True)) <= pairs


def _one(**fields: Any) -> MatchInputs:
    return inputs([invoice(1000, "19.99")], [payment("t1", "19.99", "Invoice 1000", **fields)])


def test_properties_see_real_allocations() -> None:
    """The strategies do produce automatic allocations (the properties are not vacuous)."""
    result = match(_one(), CONFIG)
    assert (result.allocations["decision"] == "auto").sum() == 1
    assert np.array_equal(result.allocations["amount"].to_numpy(), np.array([1999]))
