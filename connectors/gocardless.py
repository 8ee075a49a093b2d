"""GoCardless Bank Account Data (ex-Nordigen) client on the shared HTTP policy, and its parser.

`GoCardlessClient` manages the token lifecycle itself: `POST token/new/` once, `token/refresh/`
shortly before the access token expires (it lasts 24 h, the refresh token 30 days), `token/new/`
again once the refresh token is spent or refused, and one silent re-authentication when a data call
answers 401. Credentials and tokens are registered for redaction and never logged. A 401 whose
body says the bank consent ended (expired EUA, revoked access, inactive account) raises
`ConsentExpiredError`, tried once; any other 401 that outlives the re-authentication, and a 401
from `token/new/`, is an authentication failure: `GoCardlessAuthError`.

The account reads (`details`, `balances`, `transactions`) draw on the bank's daily per-account
quota; pass a `connectors.quota.QuotaGuard` and the client wires it as `PolicyClient`'s hooks and feeds
it the rate-limit headers of every successful answer (hooks do not see headers).
`fetch_transactions` hands the raw response to `on_page` as a `connectors.pages.Page` before anything
parses it; the endpoint is not paginated, so a window is one page.

`parse_transactions(body, account_id)` is pure: it returns the usable lines (`BankRecord`) and the
ones that are not (`MalformedRecord`, with every reason), booked and pending alike. The reference is
gathered from every field banks use (providers.md §1.9). The source id rule is in
`transaction_key`'s docstring.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

import httpx

from connectors.closing import Closing
from connectors.http import (
    HttpPolicy,
    PolicyClient,
    ProviderError,
    ProviderRejectedError,
    ProviderResponseError,
)
from connectors.pages import Page
from connectors.quota import QuotaGuard
from recon.errors import ReconError
from recon.money import MoneyError, normalise_currency, to_minor
from recon.redaction import register_secret

PROVIDER = "GoCardless"
API = "/api/v2"
DEFAULT_BASE_URL = "https://bankaccountdata.gocardless.com"
DEFAULT_SCOPE = ("balances", "details", "transactions")
REFERENCE_SEPARATOR = " | "

Window = tuple[dt.date, dt.date]
"""An inclusive `(date_from, date_to)` window of booking dates."""

IdPolicy = Literal["content", "transaction_id"]
"""How `transaction_key` identifies a line: see its docstring."""

_CONSENT_ENDED = re.compile(
    r"\beua\b|end user agreement|access has expired|revoked|consent|inactive", re.IGNORECASE
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PLACEHOLDER_IDS = frozenset({"", "string", "null", "none", "undefined", "notprovided"})
_MAX_ID_LENGTH = 200


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- errors ----------------------------------------------------------------------------------------


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


class GoCardlessDataError(ReconError):
    """A Bank Account Data body does not have the documented shape."""


# -- wizard objects --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Institution:
    """A bank the tenant can connect."""

    id: str
    name: str
    bic: str
    countries: tuple[str, ...]
    transaction_total_days: int
    max_access_valid_for_days: int


@dataclass(frozen=True)
class Agreement:
    """An end-user agreement: how much history and for how long."""

    id: str
    institution_id: str
    max_historical_days: int
    access_valid_for_days: int
    access_scope: tuple[str, ...]
    accepted: str | None


@dataclass(frozen=True)
class Requisition:
    """A bank connection: `link` is where the account holder gives consent; `LN` once linked."""

    id: str
    status: str
    institution_id: str
    agreement: str
    reference: str
    redirect: str
    link: str
    accounts: tuple[str, ...]


@dataclass(frozen=True)
class Account:
    """Account metadata (not rate-limited per account)."""

    id: str
    iban: str | None
    institution_id: str
    status: str
    owner_name: str | None


@dataclass
class _Tokens:
    access: str | None = None
    access_until: dt.datetime | None = None
    refresh: str | None = None
    refresh_until: dt.datetime | None = None


# -- the client ------------------------------------------------------------------------------------


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
        clock: Callable[[], dt.datetime] = _utcnow,
        token_margin: float = 60.0,
        ca_cert: str | None = None,
    ) -> None:
        if not secret_id or not secret_key:
            raise ValueError("GoCardless needs a secret_id and a secret_key")
        register_secret(secret_id)
        register_secret(secret_key)
        self._secrets = {"secret_id": secret_id, "secret_key": secret_key}
        root = base_url.rstrip("/")
        self.base_url = root.removesuffix(API)
        self.quota = quota
        self._clock = clock
        self._margin = dt.timedelta(seconds=token_margin)
        self._tokens = _Tokens()
        self._lock = threading.Lock()
        self._http = PolicyClient(
            PROVIDER,
            policy,
            base_url=self.base_url,
            headers={"Accept": "application/json"},
            ca_cert=ca_cert,
            before_request=quota.before_request if quota else None,
            after_response=quota.after_response if quota else None,
        )

    # -- tokens --------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token: the cached one, a refreshed one, or a new pair."""
        with self._lock:
            now = self._now()
            tokens = self._tokens
            if tokens.access and tokens.access_until and tokens.access_until - self._margin > now:
                return tokens.access
            if (
                tokens.refresh
                and tokens.refresh_until
                and tokens.refresh_until - self._margin > now
            ):
                try:
                    return self._refresh(tokens.refresh)
                except ProviderRejectedError as exc:
                    if exc.status not in (400, 401):
                        raise
            return self._new()

    def _new(self) -> str:
        try:
            body = self._token_call("token/new", dict(self._secrets))
        except ProviderRejectedError as exc:
            if exc.status == 401:
                raise GoCardlessAuthError(exc, with_secrets=True) from None
            raise
        access, refresh = _token_text(body, "access"), _token_text(body, "refresh")
        now = self._now()
        self._tokens = _Tokens(
            access=access,
            access_until=now + dt.timedelta(seconds=_token_seconds(body, "access_expires")),
            refresh=refresh,
            refresh_until=now + dt.timedelta(seconds=_token_seconds(body, "refresh_expires")),
        )
        return access

    def _refresh(self, refresh: str) -> str:
        body = self._token_call("token/refresh", {"refresh": refresh})
        access = _token_text(body, "access")
        self._tokens.access = access
        self._tokens.access_until = self._now() + dt.timedelta(
            seconds=_token_seconds(body, "access_expires")
        )
        return access

    def _token_call(self, name: str, payload: dict[str, str]) -> dict[str, Any]:
        response = self._http.request(
            "POST", f"{API}/{name}/", json=payload, idempotent=True, expect_json=True, endpoint=name
        )
        body = json.loads(response.content)
        if not isinstance(body, dict):
            raise _shape_error("POST", f"{API}/{name}/", name, response, "not a JSON object")
        for key in ("access", "refresh"):
            if isinstance(body.get(key), str):
                register_secret(body[key])
        return body

    def _forget_access(self, used: str) -> None:
        with self._lock:
            if self._tokens.access == used:
                self._tokens.access = None
                self._tokens.access_until = None

    def _now(self) -> dt.datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)

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
                if account is not None and _CONSENT_ENDED.search(exc.provider_message):
                    raise ConsentExpiredError(account, exc) from None
                # Any other 401 is about authentication: once more with a new token, then say so.
                self._forget_access(token)
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
        return [_institution(item) for item in body if isinstance(item, dict)]

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
        return _agreement(_object(body, "agreement"))

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
        return _requisition(_object(body, "requisition"))

    def get_requisition(self, requisition_id: str) -> Requisition:
        """A requisition's status and, once `LN`, its accounts."""
        body = self._json(
            "GET", f"{API}/requisitions/{_segment(requisition_id)}/", endpoint="requisition"
        )
        return _requisition(_object(body, "requisition"))

    def get_account(self, account_id: str) -> Account:
        """Account metadata (does not draw on the daily per-account quota)."""
        body = self._json("GET", f"{API}/accounts/{_segment(account_id)}/", endpoint="account")
        item = _object(body, "account")
        return Account(
            id=str(item.get("id") or account_id),
            iban=_opt_text(item.get("iban")),
            institution_id=str(item.get("institution_id") or ""),
            status=str(item.get("status") or ""),
            owner_name=_opt_text(item.get("owner_name")),
        )

    def list_accounts(self, requisition_id: str) -> list[Account]:
        """The accounts a linked requisition gives access to, with their metadata."""
        requisition = self.get_requisition(requisition_id)
        return [self.get_account(account_id) for account_id in requisition.accounts]

    # -- rate-limited account data --------------------------------------------------------------

    def get_details(self, account_id: str) -> dict[str, Any]:
        """`accounts/{id}/details/` (one of the account's daily calls for `details`)."""
        body = self._json(
            "GET",
            f"{API}/accounts/{_segment(account_id)}/details/",
            endpoint="details",
            account=account_id,
            scope="details",
        )
        return _object(body, "account details")

    def get_balances(self, account_id: str) -> dict[str, Any]:
        """`accounts/{id}/balances/` (one of the account's daily calls for `balances`)."""
        body = self._json(
            "GET",
            f"{API}/accounts/{_segment(account_id)}/balances/",
            endpoint="balances",
            account=account_id,
            scope="balances",
        )
        return _object(body, "balances")

    def fetch_balances(self, account_id: str, on_page: Callable[[Page], None]) -> Page:
        """`accounts/{id}/balances/` as a raw page handed to `on_page` (land it before parsing);
        one of the account's daily `balances` calls, never a `transactions` one."""
        response = self._call(
            "GET",
            f"{API}/accounts/{_segment(account_id)}/balances/",
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
            f"{API}/accounts/{_segment(account_id)}/transactions/",
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


# -- client helpers --------------------------------------------------------------------------------


def _segment(value: str) -> str:
    if not value:
        raise ValueError("an id must not be empty")
    return quote(value, safe="")


def _shape_error(
    method: str, path: str, endpoint: str, response: httpx.Response, detail: str
) -> ProviderResponseError:
    return ProviderResponseError(
        provider=PROVIDER,
        method=method,
        path=path,
        endpoint=endpoint,
        status=response.status_code,
        detail=detail,
    )


def _token_text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise GoCardlessDataError(f"{PROVIDER} sent a token answer without {key!r}.")
    return value


def _token_seconds(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise GoCardlessDataError(f"{PROVIDER} sent a token answer without {key!r}.")
    try:
        return int(value)
    except ValueError:
        raise GoCardlessDataError(f"{PROVIDER} sent {key!r} = {value!r}, not seconds.") from None


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise GoCardlessDataError(f"{PROVIDER} sent a {what} that is not a JSON object.")
    return body


def _opt_text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _institution(item: Mapping[str, Any]) -> Institution:
    return Institution(
        id=str(item.get("id") or ""),
        name=str(item.get("name") or ""),
        bic=str(item.get("bic") or ""),
        countries=tuple(str(c) for c in item.get("countries") or ()),
        transaction_total_days=_int(item.get("transaction_total_days"), 90),
        max_access_valid_for_days=_int(item.get("max_access_valid_for_days"), 90),
    )


def _agreement(item: Mapping[str, Any]) -> Agreement:
    return Agreement(
        id=str(item.get("id") or ""),
        institution_id=str(item.get("institution_id") or ""),
        max_historical_days=_int(item.get("max_historical_days"), 90),
        access_valid_for_days=_int(item.get("access_valid_for_days"), 90),
        access_scope=tuple(str(s) for s in item.get("access_scope") or ()),
        accepted=_opt_text(item.get("accepted")),
    )


def _requisition(item: Mapping[str, Any]) -> Requisition:
    return Requisition(
        id=str(item.get("id") or ""),
        status=str(item.get("status") or ""),
        institution_id=str(item.get("institution_id") or ""),
        agreement=str(item.get("agreement") or ""),
        reference=str(item.get("reference") or ""),
        redirect=str(item.get("redirect") or ""),
        link=str(item.get("link") or ""),
        accounts=tuple(str(a) for a in item.get("accounts") or ()),
    )


# -- parsing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BankRecord:
    """One usable bank line: money in minor units, the reference as the bank sent it."""

    source_id: str
    status: str
    booked_on: dt.date
    value_on: dt.date | None
    amount_minor: int
    currency: str
    counterparty: str | None
    reference: str | None
    transaction_id: str | None
    record: dict[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True)
class MalformedRecord:
    """A line that cannot be loaded, with every reason and whatever could be read of it."""

    row_key: str
    reasons: tuple[str, ...]
    record: dict[str, Any]
    status: str
    booked_on: dt.date | None
    amount_minor: int | None
    currency: str | None


@dataclass
class _Read:
    """What `_read` could make of one record."""

    status: str
    position: int
    record: dict[str, Any]
    reasons: list[str]
    booked_on: dt.date | None = None
    value_on: dt.date | None = None
    amount_minor: int | None = None
    currency: str | None = None
    counterparty: str | None = None
    reference: str | None = None
    transaction_id: str | None = None


def parse_transactions(
    body: bytes, account_id: str, *, id_policy: IdPolicy = "content"
) -> tuple[list[BankRecord], list[MalformedRecord]]:
    """The booked and pending lines of one `transactions` answer: (usable, malformed).

    Raises `GoCardlessDataError` when the body is not `{"transactions": {"booked": [...],
    "pending": [...]}}` at all (that is a bad page, not a bad record).
    """
    try:
        document = json.loads(body, parse_float=Decimal)
    except ValueError as exc:
        raise GoCardlessDataError(
            f"{PROVIDER} transactions of account {account_id} are not valid JSON ({exc})."
        ) from None
    container = document.get("transactions") if isinstance(document, dict) else None
    if not isinstance(container, dict):
        raise GoCardlessDataError(
            f"{PROVIDER} transactions of account {account_id} lack the 'transactions' object."
        )
    reads: list[_Read] = []
    for status in ("booked", "pending"):
        items = container.get(status, [])
        if not isinstance(items, list):
            raise GoCardlessDataError(
                f"{PROVIDER} transactions of account {account_id}: '{status}' is not a list."
            )
        reads += [_read(item, status, len(reads) + n) for n, item in enumerate(items)]
    good = [r for r in reads if not r.reasons]
    keys = _keys(good, account_id, id_policy)
    records = [
        BankRecord(
            source_id=keys[id(r)],
            status=r.status,
            booked_on=_required(r.booked_on),
            value_on=r.value_on,
            amount_minor=_required(r.amount_minor),
            currency=_required(r.currency),
            counterparty=r.counterparty,
            reference=r.reference,
            transaction_id=r.transaction_id,
            record=r.record,
        )
        for r in good
    ]
    return records, _malformed([r for r in reads if r.reasons], account_id)


_T = TypeVar("_T")


def _required(value: _T | None) -> _T:
    assert value is not None
    return value


def transaction_key(
    account_id: str,
    *,
    value_on: dt.date | None,
    booked_on: dt.date,
    amount_minor: int,
    currency: str,
    counterparty: str | None,
    reference: str | None,
) -> str:
    """The content fingerprint of a line, without its occurrence number.

    THE SOURCE-ID RULE. A bank line's `source_id` is, by default (`id_policy="content"`),
    `h:<fingerprint>:<n>` where the fingerprint is a SHA-256 over the account, the anchor date
    (`valueDate` when the bank sends one, else the booking date), the amount in minor units, the
    currency, and the counterparty and reference with case and whitespace folded; `n` numbers the
    lines of one answer that share a fingerprint (booked before pending, then by `transactionId`,
    then by position). None of these fields changes when a pending line books at the banks we
    model, so the booked line lands on the pending row's key and the load UPDATEs it, whatever
    happens to `transactionId` on the way (absent while pending, replaced on booking, absent
    always). Windows are whole days and the anchor date is part of the fingerprint, so `n` is the
    same in every window that contains the day.

    With `id_policy="transaction_id"`, for institutions known to keep ONE `transactionId` from
    pending to booked, a line whose id is present, not a placeholder (`"string"`), at most 200
    characters and unique in the answer is keyed `id:<transactionId>`; other lines fall back to
    the content key. Limits: a bank that changes the amount (card FX), the counterparty text, the
    reference text or the value date on booking produces a second row (the pending one stays
    pending); two genuinely different lines with equal fingerprints are told apart only by their
    order, which is harmless as they are indistinguishable; a replay of an older window after the
    line booked sets the row back to pending (the load upserts whatever the page says).
    """
    material = json.dumps(
        [
            account_id,
            (value_on or booked_on).isoformat(),
            amount_minor,
            currency,
            _fold(counterparty),
            _fold(reference),
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def _fold(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


def _keys(reads: list[_Read], account_id: str, id_policy: IdPolicy) -> dict[int, str]:
    keys: dict[int, str] = {}
    if id_policy == "transaction_id":
        counts = Counter(r.transaction_id for r in reads if r.transaction_id)
        for r in reads:
            tid = r.transaction_id
            if (
                tid
                and counts[tid] == 1
                and tid.strip().lower() not in _PLACEHOLDER_IDS
                and len(tid) <= _MAX_ID_LENGTH
            ):
                keys[id(r)] = f"id:{tid}"
    groups: dict[str, list[_Read]] = defaultdict(list)
    for r in reads:
        if id(r) in keys:
            continue
        fingerprint = transaction_key(
            account_id,
            value_on=r.value_on,
            booked_on=_required(r.booked_on),
            amount_minor=_required(r.amount_minor),
            currency=_required(r.currency),
            counterparty=r.counterparty,
            reference=r.reference,
        )
        groups[fingerprint].append(r)
    for fingerprint, members in groups.items():
        members.sort(key=lambda r: (r.status != "booked", r.transaction_id or "", r.position))
        for n, r in enumerate(members):
            keys[id(r)] = f"h:{fingerprint}:{n}"
    return keys


def _malformed(reads: list[_Read], account_id: str) -> list[MalformedRecord]:
    seen: Counter[str] = Counter()
    out: list[MalformedRecord] = []
    for r in reads:
        material = json.dumps(
            [account_id, r.status, r.record], sort_keys=True, default=str, separators=(",", ":")
        )
        digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]
        out.append(
            MalformedRecord(
                row_key=f"q:{digest}:{seen[digest]}",
                reasons=tuple(r.reasons),
                record=r.record,
                status=r.status,
                booked_on=r.booked_on,
                amount_minor=r.amount_minor,
                currency=r.currency,
            )
        )
        seen[digest] += 1
    return out


def _read(item: Any, status: str, position: int) -> _Read:
    if not isinstance(item, dict):
        return _Read(status, position, {"value": item}, ["record is not a JSON object"])
    read = _Read(status, position, item, [])
    _read_money(read, item)
    _read_dates(read, item)
    tid = item.get("transactionId")
    read.transaction_id = str(tid) if isinstance(tid, str | int) and str(tid) else None
    read.reference = reference_of(item)
    read.counterparty = counterparty_of(item, credit=(read.amount_minor or 0) >= 0)
    return read


def _read_money(read: _Read, item: Mapping[str, Any]) -> None:
    amount_object = item.get("transactionAmount")
    if not isinstance(amount_object, dict):
        read.reasons.append("transactionAmount missing")
        return
    amount = amount_object.get("amount")
    currency = amount_object.get("currency")
    if currency in (None, ""):
        read.reasons.append("currency missing")
    else:
        try:
            read.currency = normalise_currency(currency) if isinstance(currency, str) else None
        except MoneyError:
            read.currency = None
        if read.currency is None:
            read.reasons.append(f"currency {str(currency)!r} is not ISO 4217")
    if amount in (None, ""):
        read.reasons.append("amount missing")
        return
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        read.reasons.append(f"amount {amount!r} is not a decimal string")
        return
    if read.currency is None:
        return
    try:
        read.amount_minor = to_minor(amount, read.currency)
    except MoneyError:
        read.reasons.append(f"amount {str(amount)!r} is not a valid {read.currency} amount")


def _read_dates(read: _Read, item: Mapping[str, Any]) -> None:
    found: dict[str, dt.date] = {}
    present = False
    for key in ("bookingDate", "bookingDateTime", "valueDate", "valueDateTime"):
        value = item.get(key)
        if value in (None, ""):
            continue
        present = True
        parsed = _iso_date(value, with_time=key.endswith("Time"))
        if parsed is None:
            read.reasons.append(f"{key} {str(value)!r} is not ISO")
        else:
            found[key] = parsed
    booking = found.get("bookingDate") or found.get("bookingDateTime")
    value_day = found.get("valueDate") or found.get("valueDateTime")
    read.value_on = value_day
    read.booked_on = booking or value_day
    if not present:
        read.reasons.append("date missing (no bookingDate, bookingDateTime or valueDate)")


def _iso_date(value: Any, *, with_time: bool) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        if with_time:
            return dt.datetime.fromisoformat(value).date()
        return dt.date.fromisoformat(value) if _ISO_DATE.match(value) else None
    except ValueError:
        return None


def _texts(value: Any) -> list[str]:
    """The text parts of a field that may be a string, an object or a list of either."""
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, dict):
        return _texts(value.get("reference"))
    if isinstance(value, list):
        return [part for item in value for part in _texts(item)]
    return []


def reference_of(record: Mapping[str, Any]) -> str | None:
    """Every reference text a bank may use, in providers.md §1.9 order, distinct, joined.

    Unstructured; the UnstructuredArray joined with spaces; Structured (string, or the Berlin Group
    object's `reference`); the StructuredArray; additionalInformation; endToEndId (unless
    `NOTPROVIDED`); entryReference. A single source is returned exactly as the bank sent it.
    """
    parts: list[str] = []
    parts += _texts(record.get("remittanceInformationUnstructured"))
    array = _texts(record.get("remittanceInformationUnstructuredArray"))
    if array:
        parts.append(" ".join(array))
    parts += _texts(record.get("remittanceInformationStructured"))
    parts += _texts(record.get("remittanceInformationStructuredArray"))
    parts += _texts(record.get("additionalInformation"))
    parts += [p for p in _texts(record.get("endToEndId")) if p.upper() != "NOTPROVIDED"]
    parts += _texts(record.get("entryReference"))
    distinct = list(dict.fromkeys(parts))
    return REFERENCE_SEPARATOR.join(distinct) if distinct else None


def counterparty_of(record: Mapping[str, Any], *, credit: bool) -> str | None:
    """The other party: the debtor of a credit, the creditor of a debit (else the other side)."""
    names = ("debtorName", "ultimateDebtor", "creditorName", "ultimateCreditor")
    if not credit:
        names = names[2:] + names[:2]
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
