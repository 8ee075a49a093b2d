"""The Bank Account Data sandbox's constants, seed records, stored objects and error answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

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
SCOPE_SUMMARY = {
    "details": "account details",
    "balances": "balances",
    "transactions": "transactions",
}
INVALID_TOKEN = ("Invalid token", "Token is invalid or expired")
NOT_FOUND = ("Not found.", "Not found.")


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
class Line:
    """One bank line as the sandbox stores it (pending lines can be booked later)."""

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
class Agreement:
    """An end-user agreement (EUA); access runs from its acceptance."""

    id: str
    created: datetime
    institution_id: str
    max_historical_days: int
    access_valid_for_days: int
    access_scope: list[str]
    accepted: datetime | None = None

    def expires(self) -> datetime | None:
        """When access ends, or None before the user accepted."""
        if self.accepted is None:
            return None
        return self.accepted + timedelta(days=self.access_valid_for_days)


@dataclass
class Requisition:
    """A requisition: the link a user follows to give consent, and the accounts it linked."""

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
class Token:
    """An issued access or refresh token."""

    kind: str
    expires: datetime


class BadAPIError(Exception):
    """An error answer: HTTP status, the provider's JSON body, extra headers."""

    def __init__(self, status: int, body: JSON, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def flat(status: int, summary: str, detail: str, **extra: Any) -> BadAPIError:
    """An error with the API's flat `{summary, detail, status_code}` body."""
    return BadAPIError(
        status, {"summary": summary, "detail": detail, **extra, "status_code": status}
    )


def field_error(status: int, errors: Mapping[str, Any]) -> BadAPIError:
    """An error whose body names the offending fields."""
    return BadAPIError(status, {**errors, "status_code": status})
