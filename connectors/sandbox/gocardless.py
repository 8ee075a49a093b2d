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
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import math
import secrets
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.faults import FaultPlan
from recon.money import MoneyError, normalise_currency, to_minor

JSON = dict[str, Any]
Clock = Callable[[], datetime]
API = "/api/v2"
CONSENT_PATH = "/psd2/start"
ACCESS_EXPIRES = 86_400
REFRESH_EXPIRES = 2_592_000
DAILY_LIMIT = 4
COMPANY_LIMIT_PER_MINUTE = 100
SCOPES = ("details", "balances", "transactions")
TRANSACTION_COLUMNS = (
    "transaction_id",
    "account_id",
    "booked_on",
    "amount",
    "currency",
    "counterparty",
    "reference",
    "status",
)
OPTIONAL_TRANSACTION_COLUMNS = ("pending_id",)
_EEA_AND_GB = (
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IS IE IT LV LI LT LU MT NL NO PL PT RO SK SI ES SE GB"
)
SUPPORTED_COUNTRIES = frozenset(_EEA_AND_GB.split(" "))
_SCOPE_SUMMARY = {
    "details": "account details",
    "balances": "balances",
    "transactions": "transactions",
}


class ReferenceStyle(StrEnum):
    """Where a bank puts the payer's reference (shared/reference/providers.md §1.9)."""

    UNSTRUCTURED = "unstructured"
    """`remittanceInformationUnstructured` (the default)."""
    UNSTRUCTURED_ARRAY = "unstructured_array"
    """`remittanceInformationUnstructuredArray`, split in pieces (Revolut)."""
    STRUCTURED = "structured"
    """`remittanceInformationStructured` as a string."""
    STRUCTURED_OBJECT = "structured_object"
    """`remittanceInformationStructured` as a Berlin Group object `{reference, referenceType}`."""
    STRUCTURED_ARRAY = "structured_array"
    """`remittanceInformationStructuredArray`."""
    ADDITIONAL_INFORMATION = "additional_information"
    """`additionalInformation` only."""
    ENTRY_REFERENCE = "entry_reference"
    """`entryReference` only."""
    END_TO_END_ID = "end_to_end_id"
    """`endToEndId` only."""
    FINNISH = "finnish"
    """Multi-line `remittanceInformationUnstructured` with the reference on its own line."""
    ABN_AMRO = "abn_amro"
    """No Unstructured; `remittanceInformationUnstructuredArray` of labelled entries."""
    SPARKASSE = "sparkasse"
    """Unstructured plus a booking text in `additionalInformation` (Berliner Sparkasse)."""


@dataclass(frozen=True)
class SandboxAccount:
    """A seeded bank account; `account_id` must be a UUID, as GoCardless's are."""

    account_id: str
    iban: str
    currency: str
    institution_id: str
    owner_name: str
    reference_style: ReferenceStyle = ReferenceStyle.UNSTRUCTURED
    transaction_ids: bool = True
    consent_days: int = 90


@dataclass(frozen=True)
class SandboxInstitution:
    """An institution as `GET institutions/` lists it."""

    id: str
    name: str
    bic: str
    countries: tuple[str, ...]
    transaction_total_days: int = 540
    max_access_valid_for_days: int = 180


@dataclass
class _Line:
    transaction_id: str
    account_id: str
    booked_on: date
    value_on: date
    amount: str
    currency: str
    counterparty: str
    reference: str
    status: str
    pending_id: str | None


@dataclass
class _Agreement:
    id: str
    created: datetime
    institution_id: str
    max_historical_days: int
    access_valid_for_days: int
    access_scope: list[str]
    accepted: datetime | None = None

    def expires(self) -> datetime | None:
        if self.accepted is None:
            return None
        return self.accepted + timedelta(days=self.access_valid_for_days)


@dataclass
class _Requisition:
    id: str
    created: datetime
    redirect: str
    institution_id: str
    agreement: str
    reference: str
    user_language: str
    link: str
    status: str = "CR"
    accounts: list[str] = field(default_factory=list)
    account_selection: bool = False
    redirect_immediate: bool = False


@dataclass
class _Token:
    kind: str
    expires: datetime


