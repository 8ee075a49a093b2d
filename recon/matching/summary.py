"""summary.json and the summary table: counts and sums by decision and exception kind."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from recon.matching.config import MatchConfig
from recon.matching.frames import MatchInputs, MatchResult
from recon.money import format_amount

LOW_MASK = np.int64(2**31 - 1)


def _sums(frame: pd.DataFrame) -> dict[str, str]:
    """Sum of `amount` per currency, as exact decimal strings.

    Amounts may be up to 2**62 minor units each, so an int64 sum can wrap: each amount is split
    into a high and a low 31-bit part, summed separately (neither can wrap below 2**31 rows) and
    joined as Python integers.
    """
    if frame.empty:
        return {}
    amount = frame["amount"].to_numpy(dtype=np.int64)
    parts = pd.DataFrame(
        {"currency": frame["currency"].to_numpy(), "high": amount >> 31, "low": amount & LOW_MASK}
    )
    totals = parts.groupby("currency", sort=True)[["high", "low"]].sum()
    out: dict[str, str] = {}
    for currency, high, low in zip(
        totals.index, totals["high"].tolist(), totals["low"].tolist(), strict=True
    ):
        code = str(currency)
        out[code] = format_amount(int(high) * 2**31 + int(low), code)
    return out


def build_summary(
    inputs: MatchInputs,
    result: MatchResult,
    config: MatchConfig,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Counts and sums by decision and by exception kind, the engine's counters and timings."""
    allocations = result.allocations
    decisions: dict[str, Any] = {}
    for decision in ("auto", "review"):
        part = allocations[allocations["decision"] == decision]
        decisions[decision] = {
            "rows": len(part),
            "payments": int(part["transaction_id"].nunique()),
            "invoices": int(part["invoice_id"].nunique()),
            "amount": _sums(part),
        }
    labels = allocations["decision"] + ":" + allocations["rule"]
    rules = {str(k): int(n) for k, n in labels.value_counts().sort_index().items()}
    exceptions: dict[str, Any] = {}
    for kind, part in result.exceptions.groupby("kind", sort=True):
        exceptions[str(kind)] = {"count": len(part), "amount": _sums(part)}
    return {
        "inputs": {
            "invoices": len(inputs.invoices),
            "transactions": len(inputs.transactions),
            "recorded": len(inputs.recorded),
            "payouts": len(inputs.payouts),
            "payout_lines": len(inputs.payout_lines),
        },
        "allocations": decisions,
        "allocations_by_rule": rules,
        "exceptions": exceptions,
        "engine": result.stats,
        "timings_seconds": {**(timings or {}), "match_stages": result.timings},
        "config": config.model_dump(mode="json"),
    }


def summary_table(summary: dict[str, Any]) -> Table:
    """A short table for the terminal: one row per decision and per exception kind."""
    table = Table(title="recon match", show_lines=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("amount", justify="right")

    def amounts(sums: dict[str, str]) -> str:
        return ", ".join(f"{value} {code}" for code, value in sums.items()) or "-"

    for decision, part in summary["allocations"].items():
        table.add_row(
            f"allocated ({decision})",
            f"{part['payments']} payments / {part['rows']} rows",
            amounts(part["amount"]),
        )
    for kind, part in summary["exceptions"].items():
        table.add_row(f"exception: {kind}", str(part["count"]), amounts(part["amount"]))
    return table
