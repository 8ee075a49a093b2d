"""The bank wizard's objects: institutions, end-user agreements, requisitions and accounts.

Frozen dataclasses and the pure readers that build them from the API's JSON objects (missing
fields read as empty text or the API's documented defaults, never an error).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.gocardless.wire import int_or, opt_text


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


def institution(item: Mapping[str, Any]) -> Institution:
    """An `institutions/` entry."""
    return Institution(
        id=str(item.get("id") or ""),
        name=str(item.get("name") or ""),
        bic=str(item.get("bic") or ""),
        countries=tuple(str(c) for c in item.get("countries") or ()),
        transaction_total_days=int_or(item.get("transaction_total_days"), 90),
        max_access_valid_for_days=int_or(item.get("max_access_valid_for_days"), 90),
    )


def agreement(item: Mapping[str, Any]) -> Agreement:
    """An `agreements/enduser/` answer."""
    return Agreement(
        id=str(item.get("id") or ""),
        institution_id=str(item.get("institution_id") or ""),
        max_historical_days=int_or(item.get("max_historical_days"), 90),
        access_valid_for_days=int_or(item.get("access_valid_for_days"), 90),
        access_scope=tuple(str(s) for s in item.get("access_scope") or ()),
        accepted=opt_text(item.get("accepted")),
    )


def requisition(item: Mapping[str, Any]) -> Requisition:
    """A `requisitions/` answer."""
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


def account(item: Mapping[str, Any], account_id: str) -> Account:
    """An `accounts/{id}/` answer; `account_id` stands in for a missing id."""
    return Account(
        id=str(item.get("id") or account_id),
        iban=opt_text(item.get("iban")),
        institution_id=str(item.get("institution_id") or ""),
        status=str(item.get("status") or ""),
        owner_name=opt_text(item.get("owner_name")),
    )
