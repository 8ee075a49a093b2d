"""Stripe charges and GoCardless payments: fees, refunds, disputes, payouts and their bank credits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from connectors.sandbox.synth.frames import _LS, I64, Text, _cat, _ids, _num, _text, _Txns
from connectors.sandbox.synth.model import SynthConfig
from connectors.sandbox.synth.parties import _GOCARDLESS, _STRIPE, _payer_names


@dataclass(frozen=True)
class _Provider:
    """One card or direct-debit provider as the world draws it."""

    fate: int
    source: str
    prefix: str
    salt: int
    width: int
    payer_text: str


_PROVIDERS = (
    _Provider(_STRIPE, "stripe", "ch_", 21, 24, "STRIPE"),
    _Provider(_GOCARDLESS, "gocardless", "PM", 37, 12, "GOCARDLESS LTD"),
)


@dataclass(frozen=True)
class _Money:
    """Provider balance lines of one provider: ids, days, amounts, currencies."""

    ids: Text
    booked: I64
    amount: I64
    ccy: npt.NDArray[np.object_]


def _provider_payments(
    cfg: SynthConfig,
    rng: np.random.Generator,
    inv: pd.DataFrame,
    clients: pd.DataFrame,
    txns: _Txns,
    truth: list[pd.DataFrame],
    recorded: list[pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stripe charges and GoCardless payments, their fees, refunds, disputes and payouts.

    The steps draw from `rng` in a fixed order (charges, refunds and disputes, payouts, payout
    credits), so the same seed gives the same world.
    """
    payout_frames: list[pd.DataFrame] = []
    line_frames: list[pd.DataFrame] = []
    for provider in _PROVIDERS:
        rows = np.flatnonzero(inv["fate"].to_numpy() == provider.fate)
        if not len(rows):
            continue
        charges = _provider_charges(cfg, rng, provider, inv, clients, rows, txns, truth, recorded)
        fees = _provider_fees(provider, charges, txns)
        back = _refunds_and_disputes(cfg, rng, provider, charges, txns)
        payouts, lines = _payouts(cfg, rng, provider, [charges, fees, back])
        payout_frames.append(payouts)
        line_frames.append(lines)
        _payout_credits(cfg, rng, provider, payouts, txns)
    for frame in payout_frames:
        del frame["_amount"]
    payouts_all = pd.concat(payout_frames, ignore_index=True) if payout_frames else pd.DataFrame()
    lines_all = pd.concat(line_frames, ignore_index=True) if line_frames else pd.DataFrame()
    return payouts_all, lines_all


