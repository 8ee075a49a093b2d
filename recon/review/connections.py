"""Bank connections: the GoCardless requisition wizard, consent status and connectivity checks.

The wizard goes country -> institution -> end-user agreement -> requisition (its `link` is where
the account holder gives consent) -> status -> linked accounts, stored as the tenant's
`SourceAccount` rows. The provider is reached through `BankDirectory`, a Protocol that
`connectors.gocardless.GoCardlessClient` satisfies structurally: the entry point builds the real
client for the tenant and passes it in, so this core module never imports a connector.

Provider calls happen outside any database transaction; each write is one transaction that checks
MANAGE, changes the rows and appends its audit entry. Reading the status needs READ only.

The consent's expiry is GoCardless's own: the agreement's `access_valid_for_days` from its
`accepted`; only when the provider does not say is it estimated (see `recon.review.consent_end`),
and each account's status says which.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from recon import audit
from recon.db.base import utcnow
from recon.db.models import ProviderQuota, RawFetch, SourceAccount
from recon.db.tenancy import tenant_session
from recon.errors import NotFoundError, ReconError, RuleViolationError
from recon.redaction import redact
from recon.review import consent_end
from recon.review.access import Actor, Permission, require
from recon.review.connection_views import (
    AccountLike,
    AccountStatus,
    BankDirectory,
    ConnectionStarted,
    ConnectionStatus,
    ConnectivityResult,
    ConsentEnd,
    InstitutionLike,
    InstitutionView,
    LinkedAccount,
    LinkResult,
    Probe,
    QuotaLeft,
    RequisitionState,
)
from recon.review.consent_end import DEFAULT_ACCESS_DAYS, LINKED, STARTED, WARN_DAYS
from recon.review.views import as_utc

PROVIDER = "gocardless"
DEFAULT_REDIRECT = "http://localhost:8501/connections"
__all__ = ["DEFAULT_ACCESS_DAYS", "LINKED", "STARTED", "WARN_DAYS"]  # and the services below
DAILY_LIMIT = 4
"""GoCardless's floor of successful calls per account and scope per day (as connectors.quota)."""
SCOPES = ("details", "balances", "transactions")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_STATUS_TEXT = {
    "CR": "created: waiting for the account holder to open the consent link",
    "GC": "giving consent",
    "UA": "the account holder is authenticating at the bank",
    "RJ": "rejected: the bank or the account holder refused; start again",
    "SA": "the account holder is selecting accounts",
    "GA": "access granted",
    "LN": "linked",
    "EX": "expired: start a new connection",
}


# -- the wizard ------------------------------------------------------------------------------------


def _check(engine: Engine, acting: Actor | str, tenant_id: str, permission: Permission) -> Actor:
    with tenant_session(engine, tenant_id) as session:
        return require(session, acting, tenant_id, permission)


def _country(country: str) -> str:
    if not _COUNTRY.match(country.strip()):
        raise RuleViolationError(f"country {country!r} is not a two-letter ISO code such as GB")
    return country.strip().upper()


def list_institutions(
    engine: Engine, acting: Actor | str, tenant_id: str, directory: BankDirectory, country: str
) -> list[InstitutionView]:
    """The banks of `country` the tenant can connect (MANAGE: it uses the tenant's keys)."""
    _check(engine, acting, tenant_id, Permission.MANAGE)
    found = directory.list_institutions(_country(country))
    return sorted((_institution(i) for i in found), key=lambda i: i.name.lower())


def _institution(item: InstitutionLike) -> InstitutionView:
    return InstitutionView(
        item.id, item.name, item.bic, item.transaction_total_days, item.max_access_valid_for_days
    )