class BadAPIError(Exception):
    """An error answer: HTTP status, the provider's JSON body, extra headers."""

    def __init__(self, status: int, body: JSON, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def _flat(status: int, summary: str, detail: str, **extra: Any) -> BadAPIError:
    return BadAPIError(
        status, {"summary": summary, "detail": detail, **extra, "status_code": status}
    )


def _field_error(status: int, errors: Mapping[str, Any]) -> BadAPIError:
    return BadAPIError(status, {**errors, "status_code": status})


_INVALID_TOKEN = ("Invalid token", "Token is invalid or expired")
_NOT_FOUND = ("Not found.", "Not found.")


class GoCardlessState:
    """In-memory Bank Account Data: tokens, agreements, requisitions, accounts, lines, quotas."""

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        accounts: Sequence[SandboxAccount],
        transactions: pd.DataFrame,
        institutions: Sequence[SandboxInstitution] | None = None,
        daily_limit: int = DAILY_LIMIT,
        access_expires: int = ACCESS_EXPIRES,
        refresh_expires: int = REFRESH_EXPIRES,
        faults: FaultPlan | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        if not secret_id or not secret_key:
            raise ValueError("the sandbox needs a secret_id and a secret_key")
        if daily_limit < 1:
            raise ValueError("daily_limit must be at least 1")
        self._secret_id = secret_id
        self._secret_key = secret_key
        self._signing_key = secrets.token_bytes(32)
        self.daily_limit = daily_limit
        self.access_expires = access_expires
        self.refresh_expires = refresh_expires
        self.faults = faults if faults is not None else FaultPlan()
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._agreements: dict[str, _Agreement] = {}
        self._requisitions: dict[str, _Requisition] = {}
        self._accounts: dict[str, SandboxAccount] = {}
        self._account_agreement: dict[str, str] = {}
        self._account_created: dict[str, datetime] = {}
        self._revoked: set[str] = set()
        self._lines: list[_Line] = []
        self._quota: dict[tuple[str, str, date], int] = {}
        self._company: dict[int, int] = {}
        self.token_counts = {"new": 0, "refresh": 0}
        now = self._now()
        for account in accounts:
            self._add_account(account, now)
        self._institutions = {
            i.id: i for i in (institutions or _default_institutions(self._accounts.values()))
        }
        for account in self._accounts.values():
            if account.institution_id not in self._institutions:
                raise ValueError(
                    f"account {account.account_id} is at unknown institution "
                    f"{account.institution_id}"
                )
        self.add_transactions(transactions)

    # -- seeding and test controls -------------------------------------------------------------

    def _add_account(self, account: SandboxAccount, now: datetime) -> None:
        try:
            uuid.UUID(account.account_id)
        except ValueError:
            raise ValueError(f"account id {account.account_id!r} is not a UUID") from None
        if account.account_id in self._accounts:
            raise ValueError(f"account {account.account_id} appears twice in the seed")
        normalise_currency(account.currency)
        self._accounts[account.account_id] = replace(
            account, reference_style=ReferenceStyle(account.reference_style)
        )
        self._account_created[account.account_id] = now
        agreement = _Agreement(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"eua/{account.account_id}")),
            created=now,
            institution_id=account.institution_id,
            max_historical_days=90,
            access_valid_for_days=account.consent_days,
            access_scope=list(SCOPES),
            accepted=now,
        )
        self._agreements[agreement.id] = agreement
        self._account_agreement[account.account_id] = agreement.id

    def add_transactions(self, frame: pd.DataFrame) -> None:
        """Add bank lines (columns `TRANSACTION_COLUMNS`, optional `pending_id`)."""
        missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"the transactions frame lacks columns {', '.join(missing)}")
        with self._lock:
            known = {line.transaction_id for line in self._lines}
            for row in frame.to_dict("records"):
                line = self._line_from(row)
                if line.transaction_id in known:
                    raise ValueError(f"transaction {line.transaction_id} appears twice")
                known.add(line.transaction_id)
                self._lines.append(line)

    def _line_from(self, row: Mapping[Any, Any]) -> _Line:
        transaction_id = _text(row["transaction_id"])
        account_id = _text(row["account_id"])
        if not transaction_id:
            raise ValueError("every bank line needs a transaction_id")
        if account_id not in self._accounts:
            raise ValueError(f"transaction {transaction_id} is for unknown account {account_id}")
        currency = normalise_currency(_text(row["currency"]))
        amount = _text(row["amount"])
        try:
            to_minor(amount, currency)
        except MoneyError as exc:
            raise ValueError(f"transaction {transaction_id}: {exc}") from None
        status = _text(row["status"])
        if status not in ("booked", "pending"):
            raise ValueError(f"transaction {transaction_id} has status {status!r}")
        booked_on = _date(row["booked_on"])
        return _Line(
            transaction_id=transaction_id,
            account_id=account_id,
            booked_on=booked_on,
            value_on=booked_on,
            amount=amount,
            currency=currency,
            counterparty=_text(row["counterparty"]),
            reference=_text(row["reference"]),
            status=status,
            pending_id=_text(row.get("pending_id")) or None,
        )

    def book(self, transaction_id: str, booked_on: date | None = None) -> None:
        """Book a pending line (under its own `transaction_id`), optionally on another day."""
        with self._lock:
            line = next((x for x in self._lines if x.transaction_id == transaction_id), None)
            if line is None or line.status != "pending":
                raise KeyError(f"no pending line {transaction_id}")
            line.status = "booked"
            if booked_on is not None:
                line.booked_on = booked_on

    def expire_consent(self, account_id: str) -> None:
        """Make the account's end-user agreement expired (access ended a second ago)."""
        with self._lock:
            agreement = self._agreements[self._account_agreement[account_id]]
            agreement.accepted = self._now() - timedelta(
                days=agreement.access_valid_for_days, seconds=1
            )

    def revoke_access(self, account_id: str) -> None:
        """Revoke the account's access at the bank (`AccessExpiredError`)."""
        with self._lock:
            self._revoked.add(account_id)

    def revoke_tokens(self) -> None:
        """Forget every issued token (as after a key rotation): clients must authenticate again."""
        with self._lock:
            self._tokens.clear()

    def quota_used(
        self, account_id: str, scope: str = "transactions", day: date | None = None
    ) -> int:
        """Successful calls counted against the account's daily limit for `scope` on `day`."""
        with self._lock:
            return self._quota.get((account_id, scope, day or self._now().date()), 0)

    def lines(self) -> list[dict[str, Any]]:
        """The current bank lines (for tests)."""
        with self._lock:
            return [dict(vars(line)) for line in self._lines]

    # -- auth ----------------------------------------------------------------------------------

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    def _issue(self, kind: str, lifetime: int) -> str:
        now = self._now()
        expires = now + timedelta(seconds=lifetime)
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "token_type": kind,
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
            "id": len(self._tokens) + 1,
        }
        signing_input = f"{_b64(header)}.{_b64(payload)}"
        signature = hmac.new(self._signing_key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
        self._tokens[token] = _Token(kind, expires)
        return token

    def token_new(self, body: Mapping[str, Any]) -> JSON:
        """`POST token/new/`."""
        missing = {
            k: ["This field is required."] for k in ("secret_id", "secret_key") if not body.get(k)
        }
        if missing:
            raise _field_error(400, missing)
        with self._lock:
            ok_id = _same(str(body["secret_id"]), self._secret_id)
            ok_key = _same(str(body["secret_key"]), self._secret_key)
            if not (ok_id and ok_key):
                raise _flat(
                    401,
                    "Authentication failed",
                    "No active account found with the given credentials",
                )
            self.token_counts["new"] += 1
            return {
                "access": self._issue("access", self.access_expires),
                "access_expires": self.access_expires,
                "refresh": self._issue("refresh", self.refresh_expires),
                "refresh_expires": self.refresh_expires,
            }

    def token_refresh(self, body: Mapping[str, Any]) -> JSON:
        """`POST token/refresh/`: a new access token; the refresh token stays as it is."""
        refresh = body.get("refresh")
        if not refresh:
            raise _field_error(400, {"refresh": ["This field is required."]})
        with self._lock:
            token = self._tokens.get(str(refresh))
            if token is None or token.kind != "refresh" or token.expires <= self._now():
                raise _flat(401, *_INVALID_TOKEN)
            self.token_counts["refresh"] += 1
            return {
                "access": self._issue("access", self.access_expires),
                "access_expires": self.access_expires,
            }

    def authorise(self, authorization: str | None) -> None:
        """Check the bearer access token; 401 as the API answers otherwise."""
        if not authorization:
            raise _flat(
                401,
                "Authentication credentials were not provided.",
                "Authentication credentials were not provided.",
            )
        scheme, _, value = authorization.partition(" ")
        with self._lock:
            token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            if token is None or token.kind != "access" or token.expires <= self._now():
                raise _flat(401, *_INVALID_TOKEN)

    # -- institutions, agreements, requisitions ------------------------------------------------

    def institutions(self, country: str | None) -> list[JSON]:
        """`GET institutions/?country=`: a bare array."""
        with self._lock:
            found = list(self._institutions.values())
        if country:
            code = country.upper()
            if code not in SUPPORTED_COUNTRIES:
                raise _field_error(
                    400,
                    {
                        "country": {
                            "summary": "Invalid country choice.",
                            "detail": f"{code} is not a valid choice.",
                        }
                    },
                )
            found = [i for i in found if code in i.countries]
        return [_institution_json(i) for i in found]

    def institution(self, institution_id: str) -> JSON:
        """`GET institutions/{id}/`."""
        with self._lock:
            found = self._institutions.get(institution_id)
        if found is None:
            raise _flat(404, *_NOT_FOUND)
        return {
            **_institution_json(found),
            "supported_payments": {},
            "supported_features": [
                "account_selection",
                "business_accounts",
                "pending_transactions",
            ],
            "identification_codes": [],
        }

    def create_agreement(self, body: Mapping[str, Any]) -> JSON:
        """`POST agreements/enduser/`."""
        with self._lock:
            agreement = self._new_agreement(body)
            return _agreement_json(agreement)

    def _new_agreement(self, body: Mapping[str, Any]) -> _Agreement:
        institution_id = body.get("institution_id")
        if not institution_id:
            raise _field_error(400, {"institution_id": ["This field is required."]})
        institution = self._institutions.get(str(institution_id))
        if institution is None:
            raise _field_error(
                400,
                {
                    "institution_id": {
                        "summary": f"Unknown Institution ID {institution_id}",
                        "detail": "Get Institution IDs from /institutions/?country={$COUNTRY_CODE}",
                    }
                },
            )
        errors: JSON = {}
        historical = _int_field(body, "max_historical_days", 90, errors)
        valid_for = _int_field(body, "access_valid_for_days", 90, errors)
        if historical is not None and not 0 < historical <= institution.transaction_total_days:
            errors["max_historical_days"] = {
                "summary": "Incorrect max_historical_days",
                "detail": f"max_historical_days must be > 0 and <= "
                f"{institution.transaction_total_days} for {institution.id}",
            }
        if valid_for is not None and not 0 < valid_for <= institution.max_access_valid_for_days:
            errors["access_valid_for_days"] = {
                "summary": "Incorrect access_valid_for_days",
                "detail": f"access_valid_for_days must be > 0 and <= "
                f"{institution.max_access_valid_for_days}",
            }
        scope = body.get("access_scope", list(SCOPES))
        if not isinstance(scope, list) or not scope or any(s not in SCOPES for s in scope):
            errors["access_scope"] = {
                "summary": "Unknown value in access_scope",
                "detail": f"Choose one or more of {', '.join(SCOPES)}",
            }
        if errors:
            raise _field_error(400, errors)
        assert historical is not None and valid_for is not None
        agreement = _Agreement(
            id=str(uuid.uuid4()),
            created=self._now(),
            institution_id=institution.id,
            max_historical_days=historical,
            access_valid_for_days=valid_for,
            access_scope=[str(s) for s in scope],
        )
        self._agreements[agreement.id] = agreement
        return agreement

    def create_requisition(self, body: Mapping[str, Any], base_url: str) -> JSON:
        """`POST requisitions/`: a new requisition (and a default EUA when none is given)."""
        errors: JSON = {}
        for name in ("redirect", "institution_id"):
            if not body.get(name):
                errors[name] = ["This field is required."]
        if errors:
            raise _field_error(400, errors)
        with self._lock:
            institution_id = str(body["institution_id"])
            agreement_id = body.get("agreement")
            if agreement_id:
                agreement = self._agreements.get(str(agreement_id))
                if agreement is None:
                    raise _field_error(
                        400,
                        {
                            "agreement": {
                                "summary": "Invalid agreement",
                                "detail": f"{agreement_id} is not a valid end user agreement",
                            }
                        },
                    )
                if agreement.institution_id != institution_id:
                    raise _field_error(
                        400,
                        {
                            "agreement": {
                                "summary": "Incorrect Institution ID",
                                "detail": f"Provided Institution ID: '{institution_id}' for "
                                f"requisition does not match EUA institution ID "
                                f"'{agreement.institution_id}'. Please provide correct "
                                "institution ID.",
                            }
                        },
                    )
            else:
                agreement = self._new_agreement({"institution_id": institution_id})
            requisition_id = str(uuid.uuid4())
            requisition = _Requisition(
                id=requisition_id,
                created=self._now(),
                redirect=str(body["redirect"]),
                institution_id=institution_id,
                agreement=agreement.id,
                reference=str(body.get("reference") or requisition_id),
                user_language=str(body.get("user_language") or "EN").upper(),
                link=f"{base_url.rstrip('/')}{CONSENT_PATH}/{requisition_id}/{institution_id}",
                account_selection=bool(body.get("account_selection", False)),
                redirect_immediate=bool(body.get("redirect_immediate", False)),
            )
            self._requisitions[requisition_id] = requisition
            return self._requisition_json(requisition)

    def requisition(self, requisition_id: str) -> JSON:
        """`GET requisitions/{id}/`."""
        with self._lock:
            found = self._requisitions.get(requisition_id)
            if found is None:
                raise _flat(404, *_NOT_FOUND)
            return self._requisition_json(found)

    def _requisition_json(self, requisition: _Requisition) -> JSON:
        status = requisition.status
        expires = self._agreements[requisition.agreement].expires()
        if status == "LN" and expires is not None and expires <= self._now():
            status = "EX"
        return {
            "id": requisition.id,
            "created": _stamp(requisition.created),
            "redirect": requisition.redirect,
            "status": status,
            "institution_id": requisition.institution_id,
            "agreement": requisition.agreement,
            "reference": requisition.reference,
            "accounts": list(requisition.accounts),
            "user_language": requisition.user_language,
            "link": requisition.link,
            "ssn": None,
            "account_selection": requisition.account_selection,
            "redirect_immediate": requisition.redirect_immediate,
        }

    def consent(self, requisition_id: str, institution_id: str) -> tuple[_Requisition, list[str]]:
        """The requisition a consent page is about and the accounts it would link."""
        with self._lock:
            requisition = self._requisitions.get(requisition_id)
            if requisition is None or requisition.institution_id != institution_id:
                raise _flat(404, *_NOT_FOUND)
            accounts = [
                a.account_id
                for a in self._accounts.values()
                if a.institution_id == requisition.institution_id
            ]
            return requisition, accounts

    def give_consent(self, requisition_id: str, institution_id: str, allow: bool) -> str:
        """The user allowed (or refused) access: link accounts; the URL to redirect to."""
        requisition, accounts = self.consent(requisition_id, institution_id)
        with self._lock:
            if allow:
                agreement = self._agreements[requisition.agreement]
                agreement.accepted = self._now()
                requisition.accounts = accounts
                requisition.status = "LN"
                for account_id in accounts:
                    self._account_agreement[account_id] = agreement.id
                    self._revoked.discard(account_id)
                query = {"ref": requisition.reference}
            else:
                requisition.status = "RJ"
                query = {
                    "ref": requisition.reference,
                    "error": "UserCancelledSession",
                    "details": "User cancelled the session.",
                }
            separator = "&" if "?" in requisition.redirect else "?"
            return f"{requisition.redirect}{separator}{urlencode(query)}"

    # -- accounts ------------------------------------------------------------------------------

    def _account(self, account_id: str) -> SandboxAccount:
        try:
            uuid.UUID(account_id)
        except ValueError:
            raise _flat(
                400, "Invalid Account ID", f"{account_id} is not a valid Account UUID. "
            ) from None
        account = self._accounts.get(account_id)
        if account is None:
            raise _flat(404, *_NOT_FOUND)
        return account

    def account(self, account_id: str) -> JSON:
        """`GET accounts/{id}/`: metadata (no per-account quota)."""
        with self._lock:
            account = self._account(account_id)
            created = self._account_created[account_id]
            return {
                "id": account.account_id,
                "created": _stamp(created),
                "last_accessed": _stamp(self._now()),
                "iban": account.iban,
                "institution_id": account.institution_id,
                "status": "EXPIRED" if self._access_error(account_id) else "READY",
                "owner_name": account.owner_name,
            }

    def _access_error(self, account_id: str) -> BadAPIError | None:
        agreement = self._agreements[self._account_agreement[account_id]]
        expires = agreement.expires()
        if expires is not None and expires <= self._now():
            return _flat(
                401,
                f"End User Agreement (EUA) {agreement.id} has expired",
                f"EUA was valid for {agreement.access_valid_for_days} days and it expired at "
                f"{expires.isoformat(sep=' ', timespec='microseconds')}. The end user must "
                "connect the account once more with new EUA and Requisition",
            )
        if account_id in self._revoked:
            return _flat(
                401,
                "Access has expired or it has been revoked",
                "Access has expired or it has been revoked. To restore access, reconnect the "
                "account.",
                type="AccessExpiredError",
            )
        return None

    def account_data(
        self, account_id: str, scope: str, params: Mapping[str, str]
    ) -> tuple[JSON, dict[str, str]]:
        """A details/balances/transactions answer and its rate-limit headers; counts the quota."""
        with self._lock:
            account = self._account(account_id)
            error = self._access_error(account_id)
            if error is not None:
                raise error
            now = self._now()
            key = (account_id, scope, now.date())
            used = self._quota.get(key, 0)
            if used >= self.daily_limit:
                raise BadAPIError(
                    429,
                    {
                        "summary": f"Couldn't update {_SCOPE_SUMMARY[scope]}",
                        "detail": "Daily request limit set by the Institution has been exceeded.",
                        "type": "RateLimitError",
                        "status_code": 429,
                    },
                    self._limit_headers(now, 0),
                )
            if scope == "transactions":
                body = self._transactions(account, params, now.date())
            elif scope == "details":
                body = self._details(account)
            else:
                body = self._balances(account, now.date())
            self._quota[key] = used + 1
            return body, self._limit_headers(now, self.daily_limit - used - 1)

    def _limit_headers(self, now: datetime, remaining: int) -> dict[str, str]:
        minute = int(now.timestamp()) // 60
        self._company[minute] = self._company.get(minute, 0) + 1
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        return {
            "HTTP_X_RATELIMIT_LIMIT": str(COMPANY_LIMIT_PER_MINUTE),
            "HTTP_X_RATELIMIT_REMAINING": str(
                max(COMPANY_LIMIT_PER_MINUTE - self._company[minute], 0)
            ),
            "HTTP_X_RATELIMIT_RESET": str(60 - int(now.timestamp()) % 60),
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT": str(self.daily_limit),
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING": str(max(remaining, 0)),
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET": str(
                math.ceil((midnight - now).total_seconds())
            ),
        }

    def _details(self, account: SandboxAccount) -> JSON:
        return {
            "account": {
                "resourceId": account.account_id,
                "iban": account.iban,
                "currency": account.currency,
                "ownerName": account.owner_name,
                "name": "Main Account",
                "product": "Business Current Account",
                "cashAccountType": "CACC",
            }
        }

    def _balances(self, account: SandboxAccount, today: date) -> JSON:
        booked = sum(
            (
                Decimal(x.amount)
                for x in self._lines
                if x.account_id == account.account_id and x.status == "booked"
            ),
            Decimal(0),
        )
        pending = sum(
            (
                Decimal(x.amount)
                for x in self._lines
                if x.account_id == account.account_id and x.status == "pending"
            ),
            Decimal(0),
        )
        return {
            "balances": [
                {
                    "balanceAmount": {"amount": f"{booked:.2f}", "currency": account.currency},
                    "balanceType": "closingBooked",
                    "referenceDate": today.isoformat(),
                },
                {
                    "balanceAmount": {
                        "amount": f"{booked + pending:.2f}",
                        "currency": account.currency,
                    },
                    "balanceType": "interimAvailable",
                    "referenceDate": today.isoformat(),
                },
            ]
        }

    def _transactions(
        self, account: SandboxAccount, params: Mapping[str, str], today: date
    ) -> JSON:
        date_from = _query_date(params, "date_from", today)
        date_to = _query_date(params, "date_to", today)
        if date_from is not None and date_to is not None and date_from > date_to:
            raise _field_error(
                400,
                {
                    "date_from": {
                        "summary": "Incorrect date range",
                        "detail": f"'{date_from}' can't be greater than '{date_to}'. Specify "
                        "correct date range",
                    }
                },
            )
        lines = [
            x
            for x in self._lines
            if x.account_id == account.account_id
            and (date_from is None or x.booked_on >= date_from)
            and (date_to is None or x.booked_on <= date_to)
        ]
        lines.sort(key=lambda x: (x.booked_on, x.transaction_id), reverse=True)
        return {
            "transactions": {
                "booked": [_wire(account, x, booked=True) for x in lines if x.status == "booked"],
                "pending": [
                    _wire(account, x, booked=False) for x in lines if x.status == "pending"
                ],
            }
        }


