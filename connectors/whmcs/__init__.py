"""WHMCS connector: the wire format as canonical frames, the API client and its errors.

- `connectors.whmcs.wire`: WHMCS rows (API or database) as the canonical frames (pure);
- `connectors.whmcs.client`: `WhmcsClient` on the shared HTTP policy, and `whmcs_client_for`;
- `connectors.whmcs.payments`: payments as WHMCS records them, an invoice's ledger;
- `connectors.whmcs.errors`: answers and write-back failures as typed errors.

Every name is re-exported here, so `from connectors.whmcs import X` works as before the split.
"""

from connectors.whmcs.client import API_PATH, OnPage, WhmcsClient, whmcs_client_for
from connectors.whmcs.errors import WhmcsPaymentConflictError, WhmcsPaymentRefusedError
from connectors.whmcs.payments import InvoiceLedger, PaymentGuard, RecordedPayment
from connectors.whmcs.wire import (
    INVOICE_FRAME_COLUMNS,
    PROVIDER,
    RECORDED_FRAME_COLUMNS,
    WhmcsDataError,
    parse_invoices,
    parse_recorded,
    request_key,
)

__all__ = [
    "API_PATH",
    "INVOICE_FRAME_COLUMNS",
    "PROVIDER",
    "RECORDED_FRAME_COLUMNS",
    "InvoiceLedger",
    "OnPage",
    "PaymentGuard",
    "RecordedPayment",
    "WhmcsClient",
    "WhmcsDataError",
    "WhmcsPaymentConflictError",
    "WhmcsPaymentRefusedError",
    "parse_invoices",
    "parse_recorded",
    "request_key",
    "whmcs_client_for",
]
