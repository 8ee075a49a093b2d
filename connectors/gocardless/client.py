"""`GoCardlessClient`: Bank Account Data over the shared HTTP policy.

The client manages its token lifecycle through `TokenKeeper` (see `connectors.gocardless.auth`)
and re-authenticates silently once when a data call answers 401. A 401 whose body says the bank
consent ended raises `ConsentExpiredError`, tried once; any other 401 that outlives the
re-authentication is `GoCardlessAuthError`.

The account reads (`details`, `balances`, `transactions`) draw on the bank's daily per-account
quota; pass a `connectors.quota.QuotaGuard` and the client wires it as `PolicyClient`'s hooks and
feeds it the rate-limit headers of every successful answer (hooks do not see headers).
`fetch_transactions` and `fetch_balances` hand the raw response to `on_page` as a
`connectors.pages.Page` before anything parses it; the endpoint is not paginated, so a window is
one page.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from connectors.closing import Closing
from connectors.gocardless import consent
from connectors.gocardless.auth import TokenKeeper, utcnow
from connectors.gocardless.consent import Account, Agreement, Institution, Requisition
from connectors.gocardless.errors import CONSENT_ENDED, ConsentExpiredError, GoCardlessAuthError
from connectors.gocardless.wire import (
    API,
    DEFAULT_SCOPE,
    PROVIDER,
    GoCardlessDataError,
    Window,
    body_object,
    segment,
)
from connectors.http import HttpPolicy, PolicyClient, ProviderRejectedError
from connectors.pages import Page
from recon.redaction import register_secret

if TYPE_CHECKING:  # the guard counts in the database: the client alone needs no SQLAlchemy
    from connectors.quota import QuotaGuard


class GoCardlessClient(Closing):
    """Bank Account Data over `PolicyClient`; a context manager that closes its connections."""

    def __init__(
        self,
        base_url: str,
        secret_id: str,
        secret_key: str,
        *,
        policy: HttpPolicy | None = None,
        quota: QuotaGuard | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        token_margin: float = 60.0,
        ca_cert: str | None = None,
    ) -> None:
        if not secret_id or not secret_key:
            raise ValueError("GoCardless needs a secret_id and a secret_key")
        register_secret(secret_id)
        register_secret(secret_key)
        root = base_url.rstrip("/")
        self.base_url = root.removesuffix(API)
        self.quota = quota
        self._http = PolicyClient(
            PROVIDER,
            policy,
            base_url=self.base_url,
            headers={"Accept": "application/json"},
            ca_cert=ca_cert,
            before_request=quota.before_request if quota else None,
            after_response=quota.after_response if quota else None,
        )
        self._tokens = TokenKeeper(
            self._http,
            {"secret_id": secret_id, "secret_key": secret_key},
            clock=clock,
            margin=dt.timedelta(seconds=token_margin),
        )

    def access_token(self) -> str:
        """A valid access token: the cached one, a refreshed one, or a new pair."""
        return self._tokens.access_token()

    # -- calls ---------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        account: str | None = None,
        scope: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One authenticated call; re-authenticates once on an invalid token."""
        if self.quota is not None and account is not None and scope is not None:
            self.quota.check(account, scope, method=method, path=path)
        for attempt in (1, 2):
            token = self.access_token()
            try:
                response = self._http.request(
                    method,
                    path,
                    headers={"Authorization": f"Bearer {token}"},
                    expect_json=True,
                    endpoint=endpoint,
                    **kwargs,
                )
            except ProviderRejectedError as exc:
                if exc.status != 401:
                    raise
                if account is not None and CONSENT_ENDED.search(exc.provider_message):
                    raise ConsentExpiredError(account, exc) from None
                # Any other 401 is about authentication: once more with a new token, then say so.
                self._tokens.forget_access(token)
                if attempt == 1:
                    continue
                raise GoCardlessAuthError(exc, with_secrets=False) from None
            if self.quota is not None and account is not None and scope is not None:
                self.quota.learn(account, scope, response.headers)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, path: str, *, endpoint: str, **kwargs: Any) -> Any:
        response = self._call(method, path, endpoint=endpoint, **kwargs)
        return json.loads(response.content)

    # -- the bank wizard -----------------------------------------------------------------------

    def list_institutions(self, country: str) -> list[Institution]:
        """Banks of a country (ISO 3166 alpha-2)."""
        body = self._json(
            "GET", f"{API}/institutions/", endpoint="institutions", params={"country": country}
        )
        if not isinstance(body, list):
            raise GoCardlessDataError(f"{PROVIDER} institutions for {country} are not a list.")
        return [consent.institution(item) for item in body if isinstance(item, dict)]

    def create_agreement(
        self,
        institution_id: str,
        *,
        max_historical_days: int = 90,
        access_valid_for_days: int = 90,
        access_scope: Sequence[str] = DEFAULT_SCOPE,
    ) -> Agreement:
        """An end-user agreement for `institution_id`."""
        body = self._json(
            "POST",
            f"{API}/agreements/enduser/",
            endpoint="agreements",
            json={
                "institution_id": institution_id,
                "max_historical_days": max_historical_days,
                "access_valid_for_days": access_valid_for_days,
                "access_scope": list(access_scope),
            },
        )
        return consent.agreement(body_object(body, "agreement"))

    def create_requisition(
        self,
        redirect: str,
        institution_id: str,
        *,
        reference: str,
        agreement: str | None = None,
        user_language: str | None = None,
        account_selection: bool = False,
        redirect_immediate: bool = False,
    ) -> Requisition:
        """Start a bank connection; send the account holder to the returned `link`."""
        payload: dict[str, Any] = {
            "redirect": redirect,
            "institution_id": institution_id,
            "reference": reference,
            "account_selection": account_selection,
            "redirect_immediate": redirect_immediate,
        }
        if agreement:
            payload["agreement"] = agreement
        if user_language:
            payload["user_language"] = user_language
        body = self._json("POST", f"{API}/requisitions/", endpoint="requisitions", json=payload)
        return consent.requisition(body_object(body, "requisition"))

    def get_agreement(self, agreement_id: str) -> Agreement:
        """An end-user agreement; `accepted` says when the account holder gave consent."""
        body = self._json(
            "GET", f"{API}/agreements/enduser/{segment(agreement_id)}/", endpoint="agreement"
        )
        return consent.agreement(body_object(body, "agreement"))

    def get_requisition(self, requisition_id: str) -> Requisition:
        """A requisition's status and, once `LN`, its accounts."""
        body = self._json(
            "GET", f"{API}/requisitions/{segment(requisition_id)}/", endpoint="requisition"
        )
        return consent.requisition(body_object(body, "requisition"))

    def get_account(self, account_id: str) -> Account:
        """Account metadata (does not draw on the daily per-account quota)."""
        body = self._json("GET", f"{API}/accounts/{segment(account_id)}/", endpoint="account")
        return consent.account(body_object(body, "account"), account_id)

    def list_accounts(self, requisition_id: str) -> list[Account]:
        """The accounts a linked requisition gives access to, with their metadata."""
        requisition = self.get_requisition(requisition_id)
        return [self.get_account(account_id) for account_id in requisition.accounts]

    # -- rate-limited account data --------------------------------------------------------------

    def get_details(self, account_id: str) -> dict[str, Any]:
        """`accounts/{id}/details/` (one of the account's daily calls for `details`)."""
        body = self._json(
            "GET",
            f"{API}/accounts/{segment(account_id)}/details/",
            endpoint="details",
            account=account_id,
            scope="details",
        )
        return body_object(body, "account details")

    def get_balances(self, account_id: str) -> dict[str, Any]:
        """`accounts/{id}/balances/` (one of the account's daily calls for `balances`)."""
        body = self._json(
            "GET",
            f"{API}/accounts/{segment(account_id)}/balances/",
            endpoint="balances",
            account=account_id,
            scope="balances",
        )
        return body_object(body, "balances")

    def fetch_balances(self, account_id: str, on_page: Callable[[Page], None]) -> Page:
        """`accounts/{id}/balances/` as a raw page handed to `on_page` (land it before parsing);
        one of the account's daily `balances` calls, never a `transactions` one."""
        response = self._call(
            "GET",
            f"{API}/accounts/{segment(account_id)}/balances/",
            endpoint="balances",
            account=account_id,
            scope="balances",
        )
        page = Page(
            endpoint="accounts/balances",
            request_key=urlencode({"account": account_id}),
            status=response.status_code,
            body=response.content,
        )
        on_page(page)
        return page

    def fetch_transactions(
        self, account_id: str, window: Window, on_page: Callable[[Page], None]
    ) -> Page:
        """Read one window of an account's lines and hand the raw page to `on_page` first."""
        date_from, date_to = window
        if date_from > date_to:
            raise ValueError(f"window starts {date_from} after it ends {date_to}")
        params = {"date_from": date_from.isoformat(), "date_to": date_to.isoformat()}
        response = self._call(
            "GET",
            f"{API}/accounts/{segment(account_id)}/transactions/",
            endpoint="transactions",
            account=account_id,
            scope="transactions",
            params=params,
        )
        page = Page(
            endpoint="accounts/transactions",
            request_key=urlencode({"account": account_id, **params}),
            status=response.status_code,
            body=response.content,
        )
        on_page(page)
        return page

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
