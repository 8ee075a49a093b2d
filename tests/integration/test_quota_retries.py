"""Retries of a quota-limited call leave the day's budget for the next run: a GoCardless
transactions answer that keeps coming back cut (a 2xx, so the bank counts it) is retried only
while at most half of the day's calls are used; failures the bank does not count (503) are
retried as before. The quota is the one kept in the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine

from connectors.gocardless import GoCardlessClient
from connectors.pages import Page
from connectors.quota import QuotaGuard, QuotaRetryRefusedError
from connectors.sandbox.gocardless import GoCardlessState, SandboxAccount
from connectors.sandbox.serve import RunningServer
from tests.integration.gocardless_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    TENANT,
    WINDOW,
    FakeClock,
    RecordingSleep,
    bad_state,
    bank_seed,
    clock,
    db,
    fast_policy,
    gc_server,
    payments_state,
    sleep,
)

__all__ = ["bad_state", "bank_seed", "clock", "db", "gc_server", "payments_state", "sleep"]

TRANSACTIONS_PATH = "/api/v2/accounts/*/transactions/"
Seed = tuple[list[SandboxAccount], pd.DataFrame]


def noop(_page: Page) -> None:
    pass


def client(
    url: str, guard: QuotaGuard, sleep: RecordingSleep, clock: FakeClock
) -> GoCardlessClient:
    return GoCardlessClient(
        url, SECRET_ID, SECRET_KEY, policy=fast_policy(sleep), clock=clock, quota=guard
    )


def test_a_cut_answer_is_retried_only_within_the_first_half_of_the_days_calls(
    db: Engine,
    gc_server: RunningServer,
    bad_state: GoCardlessState,
    bank_seed: Seed,
    clock: FakeClock,
    sleep: RecordingSleep,
) -> None:
    account = bank_seed[0][0].account_id
    guard = QuotaGuard(db, TENANT, clock=clock)
    bad_state.faults.truncate(0.4, path=TRANSACTIONS_PATH)
    with (
        client(gc_server.url, guard, sleep, clock) as gc,
        pytest.raises(QuotaRetryRefusedError, match="kept for the next run") as refused,
    ):
        gc.fetch_transactions(account, WINDOW, noop)
    assert refused.value.exit_code == 9 and account in str(refused.value)
    assert bad_state.faults.count(path=TRANSACTIONS_PATH) == 2  # one try and one retry
    assert bad_state.quota_used(account) == 2
    assert guard.usage(account, "transactions").remaining == 2
    # the next run of the day still has its calls, and its own retry budget is smaller
    bad_state.faults.clear()
    with client(gc_server.url, guard, sleep, clock) as gc:
        page = gc.fetch_transactions(account, WINDOW, noop)
    assert page.status == 200 and bad_state.quota_used(account) == 3


def test_a_single_cut_answer_is_retried_and_recovers(
    db: Engine,
    gc_server: RunningServer,
    bad_state: GoCardlessState,
    bank_seed: Seed,
    clock: FakeClock,
    sleep: RecordingSleep,
) -> None:
    account = bank_seed[0][0].account_id
    guard = QuotaGuard(db, TENANT, clock=clock)
    bad_state.faults.truncate(0.4, path=TRANSACTIONS_PATH, count=1)
    with client(gc_server.url, guard, sleep, clock) as gc:
        gc.fetch_transactions(account, WINDOW, noop)
    assert bad_state.quota_used(account) == 2 == guard.usage(account, "transactions").calls


def test_answers_the_bank_does_not_count_are_retried_as_before(
    db: Engine,
    gc_server: RunningServer,
    bad_state: GoCardlessState,
    bank_seed: Seed,
    clock: FakeClock,
    sleep: RecordingSleep,
) -> None:
    account = bank_seed[0][0].account_id
    guard = QuotaGuard(db, TENANT, clock=clock)
    with client(gc_server.url, guard, sleep, clock) as gc:
        gc.fetch_transactions(account, WINDOW, noop)
        gc.fetch_transactions(account, WINDOW, noop)  # half the day's calls are used
        bad_state.faults.status(503, path=TRANSACTIONS_PATH, count=3)
        gc.fetch_transactions(account, WINDOW, noop)
    assert bad_state.faults.count(path=TRANSACTIONS_PATH) == 6
    assert bad_state.quota_used(account) == 3 == guard.usage(account, "transactions").calls


def test_a_cut_answer_when_half_is_used_is_not_retried(
    db: Engine,
    gc_server: RunningServer,
    bad_state: GoCardlessState,
    bank_seed: Seed,
    clock: FakeClock,
    sleep: RecordingSleep,
) -> None:
    account = bank_seed[0][0].account_id
    guard = QuotaGuard(db, TENANT, clock=clock)
    with client(gc_server.url, guard, sleep, clock) as gc:
        gc.fetch_transactions(account, WINDOW, noop)
        gc.fetch_transactions(account, WINDOW, noop)
        bad_state.faults.truncate(0.4, path=TRANSACTIONS_PATH, count=1)
        with pytest.raises(QuotaRetryRefusedError):
            gc.fetch_transactions(account, WINDOW, noop)
    assert bad_state.quota_used(account) == 3
    assert guard.usage(account, "transactions").remaining == 1
