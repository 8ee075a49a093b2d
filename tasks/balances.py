"""Bank balances per run: land the bank's balances answer raw, then keep each balance it reports
as a snapshot for the report's tie-out (opening + movements = closing).

A run that fetched an account's lines asks for its balances once, through the same quota guard
but under the account's own `balances` scope, so it never spends a `transactions` call. A refused
or exhausted call is a warning, not a failed run: nothing is recorded and the report says the bank
gave no balance. A replay reads the newest landed answer instead of calling. Loading is
idempotent on (account, balance type, reference date, currency): the same answer twice writes
nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from connectors.gocardless import GoCardlessClient, GoCardlessDataError
from connectors.http import HttpPolicy, ProviderError
from connectors.pages import Page
from connectors.quota import QuotaGuard
from recon.db.models import BalanceSnapshot, RawFetch, RawPayload
from recon.db.tenancy import tenant_session
from recon.money import MoneyError, normalise_currency, to_minor
from recon.secrets import GOCARDLESS_SECRET_ID, GOCARDLESS_SECRET_KEY, SecretResolver
from tasks.land import FetchScope, PageLander

log = logging.getLogger("recon.balances")

PROVIDER = "gocardless"
DATASET = "balances"

Fetch = Callable[[Callable[[Page], None]], None]


@dataclass(frozen=True)
class Balance:
    """One balance as the bank reported it, in minor units."""

    balance_type: str
    reference_date: dt.date
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class BalancesOutcome:
    """What capturing one account's balances did."""

    account_ref: str
    fetched: bool
    """Whether the bank was called (False: a replay read the landed answer, or the call was
    refused)."""
    read: int
    written: int
    """Snapshots new or changed by this answer (0 when the same answer was loaded before)."""
    skipped: str | None = None
    """Why there is no answer to read (the call was refused, or nothing is landed yet)."""


def parse_balances(body: bytes, fetched_on: dt.date) -> tuple[list[Balance], list[str]]:
    """The balances of a `balances/` answer and one sentence per entry that could not be read.

    A balance without `referenceDate` is dated by `lastChangeDateTime`, else the fetch's day."""
    try:
        entries = json.loads(body).get("balances")
    except (ValueError, AttributeError):
        return [], ["the balances answer is not a JSON object"]
    if not isinstance(entries, list):
        return [], ["the balances answer has no list of balances"]
    found: list[Balance] = []
    problems: list[str] = []
    for n, entry in enumerate(entries):
        try:
            found.append(_balance(entry, fetched_on))
        except (MoneyError, ValueError, TypeError, KeyError, AttributeError) as exc:
            problems.append(f"balance {n} is unreadable ({exc})")
    return found, problems


def _balance(entry: dict[str, Any], fetched_on: dt.date) -> Balance:
    money = entry["balanceAmount"]
    currency = normalise_currency(str(money["currency"]))
    kind = str(entry["balanceType"]).strip()
    if not kind:
        raise ValueError("no balanceType")
    when = entry.get("referenceDate") or str(entry.get("lastChangeDateTime") or "")[:10]
    day = dt.date.fromisoformat(when) if when else fetched_on
    return Balance(kind[:32], day, to_minor(str(money["amount"]), currency), currency)


def land_balances(
    engine: Engine, tenant_id: str, account_ref: str, fetch: Fetch, *, run_id: str | None
) -> int | None:
    """Call the bank and land its answer; returns the landed fetch id. The fetch row is written
    only once an answer arrived, so a call refused before sending records nothing."""
    lander: PageLander | None = None

    def on_page(page: Page) -> None:
        nonlocal lander
        if lander is None:
            today = dt.datetime.now(dt.UTC).date()
            scope = FetchScope(PROVIDER, account_ref, DATASET, today, today)
            lander = PageLander(engine, tenant_id, scope, run_id)
        lander(page)

    fetch(on_page)
    if lander is None:
        return None
    lander.finish()
    return lander.fetch_id


