"""`GoCardlessState`: the whole Bank Account Data sandbox, one object behind one lock."""

from __future__ import annotations

from connectors.sandbox.gocardless.accounts import Accounts
from connectors.sandbox.gocardless.auth import Auth
from connectors.sandbox.gocardless.consent import Consent


class GoCardlessState(Auth, Consent, Accounts):
    """In-memory Bank Account Data: tokens, agreements, requisitions, accounts, lines, quotas."""
