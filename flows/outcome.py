"""The typed result of a reconciliation run: what `flows.reconcile` returns and its callers read.

Kept apart from the flow so entry points can name the type without importing Prefect's flow
machinery. A frozen dataclass of plain fields pickles for Prefect's result persistence;
`to_json`/`from_json` give the JSON form for events, deployments and `--json` output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceFigures:
    """What one source contributed to a run."""

    pages: int
    replayed: bool
    loaded: int
    quarantined: int


@dataclass(frozen=True)
class ApplyFigures:
    """What a run wrote back to WHMCS."""

    applied: int
    already_in_whmcs: int
    failed: int


@dataclass(frozen=True)
class RunOutcome:
    """One run's figures: per-source counts, the engine's counts and changes, the money
    allocated automatically per currency, what was applied, and the signed audit anchor."""

    run_id: str
    sources: dict[str, SourceFigures]
    transactions: int
    allocations_auto: int
    allocations_review: int
    exceptions: int
    allocations_added: int
    allocations_reversed: int
    exceptions_opened: int
    exceptions_closed: int
    allocated_minor: dict[str, int]
    audit_anchor: dict[str, Any]
    apply: ApplyFigures | None = None
    timings: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, Any]:
        """The figures stored on the run's row (everything but the id, money and anchor)."""
        data = self.to_json()
        for key in ("run_id", "allocated_minor", "audit_anchor"):
            data.pop(key)
        if data["apply"] is None:
            data.pop("apply")
        return data

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOutcome:
        """The outcome back from `to_json`'s fields."""
        fields = dict(data)
        fields["sources"] = {k: SourceFigures(**v) for k, v in data["sources"].items()}
        applied = data.get("apply")
        fields["apply"] = ApplyFigures(**applied) if applied else None
        return cls(**fields)
