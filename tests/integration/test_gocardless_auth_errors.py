"""A GoCardless 401 says what it is: an authentication failure, or (only when the provider says
so) a bank consent that ended. Against the sandbox Bank Account Data over real HTTP."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.gocardless import ConsentExpiredError, GoCardlessAuthError, GoCardlessClient
from connectors.http import ProviderRejectedError
from connectors.pages import Page
from connectors.sandbox.gocardless import GoCardlessState, SandboxAccount
from connectors.sandbox.serve import RunningServer
from tests.integration.gocardless_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    WINDOW,
    FakeClock,
    bad_client,
    bad_state,
    bank_seed,
    clock,
    gc_server,
    payments_state,
    sleep,
)
from tests.integration.whmcs_fixtures import RecordingSleep, fast_policy

__all__ = ["bad_client", "bad_state", "bank_seed", "clock", "gc_server", "payments_state", "sleep"]

TRANSACTIONS = "/api/v2/accounts/*/transactions/"
Seed = tuple[list[SandboxAccount], pd.DataFrame]


def noop(_page: Page) -> None:
    """Pages are not kept here."""


@pytest.mark.parametrize(
    "body",
    [
        None,  # the fault's default body: {"error": "Unauthorized"}
        {"summary": "Unauthorized", "detail": "Invalid credentials.", "status_code": 401},
    ],
)
def test_a_401_that_is_not_about_consent_is_an_authentication_failure(
    body: dict[str, object] | None,
    bad_client: GoCardlessClient,
    bad_state: GoCardlessState,
    bank_seed: Seed,
) -> None:
    account = bank_seed[0][0].account_id
    bad_state.faults.status(401, body=body, path=TRANSACTIONS)
    with pytest.raises(GoCardlessAuthError) as caught:
        bad_client.fetch_transactions(account, WINDOW, noop)
    message = str(caught.value)
    assert "authentication failed" in message and "HTTP 401" in message
    assert "consent" not in message.lower() and "reconnect" not in message.lower()
    assert caught.value.exit_code == 9 and caught.value.status == 401
    # Tried once more with a new access token, no further.
    assert bad_state.faults.count(path=TRANSACTIONS, status=401) == 2
    assert bad_state.token_counts["new"] + bad_state.token_counts["refresh"] == 2


def test_wrong_secrets_are_an_authentication_failure_naming_the_secret_pair(
    gc_server: RunningServer,
    bad_state: GoCardlessState,
    bank_seed: Seed,
    sleep: RecordingSleep,
    clock: FakeClock,
) -> None:
    account = bank_seed[0][0].account_id
    with (
        GoCardlessClient(
            gc_server.url, SECRET_ID, "wrong-key", policy=fast_policy(sleep), clock=clock
        ) as client,
        pytest.raises(GoCardlessAuthError) as caught,
    ):
        client.fetch_transactions(account, WINDOW, noop)
    message = str(caught.value)
    assert isinstance(caught.value, ProviderRejectedError)
    assert "gocardless_secret_id and gocardless_secret_key" in message
    assert "No active account found with the given credentials" in message
    assert "wrong-key" not in message and SECRET_KEY not in message
    assert "consent" not in message.lower()


@pytest.mark.parametrize("ended", ["expired agreement", "revoked access"])
def test_consent_expired_only_when_the_provider_says_so(
    ended: str,
    bad_client: GoCardlessClient,
    bad_state: GoCardlessState,
    bank_seed: Seed,
) -> None:
    account = bank_seed[0][0].account_id
    if ended == "expired agreement":
        bad_state.expire_consent(account)
    else:
        bad_state.revoke_access(account)
    with pytest.raises(ConsentExpiredError) as caught:
        bad_client.fetch_transactions(account, WINDOW, noop)
    assert "consent" in str(caught.value) and "authentication failed" not in str(caught.value)
