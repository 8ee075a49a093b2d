"""A fake WHMCS API: `POST /includes/api.php`, form-encoded, `responsetype=json`.

`WhmcsState` is seeded from the DESIGN §4.3 `invoices` and `recorded` frames and keeps WHMCS's own
tables in memory (clients, currencies, invoices, the `tblaccounts` transaction ledger), behind one
lock. It answers GetInvoices, GetInvoice, GetTransactions, GetClientsDetails, GetCurrencies and
AddInvoicePayment with the shapes of the WHMCS reference (shared/reference/providers.md §4),
quirks included: money as 2-dp decimal strings, ids as ints in invoice actions and strings in
GetTransactions/GetCurrencies, `"transactions": ""` on an invoice without payments, no
`transactions` key at all when GetTransactions finds none, `"invoices": []` for an empty page,
`totalresults` as a string in GetCurrencies, and an invoice balance derived as WHMCS derives it:
`total - (sum(amountin) - sum(amountout))` of its transactions. Like WHMCS, the sandbox does not
refuse a second payment with the same `transid`: avoiding duplicates is the client's job.

A seeded invoice's `balance` must therefore equal its total minus its seeded `recorded` payments,
or seeding fails, unless `opening_payments=True`: then the difference is recorded as one earlier
payment (dated the invoice's issue date, transid `sandbox-opening-<invoice id>`), as a WHMCS that
has been running before the seeded period would hold; `opening_payment_ids()` lists them.

Bad credentials answer HTTP 403 `{"result":"error","message":"Authentication Failed"}`, a caller
outside `allowed_ips` (without the `accesskey`) HTTP 403 `Invalid IP <ip>`; action errors answer
HTTP 200 with `result: error`. `routes(state)` serves it with `state.faults` wired in.

The package, by job: `model` (constants, `WhmcsAPIError`, the tables), `values` (seed cells,
request variables, money), `seed` (tables from the frames), `wire` (answers' rows and order),
`ledger` (state, views, internals), `actions` (one method per action), `state` (`WhmcsState`)
and `routes`. Every name is re-exported here.
"""

from connectors.sandbox.whmcs.model import (
    API_PATH,
    INVOICE_COLUMNS,
    INVOICE_STATUSES,
    JSON,
    OPENING_TRANSID_PREFIX,
    RECORDED_COLUMNS,
    ZERO_DATETIME,
    WhmcsAPIError,
)
from connectors.sandbox.whmcs.routes import routes
from connectors.sandbox.whmcs.state import WhmcsState

__all__ = [
    "API_PATH",
    "INVOICE_COLUMNS",
    "INVOICE_STATUSES",
    "JSON",
    "OPENING_TRANSID_PREFIX",
    "RECORDED_COLUMNS",
    "ZERO_DATETIME",
    "WhmcsAPIError",
    "WhmcsState",
    "routes",
]