# -- wire format -----------------------------------------------------------------------------------


def _wire(account: SandboxAccount, line: _Line, *, booked: bool) -> JSON:
    """One line as the bank's GoCardless feed renders it."""
    record: JSON = {}
    if account.transaction_ids:
        shown = line.transaction_id if booked else line.pending_id
        if shown:
            record["transactionId"] = shown
    if booked:
        record["bookingDate"] = line.booked_on.isoformat()
    record["valueDate"] = line.value_on.isoformat()
    record["transactionAmount"] = {"amount": line.amount, "currency": line.currency}
    credit = not line.amount.startswith("-")
    if line.counterparty:
        record["debtorName" if credit else "creditorName"] = line.counterparty
    record["bankTransactionCode"] = "PMNT-RCDT-ESCT" if credit else "PMNT-ICDT-ESCT"
    record.update(_reference_fields(account, line))
    state = "booked" if booked else "pending"
    record["internalTransactionId"] = hashlib.md5(  # noqa: S324 - an id, not security
        f"{line.transaction_id}/{state}".encode()
    ).hexdigest()
    return record


def _reference_fields(account: SandboxAccount, line: _Line) -> JSON:
    ref = line.reference
    style = account.reference_style
    if style is ReferenceStyle.ABN_AMRO:
        entries = ["SEPA Overboeking", f"IBAN: {account.iban}", "BIC: ABNANL2A"]
        if line.counterparty:
            entries.append(f"Naam: {line.counterparty}")
        if ref:
            entries.append(f"Omschrijving: {ref}")
        return {"remittanceInformationUnstructuredArray": entries}
    if not ref:
        return {}
    if style is ReferenceStyle.UNSTRUCTURED:
        return {"remittanceInformationUnstructured": ref}
    if style is ReferenceStyle.UNSTRUCTURED_ARRAY:
        head, _, tail = ref.partition(" ")
        return {"remittanceInformationUnstructuredArray": [head, tail] if tail else [head]}
    if style is ReferenceStyle.STRUCTURED:
        return {"remittanceInformationStructured": ref}
    if style is ReferenceStyle.STRUCTURED_OBJECT:
        return {
            "remittanceInformationStructured": {
                "reference": ref,
                "referenceType": "SCOR",
                "referenceIssuer": None,
            }
        }
    if style is ReferenceStyle.STRUCTURED_ARRAY:
        return {"remittanceInformationStructuredArray": [ref]}
    if style is ReferenceStyle.ADDITIONAL_INFORMATION:
        return {"additionalInformation": ref}
    if style is ReferenceStyle.ENTRY_REFERENCE:
        return {"entryReference": ref}
    if style is ReferenceStyle.END_TO_END_ID:
        return {"endToEndId": ref}
    if style is ReferenceStyle.FINNISH:
        return {
            "remittanceInformationUnstructured": (
                f"OSTOPVM  {line.value_on:%y%m%d}\n{ref}     \nVARMENTAJA 400"
            )
        }
    return {  # SPARKASSE
        "remittanceInformationUnstructured": ref,
        "additionalInformation": "GUTSCHR. UEBERWEISUNG",
    }