def start_connection(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    directory: BankDirectory,
    *,
    country: str,
    institution_id: str,
    redirect: str = DEFAULT_REDIRECT,
    max_historical_days: int | None = None,
    access_valid_for_days: int = DEFAULT_ACCESS_DAYS,
) -> ConnectionStarted:
    """Create the agreement and the requisition; return the consent link (MANAGE, audited).

    `max_historical_days` defaults to all the history the bank gives."""
    _check(engine, acting, tenant_id, Permission.MANAGE)
    if not redirect.startswith(("https://", "http://")):
        raise RuleViolationError(f"the redirect {redirect!r} is not an http(s) URL")
    bank = _pick(directory, _country(country), institution_id.strip())
    history = max_historical_days or bank.transaction_total_days
    for what, days, most in (
        ("history", history, bank.transaction_total_days),
        ("access", access_valid_for_days, bank.max_access_valid_for_days),
    ):
        if not 1 <= days <= most:
            raise RuleViolationError(f"{bank.name} allows 1 to {most} days of {what}, not {days}")
    agreement = directory.create_agreement(
        bank.id, max_historical_days=history, access_valid_for_days=access_valid_for_days
    )
    reference = f"{tenant_id}-{uuid.uuid4().hex[:16]}"
    requisition = directory.create_requisition(
        redirect, bank.id, reference=reference, agreement=agreement.id
    )
    started = ConnectionStarted(
        tenant_id=tenant_id,
        requisition_id=requisition.id,
        link=requisition.link,
        institution_id=bank.id,
        agreement_id=agreement.id,
        max_historical_days=agreement.max_historical_days,
        access_valid_for_days=agreement.access_valid_for_days,
        reference=reference,
        redirect=redirect,
    )
    with tenant_session(engine, tenant_id) as session:
        actor = require(session, acting, tenant_id, Permission.MANAGE)
        details = {k: v for k, v in vars(started).items() if k not in ("tenant_id", "link")}
        audit.append(
            session,
            actor=actor.email,
            action=STARTED,
            entity="requisition",
            entity_id=requisition.id,
            details={**details, "country": _country(country)},
        )
    return started


def _pick(directory: BankDirectory, country: str, institution_id: str) -> InstitutionView:
    for item in directory.list_institutions(country):
        if item.id == institution_id:
            return _institution(item)
    raise NotFoundError(
        f"there is no bank {institution_id!r} in {country}; `recon bank institutions --country "
        f"{country}` lists them"
    )


def requisition_state(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    directory: BankDirectory,
    requisition_id: str,
) -> RequisitionState:
    """Where a connection stands at the provider (MANAGE: it uses the tenant's keys)."""
    _check(engine, acting, tenant_id, Permission.MANAGE)
    found = directory.get_requisition(requisition_id.strip())
    return RequisitionState(
        requisition_id=found.id,
        status=found.status,
        status_text=_STATUS_TEXT.get(found.status, found.status or "unknown"),
        linked=found.status == "LN",
        institution_id=found.institution_id,
        accounts=tuple(found.accounts),
        agreement_id=found.agreement,
    )


def link_accounts(
    engine: Engine,
    acting: Actor | str,
    tenant_id: str,
    directory: BankDirectory,
    requisition_id: str,
    *,
    now: dt.datetime | None = None,
) -> LinkResult:
    """Store a linked requisition's accounts as the tenant's source accounts, idempotently
    (MANAGE, audited when anything changed). A requisition not yet linked is refused."""
    state = requisition_state(engine, acting, tenant_id, directory, requisition_id)
    if not state.linked:
        raise RuleViolationError(
            f"requisition {state.requisition_id} is not linked yet ({state.status_text})"
        )
    accounts = [directory.get_account(a) for a in state.accounts]
    with tenant_session(engine, tenant_id) as session:
        known = _known(session, [a.id for a in accounts])
    details = {
        a.id: _details(directory, a.id) for a in accounts if known.get(a.id) is None
    }  # the details call draws on the daily quota: once per account, when first linked
    provided = consent_end.from_provider(directory, state.agreement_id)
    moment = as_utc(now) or utcnow()
    with tenant_session(engine, tenant_id) as session:
        actor = require(session, acting, tenant_id, Permission.MANAGE)
        end = provided or consent_end.from_start(session, state.requisition_id)
        linked = tuple(
            _store(session, tenant_id, state, a, details.get(a.id, {}), end, moment)
            for a in accounts
        )
        changed = [a for a in linked if a.change != "unchanged"]
        if changed:
            audit.append(
                session,
                actor=actor.email,
                action=LINKED,
                entity="requisition",
                entity_id=state.requisition_id,
                details={
                    "institution_id": state.institution_id,
                    "accounts": {a.external_id: a.change for a in changed},
                    "consent_expires_at": {
                        a.external_id: _iso(a.consent_expires_at) for a in changed
                    },
                    "consent_basis": {a.external_id: a.consent_basis for a in changed},
                },
            )
    return LinkResult(tenant_id, state.requisition_id, linked)


