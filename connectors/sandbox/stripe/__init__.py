"""A fake Stripe API (v1): balance transactions, charges, refunds, disputes and payouts.

`StripeState` is seeded from pandas frames (see the `*_COLUMNS` constants; amounts are integer
minor units of the ISO 4217 currency, timestamps tz-aware datetimes or unix seconds) and DERIVES
what Stripe derives: one balance transaction per charge (`amount`, `fee`, `net = amount - fee`),
refund (negative), dispute (negative amount plus the dispute fee) and payout (minus the payout
total). A dispute the merchant won has a second one, the reversal that gives the amount back
(category `dispute_reversal`, same `dp_` source; the dispute fee is not returned), so one charge
may have several balance transactions and two may share a source. A payout's amount is the sum of the nets of the balance transactions paid out in it, unless
the seed gives an explicit `amount_minor` (a payout that does not add up). Ids are the seed's; the
balance transaction ids, request ids and every other generated value are derived from them, so
one seed always serves the same bytes.

`routes(state)` serves it under Stripe's real paths with Stripe's wire format (shared reference
providers.md §3): list objects `{"object": "list", "data", "has_more", "url"}`, newest first, with
`limit`, `starting_after`/`ending_before`, `created[gt|gte|lt|lte]` and each list's own filters
(`payout`, `type`, `source`, `currency` on balance transactions; `charge` on refunds and disputes;
`status`, `arrival_date` on payouts); unknown parameters are refused as Stripe refuses them.
Requests need `Authorization: Bearer <the secret key>`; a wrong key answers 401 with the key
masked as Stripe masks it. Faults come from `state.faults` (a `FaultPlan`); their answers are
rewritten into Stripe's error shape, and `Stripe-Should-Retry: true` is sent on `lock_timeout`
429s (and on any status listed in `state.should_retry`), which is how the SDK learns a 429 may
be retried.

The package, by job: `model` (seed columns, statuses, error bodies, `StripeAPIError`,
collections, amounts and derived ids), `values` (seed cells), `objects` (the served objects),
`seed` (what Stripe derives from the seed), `query` (request parameters), `state`
(`StripeState`), `faults` (`MALFORMATIONS`) and `routes`. Every name is re-exported here.
"""

from connectors.sandbox.stripe.faults import MALFORMATIONS, bad_currency, drop_amount
from connectors.sandbox.stripe.model import (
    AVAILABLE_AFTER,
    CHARGE_COLUMNS,
    DISPUTE_COLUMNS,
    DISPUTE_STATUSES,
    JSON,
    LOCK_TIMEOUT_BODY,
    PAYOUT_COLUMNS,
    PAYOUT_STATUSES,
    RATE_LIMIT_BODY,
    REFUND_COLUMNS,
    STRIPE_THREE_DECIMAL,
    STRIPE_ZERO_DECIMAL,
    WON_REVERSAL_AFTER,
    StripeAPIError,
    balance_transaction_id,
    mask_key,
    payment_intent_id,
    stripe_amount,
)
from connectors.sandbox.stripe.routes import routes
from connectors.sandbox.stripe.state import StripeState

__all__ = [
    "AVAILABLE_AFTER",
    "CHARGE_COLUMNS",
    "DISPUTE_COLUMNS",
    "DISPUTE_STATUSES",
    "JSON",
    "LOCK_TIMEOUT_BODY",
    "MALFORMATIONS",
    "PAYOUT_COLUMNS",
    "PAYOUT_STATUSES",
    "RATE_LIMIT_BODY",
    "REFUND_COLUMNS",
    "STRIPE_THREE_DECIMAL",
    "STRIPE_ZERO_DECIMAL",
    "WON_REVERSAL_AFTER",
    "StripeAPIError",
    "StripeState",
    "bad_currency",
    "balance_transaction_id",
    "drop_amount",
    "mask_key",
    "payment_intent_id",
    "routes",
    "stripe_amount",
]
