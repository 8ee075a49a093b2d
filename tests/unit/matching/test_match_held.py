"""The optional `held` column of the invoices: money other allocations already hold caps what
the engine may allocate, but a payment scores against the invoice's balance all the same."""

from __future__ import annotations

import pandas as pd
import pytest

from recon.errors import InputFileError
from recon.matching import MatchConfig, inputs_from_frames, match
from recon.matching.frames import INVOICE_COLUMNS, TRANSACTION_COLUMNS
from tests.unit.matching.helpers import FORMAT, frame, invoice, payment


def _run(held: str | None, balance: str = "100.00") -> pd.DataFrame:
    row = invoice(100, "100.00", balance=balance, invoice_num="INV-2026-100")
    invoices = frame([row], INVOICE_COLUMNS)
    if held is not None:
        invoices["held"] = pd.Series([held], dtype="str")
    transactions = frame([payment("t2", "50.00", "INV-2026-100")], TRANSACTION_COLUMNS)
    inputs = inputs_from_frames(invoices, transactions)
    return match(inputs, MatchConfig(invoice_number_format=FORMAT)).allocations


def test_without_held_a_partial_payment_is_scored_as_partial() -> None:
    assert _run(None)[["amount", "rule"]].values.tolist() == [[5000, "ref_partial_payer"]]
    assert _run("")[["amount", "rule"]].values.tolist() == [[5000, "ref_partial_payer"]]


def test_held_money_does_not_change_the_rule_or_the_confidence() -> None:
    """An earlier 50.00 held on the invoice: the second 50.00 still scores as a partial
    payment of 100.00, as it does when both payments are matched in one run; taking the held
    money off the balance instead would score it as paying the invoice exactly."""
    free, held, reduced = _run("0.00"), _run("50.00"), _run(None, balance="50.00")
    columns = ["transaction_id", "invoice_id", "amount", "rule", "confidence", "decision"]
    assert held[columns].values.tolist() == free[columns].values.tolist()
    assert reduced["rule"].tolist() != held["rule"].tolist()


def test_held_money_caps_what_is_allocated() -> None:
    allocated = _run("70.00")
    assert allocated["amount"].tolist() == [3000]
    assert _run("100.00")["amount"].sum() == 0


def test_a_negative_held_amount_is_refused() -> None:
    with pytest.raises(InputFileError, match=r"column held: '-1\.00' is negative"):
        _run("-1.00")
