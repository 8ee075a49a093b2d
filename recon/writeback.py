"""What may be written back to WHMCS: the one definition, for the engine and for `recon apply`.

Only money WHMCS does not have is ever recorded there. An allocation may be written back when
the engine decided it automatically (`auto`) or a person made it (`manual`: by hand, or by
accepting a suggestion; a suggestion itself waits for a person) and its rule found *new* money. A rule named `recorded_*` (`recorded_transid`, `recorded_reference`,
`recorded_payer`, ...) only confirms a payment WHMCS has already recorded, with or without a
transid: writing it back would count the same money twice.

`recon.matching.apply` (what the engine's idempotence test applies) and `tasks.apply` (what
`recon apply` sends to WHMCS) both decide through `may_write_back`.
"""

from __future__ import annotations

WRITE_BACK_DECISION = "auto"
WRITE_BACK_DECISIONS = frozenset({WRITE_BACK_DECISION, "manual"})
"""Decisions whose allocations are money to record in WHMCS: the engine's automatic ones and
people's."""
CONFIRMING_PREFIX = "recorded_"
"""Rules whose name starts with this confirm a payment WHMCS already records."""


def confirms_recorded(rule: str) -> bool:
    """Whether `rule` only confirms a payment WHMCS already records."""
    return rule.startswith(CONFIRMING_PREFIX)


def may_write_back(rule: str, decision: str) -> bool:
    """Whether an allocation with this rule and decision is money to record in WHMCS."""
    return decision in WRITE_BACK_DECISIONS and not confirms_recorded(rule)
