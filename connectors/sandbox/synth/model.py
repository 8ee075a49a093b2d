"""`SynthConfig` (size, seed, every noise rate) and `World` (the inputs and their truth)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]


@dataclass(frozen=True)
class SynthConfig:
    """Size, seed and the rate of every kind of noise (shares of the relevant population)."""

    n_invoices: int = 10_000
    seed: int = 7
    start: str = "2025-07-01"
    days: int = 365
    invoice_number_format: str = "INV-{YEAR}-{NUMBER}"
    first_invoice_id: int = 10_001
    first_invoice_number: int = 1
    numbered_share: float = 0.7
    clients_per_invoice: float = 0.25
    company_share: float = 0.35
    currencies: tuple[tuple[str, float], ...] = (("EUR", 0.85), ("USD", 0.10), ("GBP", 0.05))
    # what became of each invoice
    paid_before_share: float = 0.06
    cancelled_share: float = 0.02
    unpaid_share: float = 0.05
    unbacked_share: float = 0.003
    stripe_share: float = 0.22
    gocardless_share: float = 0.06
    # bank payments
    recorded_bank_share: float = 0.10
    multi_listed: float = 0.03
    multi_unlisted: float = 0.01
    partial: float = 0.02
    overpaid: float = 0.01
    fee_short: float = 0.02
    duplicate: float = 0.005
    other_currency: float = 0.004
    # references and payers of bank payments
    no_reference: float = 0.07
    typo: float = 0.02
    decoy: float = 0.25
    bank_prefix: float = 0.25
    cut_at_18: float = 0.15
    third_party_payer: float = 0.08
    empty_payer: float = 0.02
    # cards and direct debits
    stripe_unrecorded: float = 0.02
    refund: float = 0.005
    dispute: float = 0.002
    payout_short: float = 0.02
    payout_breakdown_off: float = 0.01
    # lines that are not customer payments (shares of n_invoices)
    closed_payments: float = 0.005
    non_customer: float = 0.03
    outgoing: float = 0.06


@dataclass(frozen=True)
class World:
    """The synthetic inputs (§4.3 shapes, all text) and the truth to grade a matcher against.

    `truth`: transaction_id, invoice_id, amount_minor, currency, confirms (the payment confirms a
    WHMCS-recorded one). `cases`: one row per transaction: case, expected exception kind ("" if
    none), customer (a payment by a customer), belongs (it should be allocated to invoices).
    `unbacked`: whmcs_txn_id of the recorded payments that no money backs.
    """

    invoices: pd.DataFrame
    transactions: pd.DataFrame
    recorded: pd.DataFrame
    payouts: pd.DataFrame
    payout_lines: pd.DataFrame
    truth: pd.DataFrame
    cases: pd.DataFrame
    unbacked: pd.DataFrame
    config: SynthConfig = field(default_factory=SynthConfig)

    def write_csv(self, folder: Path) -> dict[str, Path]:
        """Write the five input files as UTF-8 CSV; returns their paths by name."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("invoices", "transactions", "recorded", "payouts", "payout_lines"):
            frame: pd.DataFrame = getattr(self, name)
            path = folder / f"{name}.csv"
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
            paths[name] = path
        return paths