def _institution_json(institution: SandboxInstitution) -> JSON:
    return {
        "id": institution.id,
        "name": institution.name,
        "bic": institution.bic,
        "transaction_total_days": str(institution.transaction_total_days),
        "countries": list(institution.countries),
        "logo": f"https://cdn-logos.gocardless.com/ais/{institution.id}.png",
        "max_access_valid_for_days": str(institution.max_access_valid_for_days),
    }


def _agreement_json(agreement: _Agreement) -> JSON:
    return {
        "id": agreement.id,
        "created": _stamp(agreement.created),
        "institution_id": agreement.institution_id,
        "max_historical_days": agreement.max_historical_days,
        "access_valid_for_days": agreement.access_valid_for_days,
        "access_scope": list(agreement.access_scope),
        "accepted": _stamp(agreement.accepted) if agreement.accepted else None,
    }


def _default_institutions(accounts: Any) -> list[SandboxInstitution]:
    found: dict[str, SandboxInstitution] = {
        "SANDBOXFINANCE_SFIN0000": SandboxInstitution(
            "SANDBOXFINANCE_SFIN0000", "Sandbox Finance", "SFIN0000", ("GB",)
        )
    }
    for account in accounts:
        name, _, bic = account.institution_id.partition("_")
        known = found.get(account.institution_id)
        countries = {account.iban[:2].upper(), *(known.countries if known else ())}
        found[account.institution_id] = SandboxInstitution(
            account.institution_id,
            name.replace("-", " ").title(),
            bic or name,
            tuple(sorted(countries)),
        )
    return list(found.values())


