"""The typed faces of the bank-connection service: what it needs from the provider (Protocols
that `connectors.gocardless.GoCardlessClient` satisfies structurally) and what it returns (frozen
dataclasses the CLI prints and the UI shows)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

# -- what the provider offers ----------------------------------------------------------------------


class InstitutionLike(Protocol):
    """A bank as the provider describes it."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def bic(self) -> str: ...
    @property
    def transaction_total_days(self) -> int: ...
    @property
    def max_access_valid_for_days(self) -> int: ...


class AgreementLike(Protocol):
    """An end-user agreement."""

    @property
    def id(self) -> str: ...
    @property
    def max_historical_days(self) -> int: ...
    @property
    def access_valid_for_days(self) -> int: ...
    @property
    def accepted(self) -> str | None: ...


class RequisitionLike(Protocol):
    """A requisition: a connection being made, `LN` once linked."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def institution_id(self) -> str: ...
    @property
    def agreement(self) -> str: ...
    @property
    def link(self) -> str: ...
    @property
    def accounts(self) -> tuple[str, ...]: ...


class AccountLike(Protocol):
    """Account metadata (no daily quota)."""

    @property
    def id(self) -> str: ...
    @property
    def iban(self) -> str | None: ...
    @property
    def institution_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def owner_name(self) -> str | None: ...


class BankDirectory(Protocol):
    """The provider calls the wizard needs (GoCardlessClient has them)."""

    def list_institutions(self, country: str) -> Sequence[InstitutionLike]: ...

    def create_agreement(
        self,
        institution_id: str,
        *,
        max_historical_days: int = ...,
        access_valid_for_days: int = ...,
    ) -> AgreementLike: ...

    def create_requisition(
        self, redirect: str, institution_id: str, *, reference: str, agreement: str | None = ...
    ) -> RequisitionLike: ...

    def get_agreement(self, agreement_id: str) -> AgreementLike: ...

    def get_requisition(self, requisition_id: str) -> RequisitionLike: ...

    def get_account(self, account_id: str) -> AccountLike: ...

    def get_details(self, account_id: str) -> dict[str, Any]: ...


# -- typed results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstitutionView:
    """A bank the tenant can connect."""

    id: str
    name: str
    bic: str
    transaction_total_days: int
    max_access_valid_for_days: int


@dataclass(frozen=True)
class ConnectionStarted:
    """A started connection: send the account holder to `link`, then finish with the id."""

    tenant_id: str
    requisition_id: str
    link: str
    institution_id: str
    agreement_id: str
    max_historical_days: int
    access_valid_for_days: int
    reference: str
    redirect: str


@dataclass(frozen=True)
class RequisitionState:
    """Where a connection stands at the provider."""

    requisition_id: str
    status: str
    status_text: str
    linked: bool
    institution_id: str
    accounts: tuple[str, ...]
    agreement_id: str = ""


@dataclass(frozen=True)
class ConsentEnd:
    """When a bank consent ends and where that date comes from (`basis`, one sentence): the
    provider's agreement (accepted at the bank, valid N days), or an estimate."""

    expires_at: dt.datetime
    basis: str
    estimated: bool


@dataclass(frozen=True)
class LinkedAccount:
    """One account stored as a source account; `change` is added, updated or unchanged."""

    external_id: str
    name: str | None
    currency: str | None
    institution_id: str | None
    requisition_id: str
    consent_expires_at: dt.datetime | None
    change: str
    consent_basis: str | None = None


@dataclass(frozen=True)
class LinkResult:
    """The accounts a linked requisition gave the tenant."""

    tenant_id: str
    requisition_id: str
    accounts: tuple[LinkedAccount, ...]


class ConsentState(StrEnum):
    """How a bank account's consent stands."""

    OK = "ok"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class QuotaLeft:
    """Calls left today for one rate-limited scope of an account."""

    scope: str
    used: int
    limit: int
    left: int


@dataclass(frozen=True)
class AccountStatus:
    """One bank account of the tenant: consent, last successful sync, quota left today."""

    external_id: str
    name: str | None
    currency: str | None
    institution_id: str | None
    requisition_id: str | None
    status: str
    consent_expires_at: dt.datetime | None
    days_left: int | None
    consent: ConsentState
    warning: str | None
    last_sync_at: dt.datetime | None
    last_sync_run: str | None
    quota: tuple[QuotaLeft, ...]
    consent_basis: str | None = None
    """Where `consent_expires_at` comes from (see `ConsentEnd.basis`); None when not recorded."""


@dataclass(frozen=True)
class ConnectionStatus:
    """Every bank account of a tenant as of `as_of`."""

    tenant_id: str
    as_of: dt.datetime
    accounts: tuple[AccountStatus, ...]

    @property
    def warnings(self) -> tuple[str, ...]:
        """The consent warnings, one sentence each."""
        return tuple(a.warning for a in self.accounts if a.warning)


@dataclass(frozen=True)
class ConnectivityResult:
    """One provider's connectivity check: ok, or one sentence saying what failed."""

    name: str
    ok: bool
    detail: str


Probe = Callable[[], str]
"""A connectivity check: returns what it saw (one short sentence) or raises."""
