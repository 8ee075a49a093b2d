"""Named record malformations for `FaultPlan.malform` on the Stripe sandbox."""

from __future__ import annotations

from collections.abc import Callable

from connectors.sandbox.stripe.model import JSON


def drop_amount(record: JSON) -> None:
    """A malformation for `faults.malform`: the record loses its `amount` (payouts' own kept)."""
    if record.get("type") != "payout":
        record.pop("amount", None)


def bad_currency(record: JSON) -> None:
    """A malformation for `faults.malform`: a currency that is not ISO 4217 (payouts' own kept)."""
    if record.get("type") != "payout":
        record["currency"] = "zzz"


MALFORMATIONS: dict[str, Callable[[JSON], None]] = {
    "missing_amount": drop_amount,
    "bad_currency": bad_currency,
}
"""Named record malformations (e.g. for a `--faults` option of `recon sandbox serve`)."""