# -- small helpers ---------------------------------------------------------------------------------


def _b64(value: JSON) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _date(value: Any) -> date:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _int_field(body: Mapping[str, Any], name: str, default: int, errors: JSON) -> int | None:
    value = body.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        errors[name] = [f"A valid integer is required for {name}."]
        return None


def _query_date(params: Mapping[str, str], name: str, today: date) -> date | None:
    text = params.get(name)
    if not text:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise _field_error(
            400,
            {
                name: {
                    "summary": "Invalid date format",
                    "detail": f"'{text}' is not a valid date. Use the YYYY-MM-DD format",
                }
            },
        ) from None
    if len(text) != 10:
        raise _field_error(
            400,
            {name: {"summary": "Invalid date format", "detail": f"'{text}' is not YYYY-MM-DD"}},
        )
    if value > today:
        raise _field_error(
            400,
            {
                name: {
                    "summary": "Date can't be in future",
                    "detail": f"'{value}' can't be greater than {today}. Specify correct date "
                    "range",
                }
            },
        )
    return value


# -- malformed-record mutators for FaultPlan.malform -----------------------------------------------


def _drop_amount(record: JSON) -> None:
    amount = record.get("transactionAmount")
    if isinstance(amount, dict):
        amount.pop("amount", None)


def _bad_currency(record: JSON) -> None:
    amount = record.get("transactionAmount")
    if isinstance(amount, dict):
        amount["currency"] = "EURO"