def _newest_page(engine: Engine, tenant_id: str, account_ref: str) -> RawPayload | None:
    with tenant_session(engine, tenant_id) as session:
        page = session.scalar(
            select(RawPayload)
            .join(RawFetch, RawPayload.fetch_id == RawFetch.id)
            .where(
                RawFetch.provider == PROVIDER,
                RawFetch.account_ref == account_ref,
                RawFetch.dataset == DATASET,
                RawFetch.completed_at.is_not(None),
            )
            .order_by(RawFetch.completed_at.desc(), RawFetch.id.desc(), RawPayload.page.desc())
            .limit(1)
        )
        if page is not None:
            session.expunge(page)
        return page


def store_snapshots(
    engine: Engine,
    tenant_id: str,
    account_ref: str,
    page: RawPayload,
    balances: list[Balance],
    *,
    run_id: str | None,
) -> int:
    """Upsert the snapshots of one landed answer in one transaction; returns how many rows were
    new or changed. A day's balance that the bank restated (an interim balance moving within the
    day) takes the newer answer."""
    written = 0
    with tenant_session(engine, tenant_id) as session:
        for b in balances:
            row = session.scalar(
                select(BalanceSnapshot).where(
                    BalanceSnapshot.account_ref == account_ref,
                    BalanceSnapshot.balance_type == b.balance_type,
                    BalanceSnapshot.reference_date == b.reference_date,
                    BalanceSnapshot.currency == b.currency,
                )
            )
            if row is not None and row.amount_minor == b.amount_minor:
                continue
            if row is None:
                row = BalanceSnapshot(
                    tenant_id=tenant_id,
                    provider=PROVIDER,
                    account_ref=account_ref,
                    balance_type=b.balance_type,
                    reference_date=b.reference_date,
                    currency=b.currency,
                )
                session.add(row)
            row.amount_minor = b.amount_minor
            row.run_id = run_id
            row.raw_payload_id = page.id
            row.fetched_at = page.fetched_at
            written += 1
    return written


def capture_balances(
    engine: Engine,
    tenant_id: str,
    account_ref: str,
    fetch: Fetch | None,
    *,
    run_id: str | None,
) -> BalancesOutcome:
    """Fetch (when `fetch` is given) and land an account's balances, then load the newest landed
    answer into snapshots. Never raises for the bank's refusal or a bad answer: it logs a
    warning and records nothing."""
    fetched = False
    if fetch is not None:
        try:
            fetched = (
                land_balances(engine, tenant_id, account_ref, fetch, run_id=run_id) is not None
            )
        except (ProviderError, GoCardlessDataError) as exc:
            log.warning("bank %s: no balances recorded this run: %s", account_ref, exc)
            return BalancesOutcome(account_ref, False, 0, 0, skipped=str(exc))
    page = _newest_page(engine, tenant_id, account_ref)
    if page is None:
        return BalancesOutcome(account_ref, fetched, 0, 0, skipped="no balances landed yet")
    balances, problems = parse_balances(bytes(page.body), page.fetched_at.date())
    for problem in problems:
        log.warning("bank %s: raw payload %d: %s", account_ref, page.id, problem)
    written = store_snapshots(engine, tenant_id, account_ref, page, balances, run_id=run_id)
    log.info("bank %s: %d balances read, %d snapshots written", account_ref, len(balances), written)
    return BalancesOutcome(account_ref, fetched, len(balances), written)


def balances_fetcher(
    engine: Engine,
    tenant_id: str,
    base_url: str,
    secrets: SecretResolver,
    account_ref: str,
    *,
    policy: HttpPolicy | None = None,
) -> Fetch:
    """The bank call for one account's balances, through the tenant's quota guard (secrets are
    resolved only when it runs)."""

    def fetch(on_page: Callable[[Page], None]) -> None:
        with GoCardlessClient(
            base_url,
            secrets.get(GOCARDLESS_SECRET_ID, tenant_id),
            secrets.get(GOCARDLESS_SECRET_KEY, tenant_id),
            policy=policy or HttpPolicy(),
            quota=QuotaGuard(engine, tenant_id),
        ) as client:
            client.fetch_balances(account_ref, on_page)

    return fetch
