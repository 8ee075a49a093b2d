"""What the engine reads of a loaded transaction besides its own id: the ids a WHMCS payment may
carry as `transid` for it.

A Stripe row is one balance transaction, keyed by its `txn_...` id, while WHMCS (and its Stripe
module) records the payment under the charge (`ch_...`) or its payment intent (`pi_...`). The
normaliser keeps both on the row (`charge_id`, `payment_intent`); these helpers hand them to the
engine (`tasks.reconcile.build_frames`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from recon.db.models import Transaction
from recon.review.ledger import whmcs_ids


def transid_aliases(session: Session) -> dict[str, tuple[str, ...]]:
    """Transaction ref -> the ids WHMCS may record as a payment's `transid` for it: a Stripe
    balance transaction's charge and that charge's payment intent (`recon.review.ledger.whmcs_ids`
    over every row, so the engine and people's services read the same aliases)."""
    return whmcs_ids(session)


DISPUTE_REVERSAL_REFERENCE = "Stripe dispute reversal"


def returned_by_dispute(found: Transaction) -> bool:
    """A won dispute's reversal: money Stripe gives back, not a customer's payment, though it
    quotes the charge's invoice and payer (the charge itself paid the invoice)."""
    return found.kind == "dispute" and found.amount_minor > 0


def engine_counterparty(found: Transaction) -> str:
    """The payer the engine reads: none for a dispute's reversal, so no name finds it an
    invoice (a withdrawal is outgoing money, never a payment candidate)."""
    return "" if returned_by_dispute(found) else (found.counterparty or "")


def engine_reference(found: Transaction) -> str:
    """The reference the engine reads. A Stripe charge's own balance transaction also quotes
    its charge id and payment intent, so the WHMCS payment recorded under either (`transid`)
    confirms it; refunds and disputes of the charge do not. A dispute's reversal quotes
    nothing: it stays in the engine's rows (its payout adds up) but never pays an invoice."""
    if returned_by_dispute(found):
        return DISPUTE_REVERSAL_REFERENCE
    reference = found.reference or ""
    if found.kind != "charge" or not found.charge_id:
        return reference
    ids = " ".join(i for i in (found.charge_id, found.payment_intent) if i)
    return f"{reference} | {ids}" if reference else ids
