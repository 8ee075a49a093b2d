"""Stripe connector: the wire format, canonical records, the SDK client and its error mapping.

- `connectors.stripe.wire`: list pages, single objects, `created` windows, request keys;
- `connectors.stripe.records`: balance transactions, charges, refunds, disputes and payouts in
  canonical form (`Malformed` with named reasons when a record cannot be);
- `connectors.stripe.client`: `StripeClient` on the official SDK, landing raw pages first;
- `connectors.stripe.errors`: SDK failures as the typed `ProviderError` family.

Every name is re-exported here, so `from connectors.stripe import X` works as before the split.
"""

from connectors.stripe.client import OnPage, StripeClient
from connectors.stripe.records import (
    INVOICE_METADATA_KEYS,
    STRIPE_THREE_DECIMAL,
    STRIPE_ZERO_DECIMAL,
    BalanceTransaction,
    Charge,
    Dispute,
    Malformed,
    Payout,
    Refund,
    balance_transaction,
    charge,
    dispute,
    iso_minor,
    payout,
    refund,
)
from connectors.stripe.wire import (
    DEFAULT_API_BASE,
    JSON,
    LIST_ENDPOINTS,
    MAX_PAGE_SIZE,
    OBJECT_ENDPOINTS,
    PROVIDER,
    RESOURCES,
    ListPage,
    StripePageError,
    created_range,
    encode_params,
    parse_json,
    parse_list_page,
    parse_object,
    record_ids,
)

__all__ = [
    "DEFAULT_API_BASE",
    "INVOICE_METADATA_KEYS",
    "JSON",
    "LIST_ENDPOINTS",
    "MAX_PAGE_SIZE",
    "OBJECT_ENDPOINTS",
    "PROVIDER",
    "RESOURCES",
    "STRIPE_THREE_DECIMAL",
    "STRIPE_ZERO_DECIMAL",
    "BalanceTransaction",
    "Charge",
    "Dispute",
    "ListPage",
    "Malformed",
    "OnPage",
    "Payout",
    "Refund",
    "StripeClient",
    "StripePageError",
    "balance_transaction",
    "charge",
    "created_range",
    "dispute",
    "encode_params",
    "iso_minor",
    "parse_json",
    "parse_list_page",
    "parse_object",
    "payout",
    "record_ids",
    "refund",
]