def _known(session: Session, external_ids: Sequence[str]) -> dict[str, str | None]:
    rows = session.execute(
        select(SourceAccount.external_id, SourceAccount.currency).where(
            SourceAccount.provider == PROVIDER, SourceAccount.external_id.in_(external_ids)
        )
    )
    return {str(ref): currency for ref, currency in rows}


def _details(directory: BankDirectory, account_id: str) -> Mapping[str, Any]:
    try:
        body = directory.get_details(account_id)
    except ReconError:  # quota used up or the bank is down: link anyway, currency comes later
        return {}
    account = body.get("account")
    return account if isinstance(account, Mapping) else {}


def _store(
    session: Session,
    tenant_id: str,
    state: RequisitionState,
    account: AccountLike,
    details: Mapping[str, Any],
    end: ConsentEnd | None,
    moment: dt.datetime,
) -> LinkedAccount:
    row = session.scalar(
        select(SourceAccount).where(
            SourceAccount.provider == PROVIDER, SourceAccount.external_id == account.id
        )
    )
    change = "updated"
    if row is None:
        row = SourceAccount(tenant_id=tenant_id, provider=PROVIDER, external_id=account.id)
        session.add(row)
        change = "added"
    basis: str | None = None
    expires: dt.datetime | None
    if end is not None:
        expires, basis = end.expires_at, end.basis
    elif row.requisition_id == state.requisition_id and row.consent_expires_at is not None:
        expires = as_utc(row.consent_expires_at)  # started elsewhere: keep what we stored
    else:
        fallback = consent_end.from_link(moment)
        expires, basis = fallback.expires_at, fallback.basis
    wanted = {
        "name": _text(details.get("name")) or row.name or _label(account),
        "currency": _text(details.get("currency")) or row.currency,
        "institution_id": account.institution_id or state.institution_id,
        "requisition_id": state.requisition_id,
        "consent_expires_at": expires,
        "status": "active",
    }
    if change == "updated" and all(_same(getattr(row, k), v) for k, v in wanted.items()):
        change = "unchanged"
    for key, value in wanted.items():
        setattr(row, key, value)
    session.flush()
    return LinkedAccount(
        account.id,
        row.name,
        row.currency,
        row.institution_id,
        state.requisition_id,
        as_utc(row.consent_expires_at),
        change,
        basis,
    )


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, dt.datetime) and isinstance(wanted, dt.datetime):
        return as_utc(stored) == as_utc(wanted)
    return bool(stored == wanted)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


def _label(account: AccountLike) -> str:
    tail = f" ...{account.iban[-4:]}" if account.iban else ""
    return f"{account.owner_name or account.institution_id}{tail}"


# -- status ----------------------------------------------------------------------------------------


def connection_status(
    engine: Engine, acting: Actor | str, tenant_id: str, *, now: dt.datetime | None = None
) -> ConnectionStatus:
    """Each bank account's consent expiry (a warning from 14 days before), last successful sync
    and provider quota left today (READ)."""
    moment = as_utc(now) or utcnow()
    with tenant_session(engine, tenant_id) as session:
        require(session, acting, tenant_id, Permission.READ)
        rows = list(
            session.scalars(
                select(SourceAccount)
                .where(SourceAccount.provider == PROVIDER)
                .order_by(SourceAccount.name, SourceAccount.external_id)
            )
        )
        refs = [r.external_id for r in rows]
        syncs = _last_syncs(session, refs)
        quotas = _quotas(session, refs, moment.date())
        bases = consent_end.recorded_bases(session, [r.requisition_id or "" for r in rows])
        accounts = tuple(
            _account_status(
                r,
                moment,
                syncs.get(r.external_id),
                quotas.get(r.external_id, {}),
                bases.get(r.external_id),
            )
            for r in rows
        )
    return ConnectionStatus(tenant_id, moment, accounts)