def _non_iso_date(record: JSON) -> None:
    for key in ("bookingDate", "valueDate"):
        if isinstance(record.get(key), str):
            record[key] = date.fromisoformat(record[key]).strftime("%d/%m/%Y")


MALFORMATIONS: dict[str, Callable[[JSON], None]] = {
    "missing_amount": _drop_amount,
    "bad_currency": _bad_currency,
    "non_iso_date": _non_iso_date,
}
"""Record mutators for `FaultPlan.malform(..., records=("transactions", "booked"))`."""


# -- HTTP ------------------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[Response]]


def routes(state: GoCardlessState) -> list[BaseRoute]:
    """Bank Account Data over `state` under `/api/v2/...` (with and without trailing slash) and
    the consent page under `/psd2/start/...`, with `state.faults` applied to every endpoint."""

    def api(
        call: Callable[[Request], Awaitable[Any]], *, auth: bool = True, created: bool = False
    ) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                if auth:
                    state.authorise(request.headers.get("authorization"))
                result = await call(request)
            except BadAPIError as exc:
                return JSONResponse(exc.body, exc.status, exc.headers or None)
            if isinstance(result, Response):
                return result
            return JSONResponse(result, 201 if created else 200)

        return endpoint

    async def token_new(request: Request) -> Any:
        return state.token_new(await _json_body(request))

    async def token_refresh(request: Request) -> Any:
        return state.token_refresh(await _json_body(request))

    async def institutions(request: Request) -> Any:
        return state.institutions(request.query_params.get("country"))

    async def institution(request: Request) -> Any:
        return state.institution(request.path_params["id"])

    async def agreements(request: Request) -> Any:
        return state.create_agreement(await _json_body(request))

    async def requisitions(request: Request) -> Any:
        return state.create_requisition(await _json_body(request), str(request.base_url))

    async def requisition(request: Request) -> Any:
        return state.requisition(request.path_params["id"])

    async def account(request: Request) -> Any:
        return state.account(request.path_params["id"])

    def scoped(scope: str) -> Callable[[Request], Awaitable[Any]]:
        async def data(request: Request) -> Any:
            body, headers = state.account_data(
                request.path_params["id"], scope, dict(request.query_params)
            )
            return JSONResponse(body, 200, headers)

        return data

    async def consent_page(request: Request) -> Response:
        requisition_id = request.path_params["id"]
        institution_id = request.path_params["institution"]
        try:
            found, accounts = state.consent(requisition_id, institution_id)
        except BadAPIError:
            return HTMLResponse("<h1>Link not found</h1>", 404)
        base = f"{CONSENT_PATH}/{requisition_id}/{institution_id}"
        items = "".join(f"<li>{html.escape(a)}</li>" for a in accounts)
        page = (
            "<!doctype html><html><head><title>Sandbox bank consent</title></head><body>"
            f"<h1>{html.escape(institution_id)}</h1>"
            f"<p>Share these accounts with reference {html.escape(found.reference)}?</p>"
            f"<ul>{items}</ul>"
            f'<a id="allow" href="{base}/allow">Allow access</a> '
            f'<a id="deny" href="{base}/deny">Cancel</a>'
            "</body></html>"
        )
        return HTMLResponse(page)

    def decide(allow: bool) -> Handler:
        async def answer(request: Request) -> Response:
            try:
                target = state.give_consent(
                    request.path_params["id"], request.path_params["institution"], allow
                )
            except BadAPIError:
                return HTMLResponse("<h1>Link not found</h1>", 404)
            return RedirectResponse(target, status_code=302)

        return answer

    table: list[tuple[str, str, Handler, str]] = [
        ("token/new/", "token/new", api(token_new, auth=False), "POST"),
        ("token/refresh/", "token/refresh", api(token_refresh, auth=False), "POST"),
        ("institutions/", "institutions", api(institutions), "GET"),
        ("institutions/{id}/", "institution", api(institution), "GET"),
        ("agreements/enduser/", "agreements", api(agreements, created=True), "POST"),
        ("requisitions/", "requisitions", api(requisitions, created=True), "POST"),
        ("requisitions/{id}/", "requisition", api(requisition), "GET"),
        ("accounts/{id}/", "account", api(account), "GET"),
    ]
    table += [(f"accounts/{{id}}/{s}/", s, api(scoped(s)), "GET") for s in SCOPES]
    served: list[BaseRoute] = []
    for path, name, handler, method in table:
        wrapped = state.faults.wrap(handler, label=_label(name))
        full = f"{API}/{path}"
        served.append(Route(full, wrapped, methods=[method]))
        served.append(Route(full.rstrip("/"), wrapped, methods=[method]))
    consent = f"{CONSENT_PATH}/{{id}}/{{institution}}"
    for path, name, handler in (
        (consent, "consent", consent_page),
        (f"{consent}/allow", "consent/allow", decide(True)),
        (f"{consent}/deny", "consent/deny", decide(False)),
    ):
        served.append(Route(path, state.faults.wrap(handler, label=_label(name)), methods=["GET"]))
    return served


def _label(name: str) -> Callable[[Request], Awaitable[str]]:
    async def label(_request: Request) -> str:
        return name

    return label


async def _json_body(request: Request) -> JSON:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise _flat(400, "Invalid JSON", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _flat(400, "Invalid JSON", "The request body must be a JSON object.")
    return body
