"""`generate`: the steps in their fixed order, and the frames of the `World` they build."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from connectors.sandbox.synth.bank import _bank_payments
from connectors.sandbox.synth.frames import _LS, _iso, _money, _num, _table, _Txns
from connectors.sandbox.synth.model import SynthConfig, World
from connectors.sandbox.synth.noise import _closed_payments, _non_customer, _outgoing, _unbacked
from connectors.sandbox.synth.parties import _clients, _invoices
from connectors.sandbox.synth.providers import _provider_payments
from connectors.sandbox.synth.vocab import _EPOCH


def generate(config: SynthConfig | None = None) -> World:
    """Build the world for a configuration (deterministic for a given seed)."""
    cfg = config or SynthConfig()
    rng = np.random.default_rng(cfg.seed)
    day0 = int((np.datetime64(cfg.start, "D") - _EPOCH).astype(np.int64))
    clients = _clients(cfg, rng)
    inv = _invoices(cfg, rng, clients, day0)
    txns = _Txns()
    truth: list[pd.DataFrame] = []
    recorded: list[pd.DataFrame] = []
    _bank_payments(cfg, rng, inv, clients, txns, truth, recorded)
    payouts, lines = _provider_payments(cfg, rng, inv, clients, txns, truth, recorded)
    unbacked = _unbacked(rng, inv, recorded)
    _closed_payments(cfg, rng, inv, clients, txns)
    _non_customer(cfg, rng, inv, txns, day0)
    _outgoing(cfg, rng, inv, txns, day0)
    return _assemble(cfg, inv, txns, truth, recorded, payouts, lines, unbacked)


def _assemble(
    cfg: SynthConfig,
    inv: pd.DataFrame,
    txns: _Txns,
    truth: list[pd.DataFrame],
    recorded: list[pd.DataFrame],
    payouts: pd.DataFrame,
    lines: pd.DataFrame,
    unbacked: pd.DataFrame,
) -> World:
    currency = inv["currency"].to_numpy()
    invoices = _table(
        {
            "invoice_id": _num(inv["invoice_id"].to_numpy()),
            "invoice_num": inv["invoice_num"].to_numpy(),
            "client_id": _num(inv["client"].to_numpy() + 1),
            "client_name": inv["client_name"].to_numpy(),
            "company_name": inv["company_name"].to_numpy(),
            "issued_on": _iso(inv["issued"].to_numpy()),
            "due_on": _iso(inv["due"].to_numpy()),
            "total": _money(inv["total"].to_numpy(), currency),
            "balance": _money(inv["balance"].to_numpy(), currency),
            "currency": currency,
            "status": inv["status"].to_numpy(),
        }
    )
    ids = pa.concat_arrays(txns.ids)
    source = np.concatenate(txns.source)
    t_ccy = np.concatenate(txns.currency)
    transactions = _table(
        {
            "transaction_id": ids,
            "source": source,
            "account_id": np.where(source == "bank", "DE89370400440532013000", ""),
            "booked_on": _iso(np.concatenate(txns.booked)),
            "amount": _money(np.concatenate(txns.amount), t_ccy),
            "currency": t_ccy,
            "counterparty": pa.concat_arrays(txns.payer),
            "reference": pa.concat_arrays(txns.reference),
        }
    )
    rec = pd.concat(recorded, ignore_index=True)
    r_ccy = rec["currency"].to_numpy(dtype=object)
    recorded_frame = _table(
        {
            "whmcs_txn_id": rec["whmcs_txn_id"].to_numpy(dtype=object),
            "invoice_id": _num(rec["invoice_id"].to_numpy()),
            "recorded_on": _iso(rec["recorded_on"].to_numpy()),
            "amount": _money(rec["amount"].to_numpy(), r_ccy),
            "fees": _money(rec["fees"].to_numpy(), r_ccy),
            "currency": r_ccy,
            "gateway": rec["gateway"].to_numpy(dtype=object),
            "transid": rec["transid"].to_numpy(dtype=object),
        }
    )
    p_ccy = payouts["currency"].to_numpy(dtype=object)
    payout_frame = _table(
        {
            "payout_id": payouts["payout_id"].to_numpy(dtype=object),
            "source": payouts["source"].to_numpy(dtype=object),
            "arrival_on": _iso(payouts["arrival_on"].to_numpy()),
            "amount": _money(payouts["amount"].to_numpy(), p_ccy),
            "currency": p_ccy,
            "status": payouts["status"].to_numpy(dtype=object),
        }
    )
    truth_frame = pd.concat(truth, ignore_index=True)
    belongs = pc.is_in(ids, value_set=pa.array(truth_frame["transaction_id"]).cast(_LS))
    cases = _table(
        {
            "transaction_id": ids,
            "case": np.concatenate(txns.case),
            "expected": np.concatenate(txns.expected),
            "customer": np.concatenate(txns.customer),
        }
    )
    cases["belongs"] = belongs.to_numpy(zero_copy_only=False)
    return World(
        invoices=invoices,
        transactions=transactions,
        recorded=recorded_frame,
        payouts=payout_frame,
        payout_lines=_table(
            {
                "payout_id": lines["payout_id"].to_numpy(dtype=object),
                "transaction_id": lines["transaction_id"].to_numpy(dtype=object),
            }
        ),
        truth=truth_frame,
        cases=cases,
        unbacked=unbacked,
        config=cfg,
    )