def _provider_charges(
    cfg: SynthConfig,
    rng: np.random.Generator,
    provider: _Provider,
    inv: pd.DataFrame,
    clients: pd.DataFrame,
    rows: npt.NDArray[np.intp],
    txns: _Txns,
    truth: list[pd.DataFrame],
    recorded: list[pd.DataFrame],
) -> _Money:
    """The provider's charges of the invoices in `rows`; most recorded in WHMCS by transid."""
    n, source = len(rows), provider.source
    amount = inv["total"].to_numpy()[rows]
    ccy = inv["currency"].to_numpy()[rows]
    booked = inv["issued"].to_numpy()[rows] + rng.integers(0, 11, n)
    serial = np.arange(n, dtype=np.int64)
    ids = _ids(provider.prefix, serial, provider.width, provider.salt)
    company = _text(clients["company"].to_numpy()[inv["client"].to_numpy()[rows]])
    invoice_ids = _num(inv["invoice_id"].to_numpy()[rows])
    described = pc.if_else(
        pa.array(pc.equal(company, "").to_numpy(zero_copy_only=False)),
        _cat("Invoice #", invoice_ids),
        _cat(company, " - Invoice #", invoice_ids),
    )
    payer = _payer_names(rng, clients, inv["client"].to_numpy()[rows], 0.1, 0.1)
    unrecorded = rng.random(n) < cfg.stripe_unrecorded
    case = np.where(unrecorded, f"{source}_description", f"{source}_recorded")
    txns.add(ids, source, booked, amount, ccy, payer, described, case, "", True)
    truth.append(
        pd.DataFrame(
            {
                "transaction_id": ids.to_numpy(zero_copy_only=False),
                "invoice_id": inv["invoice_id"].to_numpy()[rows],
                "amount_minor": amount,
                "currency": ccy,
                "confirms": ~unrecorded,
            }
        )
    )
    rec = ~unrecorded
    inv.loc[rows[rec], "status"] = "Paid"
    inv.loc[rows[rec], "balance"] = 0
    recorded.append(
        pd.DataFrame(
            {
                "whmcs_txn_id": _num(
                    (20_000_000 if source == "stripe" else 30_000_000) + serial[rec]
                ).to_numpy(zero_copy_only=False),
                "invoice_id": inv["invoice_id"].to_numpy()[rows[rec]],
                "recorded_on": booked[rec],
                "amount": amount[rec],
                "fees": (amount[rec] * 15 // 1000 + 25),
                "currency": ccy[rec],
                "gateway": source,
                "transid": ids.filter(pa.array(rec)).to_numpy(zero_copy_only=False),
            }
        )
    )
    return _Money(ids, booked, amount, ccy)


def _provider_fees(provider: _Provider, charges: _Money, txns: _Txns) -> _Money:
    """The provider's fee on each charge (1.5 % + 25 minor units), booked the same day."""
    source, n = provider.source, len(charges.amount)
    fee = charges.amount * 15 // 1000 + 25
    fee_ids = _cat(charges.ids, ":fee")
    fee_ref = _cat(f"{source.capitalize()} fee for ", charges.ids)
    txns.add(fee_ids, source, charges.booked, -fee, charges.ccy, _text([""] * n), fee_ref,
             "provider_fee", "", False)  # fmt: skip
    return _Money(fee_ids, charges.booked, -fee, charges.ccy)


def _refunds_and_disputes(
    cfg: SynthConfig, rng: np.random.Generator, provider: _Provider, charges: _Money, txns: _Txns
) -> _Money:
    """Some charges refunded (half, at least 1) or disputed (whole), 3 to 29 days later."""
    n = len(charges.amount)
    roll = rng.random(n)
    back = np.flatnonzero(roll < cfg.refund + cfg.dispute)
    is_dispute = roll[back] < cfg.dispute
    back_ids = _cat(_ids("txn_", np.arange(n, dtype=np.int64)[back], 20, provider.salt + 1), "")
    back_ref = pc.if_else(
        pa.array(is_dispute),
        _cat("Dispute ", charges.ids.take(pa.array(back))),
        _cat("Refund for ", charges.ids.take(pa.array(back))),
    )
    amount = charges.amount[back]
    back_amount = -np.where(is_dispute, amount, np.maximum(amount // 2, 1))
    back_booked = charges.booked[back] + rng.integers(3, 30, len(back))
    kind = np.where(is_dispute, "dispute", "refund")
    txns.add(back_ids, provider.source, back_booked, back_amount, charges.ccy[back],
             _text([""] * len(back)), back_ref, kind, kind, False)  # fmt: skip
    return _Money(back_ids, back_booked, back_amount, charges.ccy[back])


def _payouts(
    cfg: SynthConfig, rng: np.random.Generator, provider: _Provider, parts: list[_Money]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Everything of a currency and day paid out two days later; some payouts declare an
    amount their lines do not add up to. Returns (payouts, payout lines); the payouts carry
    their lines' true sum as `_amount` for the bank credit."""
    all_ids = pa.concat_arrays([p.ids.cast(_LS) for p in parts])
    all_booked = np.concatenate([p.booked for p in parts])
    all_amount = np.concatenate([p.amount for p in parts])
    all_ccy = np.concatenate([p.ccy for p in parts])
    frame = pd.DataFrame({"day": all_booked + 2, "ccy": all_ccy, "amount": all_amount})
    key = frame.groupby(["ccy", "day"], sort=True).ngroup().to_numpy()
    sums = frame.groupby(["ccy", "day"], sort=True)["amount"].sum()
    n_po = len(sums)
    po_ids = _ids("po_" if provider.source == "stripe" else "PO",
                  np.arange(n_po, dtype=np.int64), 16, provider.salt + 2)  # fmt: skip
    po_day = sums.index.get_level_values(1).to_numpy(dtype=np.int64)
    po_amount = sums.to_numpy(dtype=np.int64)
    last_day = int(all_booked.max()) if len(all_booked) else 0
    declared = po_amount.copy()
    off = (rng.random(n_po) < cfg.payout_breakdown_off) & (po_amount > 0)
    declared[off] += rng.integers(-500, 500, int(off.sum())) | 1
    payouts = pd.DataFrame(
        {
            "payout_id": po_ids.to_numpy(zero_copy_only=False),
            "source": provider.source,
            "arrival_on": po_day,
            "amount": declared,
            "currency": sums.index.get_level_values(0).to_numpy(dtype=object),
            "status": np.where(po_day + 2 > last_day, "in_transit", "paid"),
            "_off": off,
            "_amount": po_amount,
        }
    )
    lines = pd.DataFrame(
        {
            "payout_id": po_ids.take(pa.array(key)).to_numpy(zero_copy_only=False),
            "transaction_id": all_ids.to_numpy(zero_copy_only=False),
        }
    )
    return payouts, lines


def _payout_credits(
    cfg: SynthConfig,
    rng: np.random.Generator,
    provider: _Provider,
    payouts: pd.DataFrame,
    txns: _Txns,
) -> None:
    """The bank credit of each paid payout, some arriving short (a negative payout, refunds
    beyond charges, is a debit of the bank account)."""
    status = payouts["status"].to_numpy()
    declared = payouts["amount"].to_numpy(dtype=np.int64)
    paid = np.flatnonzero((status == "paid") & (payouts["_amount"].to_numpy() != 0))
    short = (rng.random(len(paid)) < cfg.payout_short) & (declared[paid] > 0)
    credit = declared[paid].copy()
    cut = np.maximum(
        1, (credit[short] * rng.uniform(0.005, 0.05, int(short.sum()))).astype(np.int64)
    )
    credit[short] -= cut
    salt, payer_text = provider.salt, provider.payer_text
    credit_ids = _ids(
        "bk_po_", np.arange(len(paid), dtype=np.int64) + salt * 1_000_000, 16, salt + 3
    )
    po_ids = pa.array(payouts["payout_id"].to_numpy()[paid], type=_LS)
    reference = pc.utf8_slice_codeunits(_cat(f"{payer_text} PAYOUT ", po_ids), 0, 30)
    expected = np.where(short, "payout_shortfall", "")
    po_day = payouts["arrival_on"].to_numpy(dtype=np.int64)[paid]
    po_ccy = payouts["currency"].to_numpy(dtype=object)[paid]
    txns.add(credit_ids, "bank", po_day + rng.integers(0, 2, len(paid)), credit, po_ccy,
             _text([payer_text] * len(paid)), reference, "payout_credit", expected,
             False)  # fmt: skip
