"""Recorded payments with no money, payments for closed invoices, non-customer credits, outgoing payments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from connectors.sandbox.synth.frames import _cat, _ids, _num, _pick, _text, _Txns
from connectors.sandbox.synth.model import SynthConfig
from connectors.sandbox.synth.parties import (
    _CANCELLED,
    _PAID_BEFORE,
    _UNBACKED,
    _by_template,
    _payer_names,
)
from connectors.sandbox.synth.vocab import _EPOCH, NON_CUSTOMERS, PRICE_TIERS, SUPPLIERS


def _unbacked(
    rng: np.random.Generator, inv: pd.DataFrame, recorded: list[pd.DataFrame]
) -> pd.DataFrame:
    """Payments WHMCS recorded as received with no money behind them."""
    rows = np.flatnonzero(inv["fate"].to_numpy() == _UNBACKED)
    stripe = rng.random(len(rows)) < 0.5
    serial = np.arange(len(rows), dtype=np.int64)
    transid = pc.if_else(
        pa.array(stripe), _ids("ch_", serial + 10_000_000, 24, 99), _text([""] * len(rows))
    )
    ids = _num(40_000_000 + serial).to_numpy(zero_copy_only=False)
    recorded.append(
        pd.DataFrame(
            {
                "whmcs_txn_id": ids,
                "invoice_id": inv["invoice_id"].to_numpy()[rows],
                "recorded_on": inv["issued"].to_numpy()[rows] + rng.integers(0, 10, len(rows)),
                "amount": inv["total"].to_numpy()[rows],
                "fees": np.zeros(len(rows), dtype=np.int64),
                "currency": inv["currency"].to_numpy()[rows],
                "gateway": np.where(stripe, "stripe", "banktransfer"),
                "transid": transid.to_numpy(zero_copy_only=False),
            }
        )
    )
    return pd.DataFrame({"whmcs_txn_id": ids})


def _closed_payments(
    cfg: SynthConfig, rng: np.random.Generator, inv: pd.DataFrame, clients: pd.DataFrame,
    txns: _Txns,
) -> None:  # fmt: skip
    fate = inv["fate"].to_numpy()
    closed = np.flatnonzero(np.isin(fate, [_PAID_BEFORE, _CANCELLED]))
    n = min(len(closed), int(cfg.n_invoices * cfg.closed_payments))
    if not n:
        return
    rows = rng.choice(closed, size=n, replace=False)
    rows.sort()
    amount = inv["total"].to_numpy()[rows]
    day0 = int((np.datetime64(cfg.start, "D") - _EPOCH).astype(np.int64))
    booked = np.maximum(inv["issued"].to_numpy()[rows], day0) + rng.integers(5, 60, n)
    ids = _ids("bk_cl_", np.arange(n, dtype=np.int64), 14, 5)
    ref = _cat("Invoice ", _num(inv["invoice_id"].to_numpy()[rows]))
    payer = _payer_names(rng, clients, inv["client"].to_numpy()[rows], 0.0, 0.0)
    paid = fate[rows] == _PAID_BEFORE
    expected = np.where(paid, "duplicate_payment", "closed_invoice")
    txns.add(ids, "bank", booked, amount, inv["currency"].to_numpy()[rows], payer, ref,
             np.where(paid, "paid_invoice", "cancelled_invoice"), expected, True)  # fmt: skip


def _non_customer(
    cfg: SynthConfig, rng: np.random.Generator, inv: pd.DataFrame, txns: _Txns, day0: int
) -> None:
    n = int(cfg.n_invoices * cfg.non_customer)
    if not n:
        return
    ids = _ids("bk_nc_", np.arange(n, dtype=np.int64), 14, 7)
    who = _pick(NON_CUSTOMERS, rng.integers(0, len(NON_CUSTOMERS), n))
    amount = np.exp(rng.uniform(np.log(100), np.log(500_000), n)).astype(np.int64)
    rounded = rng.random(n) < 0.2
    amount[rounded] = (amount[rounded] // 10_000 + 1) * 10_000
    low, high = int(inv["invoice_id"].min()), int(inv["invoice_id"].max())
    values = {
        "R": _num(rng.integers(low, high + 1, n)),
        "S": _num(rng.integers(1000, 99_999, n)),
        "Y": _num(rng.integers(2023, 2027, n)),
    }
    styles = (
        ("Erstattung Umsatzsteuer {Y} StNr 143/{S}", 2),
        ("Interest {Y}", 2),
        ("Transfer from savings {S}", 2),
        ("Refund order {R}", 2),
        ("Gutschrift {R}", 2),
        ("Reimbursement {R}", 1),
        ("{R}", 1),
        ("", 1),
    )
    reference = _by_template(rng, np.arange(n), styles, values)
    booked = day0 + rng.integers(0, cfg.days, n)
    currency = np.full(n, "EUR", dtype=object)
    txns.add(ids, "bank", booked, amount, currency, who, reference, "non_customer",
             "unmatched_payment", False)  # fmt: skip


def _outgoing(
    cfg: SynthConfig, rng: np.random.Generator, inv: pd.DataFrame, txns: _Txns, day0: int
) -> None:
    n = int(cfg.n_invoices * cfg.outgoing)
    if not n:
        return
    ids = _ids("bk_out_", np.arange(n, dtype=np.int64), 14, 9)
    who = _pick(SUPPLIERS, rng.integers(0, len(SUPPLIERS), n))
    tiers = np.array(PRICE_TIERS, dtype=np.int64)
    amount = np.where(
        rng.random(n) < 0.5,
        tiers[rng.integers(0, len(tiers), n)],
        np.exp(rng.uniform(np.log(500), np.log(2_000_000), n)).astype(np.int64),
    )
    low, high = int(inv["invoice_id"].min()), int(inv["invoice_id"].max())
    values = {"R": _num(rng.integers(low, high + 1, n)), "S": _num(rng.integers(100, 99_999, n))}
    styles = (("Invoice {R}", 3), ("RE {R}", 2), ("Rechnung {S}", 2), ("Miete", 1), ("Gehalt", 1))
    reference = _by_template(rng, np.arange(n), styles, values)
    booked = day0 + rng.integers(0, cfg.days, n)
    currency = np.full(n, "EUR", dtype=object)
    txns.add(ids, "bank", booked, -amount, currency, who, reference, "outgoing", "", False)
