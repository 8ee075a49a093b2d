"""A fake GoCardless Bank Account Data (BAD, ex-Nordigen) API under its real `/api/v2/` paths.

`GoCardlessState` holds credentials, issued tokens, institutions, end-user agreements (EUAs),
requisitions, accounts and their bank lines in memory behind one lock, on an injectable clock.
It speaks the wire format of shared/reference/providers.md §1:

* `POST token/new/` and `token/refresh/`: JWT-shaped tokens with `access_expires` 86400 and
  `refresh_expires` 2592000 (seconds, as the API returns them); refresh returns no new refresh
  token. Bad credentials: 401 `Authentication failed`; a missing, unknown or expired bearer token:
  401 `Invalid token` / `Token is invalid or expired`.
* `GET institutions/?country=`, `POST agreements/enduser/`, `POST requisitions/`,
  `GET requisitions/{id}/`, and a consent page at `/psd2/start/{requisition}/{institution}` (the
  requisition's `link`): "Allow" links the institution's accounts, flips the requisition to `LN`,
  accepts the EUA and redirects to the requisition's `redirect` with `?ref=<reference>`.
* `GET accounts/{id}/` (metadata), `details/`, `balances/` and `transactions/?date_from&date_to`
  returning `{"transactions": {"booked": [...], "pending": [...]}}` with the real field names.
  Each account renders the reference the way its bank does (`ReferenceStyle`, §1.9).
* The per-account daily quota (§1.6): `daily_limit` (default 4) *successful* calls per account per
  scope (details, balances, transactions) per UTC day; the next one answers 429
  `{"summary": "Couldn't update transactions", "detail": "Daily request limit set by the
  Institution has been exceeded.", "type": "RateLimitError", "status_code": 429}`. Account
  responses carry `HTTP_X_RATELIMIT_{LIMIT,REMAINING,RESET}` and
  `HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_{LIMIT,REMAINING,RESET}` (the names literally start `HTTP_`).
  Failed answers (faults included) do not count, as the provider documents.
* An expired EUA answers 401 `End User Agreement (EUA) <id> has expired`; a revoked access 401
  `AccessExpiredError`. Unknown ids 404, malformed account ids 400 `Invalid Account ID`, future or
  malformed dates 400 per field, as the API does.

Paths are served with and without the trailing slash (clients differ, §1.1). `routes(state)` wraps
every endpoint with `state.faults` (a `FaultPlan`) and logs every request; `MALFORMATIONS` holds
ready-made record mutators for `FaultPlan.malform`.

The transactions frame has the columns `TRANSACTION_COLUMNS` plus an optional `pending_id`: a
`pending` line shows `pending_id` as its `transactionId` (none when empty, as most banks do);
`book(transaction_id)` books it later under its own `transaction_id`, so the id changes (or
appears) on booking exactly as at Nationwide-style banks. Accounts whose bank sends no ids at all
have `transaction_ids=False`.

The package, by job: `model` (constants, seed records, stored objects, `BadAPIError`), `values`
(seed cells, query dates, timestamps), `wire` (lines, institutions and agreements as the feed
renders them), `world` (state, seeding, test controls), `auth`, `consent` (institutions,
agreements, requisitions), `quota`, `accounts`, `faults` (`MALFORMATIONS`), `state`
(`GoCardlessState`) and `routes`.
"""

from connectors.sandbox.gocardless.faults import MALFORMATIONS
from connectors.sandbox.gocardless.model import (
    ACCESS_EXPIRES,
    API,
    COMPANY_LIMIT_PER_MINUTE,
    CONSENT_PATH,
    DAILY_LIMIT,
    JSON,
    OPTIONAL_TRANSACTION_COLUMNS,
    REFRESH_EXPIRES,
    SCOPES,
    SUPPORTED_COUNTRIES,
    TRANSACTION_COLUMNS,
    BadAPIError,
    Clock,
    ReferenceStyle,
    SandboxAccount,
    SandboxInstitution,
)
from connectors.sandbox.gocardless.routes import Handler, routes
from connectors.sandbox.gocardless.state import GoCardlessState

__all__ = [
    "ACCESS_EXPIRES",
    "API",
    "COMPANY_LIMIT_PER_MINUTE",
    "CONSENT_PATH",
    "DAILY_LIMIT",
    "JSON",
    "MALFORMATIONS",
    "OPTIONAL_TRANSACTION_COLUMNS",
    "REFRESH_EXPIRES",
    "SCOPES",
    "SUPPORTED_COUNTRIES",
    "TRANSACTION_COLUMNS",
    "BadAPIError",
    "Clock",
    "GoCardlessState",
    "Handler",
    "ReferenceStyle",
    "SandboxAccount",
    "SandboxInstitution",
    "routes",
]
