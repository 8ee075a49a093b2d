"""Bank Account Data refusals as typed errors of the `ProviderError` family.

A 401 whose body says the bank consent ended (`CONSENT_ENDED`: expired EUA, revoked access,
inactive account) is `ConsentExpiredError`; any other 401 that outlives the re-authentication, and
a 401 from `token/new/`, is `GoCardlessAuthError`. `shape_error` reports a token answer that is not
a JSON object.
"""

from __future__ import annotations

import re

import httpx

from connectors.gocardless.wire import PROVIDER
from connectors.http import ProviderError, ProviderRejectedError, ProviderResponseError

CONSENT_ENDED = re.compile(
    r"\beua\b|end user agreement|access has expired|revoked|consent|inactive", re.IGNORECASE
)


class ConsentExpiredError(ProviderError):
    """The bank consent behind an account ended (expired EUA or revoked access): reconnect it."""

    def __init__(self, account_id: str, rejected: ProviderRejectedError) -> None:
        super().__init__(
            f"{PROVIDER} can no longer read bank account {account_id}: the bank consent has "
            f"expired or was revoked ({rejected.provider_message}); reconnect the account with a "
            "new agreement and requisition in the bank wizard.",
            provider=PROVIDER,
            method=rejected.method,
            path=rejected.path,
            endpoint=rejected.endpoint,
            status=rejected.status,
            attempts=rejected.attempts,
        )
        self.account_id = account_id


class GoCardlessAuthError(ProviderRejectedError):
    """GoCardless refused to authenticate us (HTTP 401): the secret pair or the token is bad."""

    def __init__(self, rejected: ProviderRejectedError, *, with_secrets: bool) -> None:
        cause = (
            "the secret pair was refused"
            if with_secrets
            else "the access token was refused as invalid or expired, even a newly issued one"
        )
        self.provider_message = rejected.provider_message
        ProviderError.__init__(
            self,
            f"{PROVIDER} authentication failed: {_what(rejected)} answered HTTP 401 "
            f"({rejected.provider_message}); {cause}, so check the tenant's "
            "gocardless_secret_id and gocardless_secret_key (wrong, expired or revoked).",
            provider=PROVIDER,
            method=rejected.method,
            path=rejected.path,
            endpoint=rejected.endpoint,
            status=rejected.status,
            attempts=rejected.attempts,
        )


def _what(rejected: ProviderRejectedError) -> str:
    return f"{rejected.method} {rejected.path}"


def shape_error(
    method: str, path: str, endpoint: str, response: httpx.Response, detail: str
) -> ProviderResponseError:
    """The error for an answer whose body is not what the endpoint documents."""
    return ProviderResponseError(
        provider=PROVIDER,
        method=method,
        path=path,
        endpoint=endpoint,
        status=response.status_code,
        detail=detail,
    )
