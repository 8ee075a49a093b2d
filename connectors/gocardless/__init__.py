"""GoCardless Bank Account Data (ex-Nordigen): the client on the shared HTTP policy, and its parser.

- `connectors.gocardless.wire`: the provider's name and paths, `Window`, `GoCardlessDataError`
  and the readers of its JSON bodies;
- `connectors.gocardless.errors`: 401s as `ConsentExpiredError` (the bank consent ended) or
  `GoCardlessAuthError` (the secret pair or the token is bad);
- `connectors.gocardless.auth`: the token lifecycle (`token/new/`, `token/refresh/`);
- `connectors.gocardless.consent`: the bank wizard's institutions, agreements, requisitions and
  accounts;
- `connectors.gocardless.client`: `GoCardlessClient`, the wizard and the rate-limited account
  reads (details, balances, transactions), landing raw pages first;
- `connectors.gocardless.records`: one bank line read, its reference and counterparty;
- `connectors.gocardless.transactions`: `parse_transactions` and the source-id rule
  (`transaction_key`).

Every public name is re-exported here, so `from connectors.gocardless import X` works as before
the split.
"""

from connectors.gocardless.client import GoCardlessClient
from connectors.gocardless.consent import Account, Agreement, Institution, Requisition
from connectors.gocardless.errors import ConsentExpiredError, GoCardlessAuthError
from connectors.gocardless.records import (
    REFERENCE_SEPARATOR,
    BankRecord,
    MalformedRecord,
    counterparty_of,
    reference_of,
)
from connectors.gocardless.transactions import IdPolicy, parse_transactions, transaction_key
from connectors.gocardless.wire import (
    API,
    DEFAULT_BASE_URL,
    DEFAULT_SCOPE,
    PROVIDER,
    GoCardlessDataError,
    Window,
)

__all__ = [
    "API",
    "DEFAULT_BASE_URL",
    "DEFAULT_SCOPE",
    "PROVIDER",
    "REFERENCE_SEPARATOR",
    "Account",
    "Agreement",
    "BankRecord",
    "ConsentExpiredError",
    "GoCardlessAuthError",
    "GoCardlessClient",
    "GoCardlessDataError",
    "IdPolicy",
    "Institution",
    "MalformedRecord",
    "Requisition",
    "Window",
    "counterparty_of",
    "parse_transactions",
    "reference_of",
    "transaction_key",
]