def _last_syncs(
    session: Session, refs: Sequence[str]
) -> dict[str, tuple[dt.datetime | None, str | None]]:
    if not refs:
        return {}
    newest = (
        select(RawFetch.account_ref, func.max(RawFetch.completed_at).label("done"))
        .where(
            RawFetch.provider == PROVIDER,
            RawFetch.dataset == "transactions",
            RawFetch.account_ref.in_(refs),
            RawFetch.completed_at.is_not(None),
        )
        .group_by(RawFetch.account_ref)
        .subquery()
    )
    rows = session.execute(
        select(RawFetch.account_ref, RawFetch.completed_at, RawFetch.run_id)
        .join(
            newest,
            (newest.c.account_ref == RawFetch.account_ref)
            & (newest.c.done == RawFetch.completed_at),
        )
        .where(RawFetch.provider == PROVIDER, RawFetch.dataset == "transactions")
    )
    return {ref: (as_utc(done), run) for ref, done, run in rows}


def _quotas(session: Session, refs: Sequence[str], day: dt.date) -> dict[str, dict[str, QuotaLeft]]:
    found: dict[str, dict[str, QuotaLeft]] = {}
    if not refs:
        return found
    rows = session.execute(
        select(
            ProviderQuota.account_ref,
            ProviderQuota.endpoint,
            ProviderQuota.calls,
            ProviderQuota.limit,
        ).where(
            ProviderQuota.provider == PROVIDER,
            ProviderQuota.day == day,
            ProviderQuota.account_ref.in_(refs),
        )
    )
    for ref, endpoint, calls, limit in rows:
        most = limit or DAILY_LIMIT
        found.setdefault(ref, {})[endpoint] = QuotaLeft(endpoint, calls, most, max(most - calls, 0))
    return found


def _account_status(
    row: SourceAccount,
    now: dt.datetime,
    sync: tuple[dt.datetime | None, str | None] | None,
    quota: Mapping[str, QuotaLeft],
    basis: str | None,
) -> AccountStatus:
    expires = as_utc(row.consent_expires_at)
    consent, days_left, warning = consent_end.standing(row.name or row.external_id, expires, now)
    return AccountStatus(
        external_id=row.external_id,
        name=row.name,
        currency=row.currency,
        institution_id=row.institution_id,
        requisition_id=row.requisition_id,
        status=row.status,
        consent_expires_at=expires,
        days_left=days_left,
        consent=consent,
        warning=warning,
        last_sync_at=sync[0] if sync else None,
        last_sync_run=sync[1] if sync else None,
        quota=tuple(quota.get(s) or QuotaLeft(s, 0, DAILY_LIMIT, DAILY_LIMIT) for s in SCOPES),
        consent_basis=basis
        if basis or expires is None
        else "estimated (no date from the provider is recorded for this link)",
    )


# -- connectivity ----------------------------------------------------------------------------------


def check_connectivity(
    engine: Engine, acting: Actor | str, tenant_id: str, probes: Mapping[str, Probe]
) -> list[ConnectivityResult]:
    """Run each provider's probe (MANAGE: probes use the tenant's secrets); a failure is one
    sentence, never a traceback, and never carries a secret."""
    _check(engine, acting, tenant_id, Permission.MANAGE)
    return [_probe(name, probe) for name, probe in probes.items()]


def _probe(name: str, probe: Probe) -> ConnectivityResult:
    try:
        return ConnectivityResult(name, True, redact(probe()))
    except ReconError as exc:
        return ConnectivityResult(name, False, redact(str(exc)))
    except Exception as exc:  # a probe is a network call: any failure is a result, not a crash
        return ConnectivityResult(name, False, f"{name} failed ({type(exc).__name__})")
