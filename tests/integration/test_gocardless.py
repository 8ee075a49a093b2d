"""GoCardless Bank Account Data over real HTTP against the sandbox, landing into the real DB:
window reads, reference quirks, the fault matrix, the DB-backed daily quota, replay without calls,
idempotent re-runs, pending -> booked, quarantine with conservation, tokens and consent."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from connectors.gocardless import (
    ConsentExpiredError,
    GoCardlessClient,
    parse_transactions,
    reference_of,
)
from connectors.http import (
    CallInfo,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from connectors.pages import Page
from connectors.quota import QuotaExhaustedError, QuotaGuard
from connectors.sandbox.app import RouteGroup, check_disjoint
from connectors.sandbox.faults import FaultPlan, FaultRule
from connectors.sandbox.gocardless import (
    MALFORMATIONS,
    GoCardlessState,
    ReferenceStyle,
    SandboxAccount,
)
from connectors.sandbox.gocardless import routes as bad_routes
from connectors.sandbox.gocardless_payments import GoCardlessPaymentsState
from connectors.sandbox.gocardless_payments import routes as payments_routes
from connectors.sandbox.serve import RunningServer
from connectors.sandbox.vault import VaultState
from connectors.sandbox.vault import routes as vault_routes
from connectors.sandbox.whmcs import WhmcsState
from connectors.sandbox.whmcs import routes as whmcs_routes
from recon.db.models import QuarantinedRow, Transaction
from recon.db.tenancy import tenant_session
from recon.redaction import MASK, redact
from tasks.land import FetchScope, LandedPages, land_or_replay
from tasks.load import LoadResult, load_batch
from tasks.normalise_gocardless import bank_batch
from tests.integration.gocardless_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    TENANT,
    WINDOW,
    FakeClock,
    RecordingSleep,
    bad_client,
    bad_state,
    bank_seed,
    clock,
    db,
    expected_bank_rows,
    fast_policy,
    gc_server,
    payments_state,
    sleep,
    sums_by_currency,
)
from tests.integration.whmcs_fixtures import make_seed, wait_for_requests

__all__ = [
    "bad_client",
    "bad_state",
    "bank_seed",
    "clock",
    "db",
    "gc_server",
    "payments_state",
    "sleep",
]

TRANSACTIONS_PATH = "/api/v2/accounts/*/transactions/"
Seed = tuple[list[SandboxAccount], pd.DataFrame]


def land(
    engine: Engine,
    client: GoCardlessClient,
    account: str,
    *,
    refetch: bool = False,
    window: tuple[dt.date, dt.date] = WINDOW,
) -> LandedPages:
    """Land (or replay) one account's window, as the extract task does."""
    scope = FetchScope("gocardless", account, "transactions", *window)

    def fetch(on_page: Callable[[Page], None]) -> None:
        client.fetch_transactions(account, window, on_page)

    return land_or_replay(engine, TENANT, scope, fetch, refetch=refetch)


def land_and_load(
    engine: Engine, client: GoCardlessClient, account: str, *, refetch: bool = False
) -> LoadResult:
    landed = land(engine, client, account, refetch=refetch)
    return load_batch(engine, TENANT, bank_batch(landed.pages, account))


def bank_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with tenant_session(engine, TENANT) as session:
        rows = session.execute(
            select(
                Transaction.account_ref,
                Transaction.booked_on,
                Transaction.amount_minor,
                Transaction.currency,
                Transaction.counterparty,
                Transaction.status,
            ).where(Transaction.source == "bank")
        ).all()
    return sorted(tuple(r) for r in rows)


def dump(engine: Engine) -> list[tuple[Any, ...]]:
    with tenant_session(engine, TENANT) as session:
        return [
            tuple(r)
            for r in session.execute(
                text("SELECT * FROM transactions ORDER BY account_ref, source_id")
            ).all()
        ]


def noop(_page: Page) -> None:
    return None


def requests_to(state: GoCardlessState, label: str) -> int:
    return state.faults.count(label=label)


# -- reading a window ------------------------------------------------------------------------------


def test_a_window_lands_exactly_the_seeded_lines(
    db: Engine, bad_client: GoCardlessClient, bank_seed: Seed
) -> None:
    accounts, frame = bank_seed
    results = [land_and_load(db, bad_client, a.account_id) for a in accounts]
    assert sum(r.inserted for r in results) == len(frame)
    assert sum(r.quarantined for r in results) == 0
    expected = expected_bank_rows(frame)
    loaded = bank_rows(db)
    assert loaded == expected
    assert sums_by_currency(loaded) == sums_by_currency(expected)
    with tenant_session(db, TENANT) as session:
        lineage = session.scalars(select(Transaction.raw_payload_id)).all()
    assert len(lineage) == len(frame) and None not in lineage


def test_every_reference_style_yields_the_reference(
    bad_client: GoCardlessClient, bank_seed: Seed
) -> None:
    accounts, frame = bank_seed
    verbatim = {
        ReferenceStyle.UNSTRUCTURED,
        ReferenceStyle.UNSTRUCTURED_ARRAY,
        ReferenceStyle.STRUCTURED,
        ReferenceStyle.STRUCTURED_OBJECT,
        ReferenceStyle.STRUCTURED_ARRAY,
        ReferenceStyle.ADDITIONAL_INFORMATION,
        ReferenceStyle.ENTRY_REFERENCE,
        ReferenceStyle.END_TO_END_ID,
    }
    checked: set[ReferenceStyle] = set()
    for account in accounts:
        page = bad_client.fetch_transactions(account.account_id, WINDOW, noop)
        records, malformed = parse_transactions(page.body, account.account_id)
        assert malformed == []
        by_line = {(r.booked_on, r.amount_minor, r.counterparty): r for r in records}
        for row in frame[frame["account_id"] == account.account_id].to_dict("records"):
            amount = int(row["amount"].replace(".", ""))
            record = by_line[(row["booked_on"], amount, row["counterparty"])]
            if not row["reference"]:
                if account.reference_style is not ReferenceStyle.ABN_AMRO:
                    assert record.reference is None
                continue
            assert record.reference is not None and row["reference"] in record.reference
            if account.reference_style in verbatim:
                assert record.reference == row["reference"]
            checked.add(account.reference_style)
    assert checked == set(ReferenceStyle)


def test_the_reference_is_gathered_from_every_field_banks_use() -> None:
    record = {
        "remittanceInformationUnstructured": "INV-1 part",
        "remittanceInformationUnstructuredArray": ["INV-2", "more"],
        "remittanceInformationStructured": {
            "reference": "RF18539007547034",
            "referenceType": "SCOR",
        },
        "remittanceInformationStructuredArray": ["INV-3", {"reference": "INV-4"}],
        "additionalInformation": "INV-1 part",
        "endToEndId": "NOTPROVIDED",
        "entryReference": "E2E-77",
    }
    assert reference_of(record) == (
        "INV-1 part | INV-2 more | RF18539007547034 | INV-3 | INV-4 | E2E-77"
    )
    assert reference_of({"endToEndId": "INV-9"}) == "INV-9"
    assert reference_of({}) is None


# -- the fault matrix ------------------------------------------------------------------------------

RECOVERS: dict[str, tuple[Callable[[FaultPlan], FaultRule], int, int]] = {
    # fault -> (rule, attempts sent, successful answers the bank counted)
    "429 Retry-After": (lambda p: p.rate_limit(1, path=TRANSACTIONS_PATH, count=2), 3, 1),
    "500": (lambda p: p.status(500, path=TRANSACTIONS_PATH, count=2), 3, 1),
    "502": (lambda p: p.status(502, path=TRANSACTIONS_PATH, count=1), 2, 1),
    "503": (lambda p: p.status(503, path=TRANSACTIONS_PATH, count=3), 4, 1),
    "slow": (lambda p: p.slow(0.2, path=TRANSACTIONS_PATH, count=1), 1, 1),
    "timeout": (lambda p: p.timeout(0.8, path=TRANSACTIONS_PATH, count=1), 2, 2),
    "truncated JSON": (lambda p: p.truncate(0.4, path=TRANSACTIONS_PATH, count=1), 2, 2),
    "connection reset": (lambda p: p.reset(path=TRANSACTIONS_PATH, count=1), 2, 2),
}


@pytest.mark.parametrize("fault", list(RECOVERS))
def test_transient_faults_recover_within_the_retry_budget(
    fault: str,
    bad_client: GoCardlessClient,
    bad_state: GoCardlessState,
    bank_seed: Seed,
    sleep: RecordingSleep,
) -> None:
    accounts, frame = bank_seed
    account = accounts[1].account_id
    rule, attempts, counted = RECOVERS[fault]
    rule(bad_state.faults)
    page = bad_client.fetch_transactions(account, WINDOW, noop)
    records, malformed = parse_transactions(page.body, account)
    assert malformed == [] and len(records) == int((frame["account_id"] == account).sum())
    assert wait_for_requests(bad_state.faults, attempts, label="transactions") == attempts
    assert requests_to(bad_state, "transactions") == attempts <= 4
    if fault == "429 Retry-After":
        assert sleep.delays == [1.0, 1.0]
    assert bad_state.quota_used(account) == counted


@pytest.mark.parametrize("status", [400, 403, 404])
def test_a_non_retryable_error_is_tried_once(
    status: int, bad_client: GoCardlessClient, bad_state: GoCardlessState, bank_seed: Seed
) -> None:
    bad_state.faults.status(
        status,
        body={
            "summary": "Refused",
            "detail": f"sandbox refused with {status}",
            "status_code": status,
        },
        path=TRANSACTIONS_PATH,
    )
    with pytest.raises(ProviderRejectedError, match=f"sandbox refused with {status}") as caught:
        bad_client.fetch_transactions(bank_seed[0][0].account_id, WINDOW, noop)
    assert caught.value.status == status and caught.value.attempts == 1
    assert requests_to(bad_state, "transactions") == 1


def test_persistent_faults_end_in_a_clear_typed_error(
    bad_client: GoCardlessClient, bad_state: GoCardlessState, bank_seed: Seed
) -> None:
    account = bank_seed[0][0].account_id
    rule = bad_state.faults.status(503, path=TRANSACTIONS_PATH)
    with pytest.raises(ProviderUnavailableError, match="after 4 attempts") as unavailable:
        bad_client.fetch_transactions(account, WINDOW, noop)
    assert unavailable.value.attempts == 4 and requests_to(bad_state, "transactions") == 4
    bad_state.faults.clear()
    bad_state.faults.clear_log()
    bad_state.faults.rate_limit(3600, path=TRANSACTIONS_PATH)
    with pytest.raises(ProviderRateLimitedError, match="wait 3600 s"):
        bad_client.fetch_transactions(account, WINDOW, noop)
    assert requests_to(bad_state, "transactions") == 1
    assert rule.fired == 4 and bad_state.quota_used(account) == 0


# -- the quota -------------------------------------------------------------------------------------


def test_the_quota_is_never_exceeded_under_a_storm_and_across_a_restart(
    db: Engine,
    gc_server: RunningServer,
    bad_state: GoCardlessState,
    bank_seed: Seed,
    clock: FakeClock,
    sleep: RecordingSleep,
) -> None:
    account = bank_seed[0][1].account_id
    url = gc_server.url
    # another tool already used one of today's calls: the guard learns it from the headers
    with GoCardlessClient(
        url, SECRET_ID, SECRET_KEY, policy=fast_policy(sleep), clock=clock
    ) as other:
        other.fetch_transactions(account, WINDOW, noop)
    plan = bad_state.faults
    plan.status(500, path=TRANSACTIONS_PATH, count=3)
    plan.rate_limit(1, path=TRANSACTIONS_PATH, count=3)
    plan.status(502, path=TRANSACTIONS_PATH, rate=0.5)
    guard = QuotaGuard(db, TENANT, clock=clock)
    outcomes: list[str] = []
    with GoCardlessClient(
        url, SECRET_ID, SECRET_KEY, policy=fast_policy(sleep), clock=clock, quota=guard
    ) as client:
        for _ in range(8):
            try:
                client.fetch_transactions(account, WINDOW, noop)
                outcomes.append("ok")
            except QuotaExhaustedError as exc:
                outcomes.append("exhausted")
                assert account in str(exc) and "resets at 2026-11-06 00:00 UTC" in str(exc)
            except ProviderError:
                outcomes.append("failed")
    assert "exhausted" in outcomes and outcomes[-1] == "exhausted"
    assert bad_state.quota_used(account) == 4  # the bank's own count: never above its limit
    assert guard.usage(account, "transactions").calls == 4
    sent = requests_to(bad_state, "transactions")
    assert plan.count(label="transactions", status=429) == 3  # only the injected ones
    # a restart: a new guard and a new client on the same database refuse without any request
    requests_before = len(plan.requests())
    with GoCardlessClient(
        url,
        SECRET_ID,
        SECRET_KEY,
        policy=fast_policy(sleep),
        clock=clock,
        quota=QuotaGuard(db, TENANT, clock=clock),
    ) as restarted:
        with pytest.raises(QuotaExhaustedError):
            restarted.fetch_transactions(account, WINDOW, noop)
        assert len(plan.requests()) == requests_before  # not even a token request
        assert requests_to(bad_state, "transactions") == sent
        clock.advance(days=1)
        plan.clear()
        restarted.fetch_transactions(account, WINDOW, noop)
    assert bad_state.quota_used(account) == 1


def test_concurrent_runs_cannot_share_the_last_call(db: Engine, clock: FakeClock) -> None:
    account = "3f0e1f3c-2f8f-4b36-9f1e-8d3f8d1b2a10"
    info = CallInfo(
        "GoCardless",
        "transactions",
        "GET",
        f"http://bank.test/api/v2/accounts/{account}/transactions/?date_from=2026-10-01",
        1,
    )
    guards = [QuotaGuard(db, TENANT, clock=clock) for _ in range(3)]
    barrier = threading.Barrier(12)
    granted: list[int] = []
    refused: list[int] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            guards[n % 3].before_request(info)
            granted.append(n)
        except QuotaExhaustedError:
            refused.append(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert (len(granted), len(refused)) == (4, 8)
    assert guards[0].usage(account, "transactions").calls == 4
    # a failed answer gives its call back; a 2xx keeps it
    balances = CallInfo(
        "GoCardless", "balances", "GET", info.url.replace("transactions", "balances"), 1
    )
    guards[0].before_request(balances)
    guards[0].after_response(balances, 500)
    assert guards[0].usage(account, "balances").calls == 0
    # the provider says its window resets 36 h from now: tomorrow is still refused until then
    guards[1].learn(
        account,
        "transactions",
        {
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT": "4",
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING": "0",
            "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET": str(36 * 3600),
        },
    )
    clock.advance(days=1)
    with pytest.raises(QuotaExhaustedError, match="resets at 2026-11-07 00:00 UTC"):
        guards[2].before_request(info)
    clock.advance(hours=12)
    guards[2].before_request(info)
    assert guards[2].usage(account, "transactions").calls == 1


# -- landing, replay, re-runs ----------------------------------------------------------------------


def test_three_runs_of_one_window_give_identical_tables_and_a_replay_calls_nothing(
    db: Engine,
    gc_server: RunningServer,
    bad_client: GoCardlessClient,
    bad_state: GoCardlessState,
    bank_seed: Seed,
    clock: FakeClock,
    sleep: RecordingSleep,
) -> None:
    accounts = [a.account_id for a in bank_seed[0][:4]]
    snapshots = []
    for account in accounts:  # run 1 fetches and lands
        assert land_and_load(db, bad_client, account).inserted > 0
    snapshots.append(dump(db))
    sent = len(bad_state.faults.requests())
    with GoCardlessClient(  # run 2, a new process: replays the landed pages, zero HTTP calls
        gc_server.url,
        SECRET_ID,
        SECRET_KEY,
        policy=fast_policy(sleep),
        clock=clock,
        quota=QuotaGuard(db, TENANT, clock=clock),
    ) as fresh:
        for account in accounts:
            result = land_and_load(db, fresh, account)
            assert (result.inserted, result.updated) == (0, 0)
        narrower = land(db, fresh, accounts[0], window=(dt.date(2026, 10, 5), dt.date(2026, 10, 9)))
        assert narrower.replayed
    assert len(bad_state.faults.requests()) == sent
    snapshots.append(dump(db))
    for account in accounts:  # run 3 fetches the window again
        result = land_and_load(db, bad_client, account, refetch=True)
        assert (result.inserted, result.updated) == (0, 0)
    snapshots.append(dump(db))
    assert snapshots[0] == snapshots[1] == snapshots[2]
    frame = bank_seed[1]
    assert len(snapshots[0]) == int(frame["account_id"].isin(accounts).sum())
    with tenant_session(db, TENANT) as session:
        duplicates = session.execute(
            text(
                "SELECT source, account_ref, source_id FROM transactions "
                "GROUP BY source, account_ref, source_id HAVING COUNT(*) > 1"
            )
        ).all()
        fetches = session.scalar(text("SELECT COUNT(*) FROM raw_fetches"))
    assert duplicates == [] and fetches == 2 * len(accounts)


def test_pending_lines_that_book_later_are_updated_not_duplicated(
    db: Engine, bad_client: GoCardlessClient, bad_state: GoCardlessState, bank_seed: Seed
) -> None:
    accounts, frame = bank_seed
    # pending ids: same as booked (0), none (1), none and no ids at all (9), changed on booking (11)
    chosen = [accounts[n].account_id for n in (0, 1, 9, 11)]
    for account in chosen:
        land_and_load(db, bad_client, account)
    before = {(r[0], r[1]): r for r in dump_keys(db)}
    pending = frame[frame["account_id"].isin(chosen) & (frame["status"] == "pending")]
    assert sum(1 for r in before.values() if r[2] == "pending") == len(pending) == 8
    for line in pending.to_dict("records"):  # Nationwide books a day later than the value date
        later = line["account_id"] == chosen[-1] and line["booked_on"] < WINDOW[1]
        bad_state.book(line["transaction_id"], line["booked_on"] + dt.timedelta(days=later))
    results = [land_and_load(db, bad_client, account, refetch=True) for account in chosen]
    assert sum(r.updated for r in results) == len(pending)
    assert sum(r.inserted for r in results) == 0
    after = {(r[0], r[1]): r for r in dump_keys(db)}
    assert after.keys() == before.keys()
    assert {r[2] for r in after.values()} == {"booked"}


def dump_keys(engine: Engine) -> list[tuple[str, str, str]]:
    with tenant_session(engine, TENANT) as session:
        rows = session.execute(
            select(Transaction.account_ref, Transaction.source_id, Transaction.status)
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def test_trusted_transaction_ids_only_suit_banks_that_keep_them(
    bad_client: GoCardlessClient, bad_state: GoCardlessState, bank_seed: Seed
) -> None:
    accounts, frame = bank_seed
    keeps, changes = accounts[0].account_id, accounts[11].account_id
    pending = frame[frame["account_id"].isin([keeps, changes]) & (frame["status"] == "pending")]

    def keys(account: str, policy: Any) -> set[str]:
        page = bad_client.fetch_transactions(account, WINDOW, noop)
        return {r.source_id for r in parse_transactions(page.body, account, id_policy=policy)[0]}

    before = {a: (keys(a, "transaction_id"), keys(a, "content")) for a in (keeps, changes)}
    for transaction_id in pending["transaction_id"]:
        bad_state.book(transaction_id)
    after = {a: (keys(a, "transaction_id"), keys(a, "content")) for a in (keeps, changes)}
    assert all(k.startswith("id:") for k in before[keeps][0])
    assert after[keeps] == before[keeps]  # one id from pending to booked: both rules hold
    assert after[changes][1] == before[changes][1]  # the content key survives a new id
    assert after[changes][0] != before[changes][0]  # trusting the ids would duplicate


# -- quarantine and conservation -------------------------------------------------------------------


def test_malformed_records_are_quarantined_with_their_reasons(
    db: Engine, bad_client: GoCardlessClient, bad_state: GoCardlessState, bank_seed: Seed
) -> None:
    account = bank_seed[0][2].account_id
    mutators = iter(MALFORMATIONS.values())
    bad_state.faults.malform(
        lambda record: next(mutators)(record),
        records=("transactions", "booked"),
        limit=3,
        path=TRANSACTIONS_PATH,
        count=1,
    )
    landed = land(db, bad_client, account)
    result = load_batch(db, TENANT, bank_batch(landed.pages, account))
    assert result.quarantined == 3
    with tenant_session(db, TENANT) as session:
        quarantined = session.scalars(select(QuarantinedRow)).all()
        loaded = session.scalars(select(Transaction)).all()
    reasons = sorted(tuple(q.reasons) for q in quarantined)
    day = next(r for r in reasons if r[0].startswith("bookingDate"))
    assert reasons == sorted([("amount missing",), ("currency 'EURO' is not ISO 4217",), day])
    assert day[0].startswith("bookingDate '") and day[0].endswith("/2026' is not ISO")
    assert all(q.raw_payload_id == landed.pages[0].raw_payload_id for q in quarantined)
    raw = json.loads(landed.pages[0].page.body)["transactions"]
    raw_lines = raw["booked"] + raw["pending"]
    assert len(raw_lines) == len(loaded) + len(quarantined)  # nothing dropped
    by_currency: dict[str, int] = {}
    for line in raw_lines:
        amount = line["transactionAmount"].get("amount")
        if amount is not None and line["transactionAmount"]["currency"] == "EUR":
            by_currency["EUR"] = by_currency.get("EUR", 0) + int(amount.replace(".", ""))
    kept = sum(t.amount_minor for t in loaded) + sum(
        q.amount_minor or 0 for q in quarantined if q.currency == "EUR"
    )
    assert kept == by_currency["EUR"]


# -- tokens and consent ----------------------------------------------------------------------------


def test_tokens_are_refreshed_before_expiry_and_renewed_when_the_refresh_expires(
    bad_client: GoCardlessClient, bad_state: GoCardlessState, bank_seed: Seed, clock: FakeClock
) -> None:
    account = bank_seed[0][0].account_id
    bad_client.get_account(account)
    assert bad_state.token_counts == {"new": 1, "refresh": 0}
    clock.advance(hours=23)
    bad_client.get_account(account)
    assert bad_state.token_counts == {"new": 1, "refresh": 0}
    clock.advance(minutes=59, seconds=30)  # inside the minute before the access token expires
    bad_client.get_account(account)
    assert bad_state.token_counts == {"new": 1, "refresh": 1}
    clock.advance(days=30)
    bad_client.get_account(account)
    assert bad_state.token_counts == {"new": 2, "refresh": 1}
    bad_state.revoke_tokens()  # the API forgets every token: one silent re-authentication
    bad_client.get_account(account)
    assert bad_state.token_counts == {"new": 3, "refresh": 1}
    assert bad_state.faults.count(label="account", status=401) == 1
    token = bad_client.access_token()
    assert redact(f"{SECRET_ID} {SECRET_KEY} {token}") == f"{MASK} {MASK} {MASK}"


def test_bad_credentials_fail_once_with_the_providers_message(
    gc_server: RunningServer, bad_state: GoCardlessState, bank_seed: Seed, sleep: RecordingSleep
) -> None:
    with (
        GoCardlessClient(
            gc_server.url, SECRET_ID, "wrong-key", policy=fast_policy(sleep)
        ) as client,
        pytest.raises(
            ProviderRejectedError, match="No active account found with the given credentials"
        ) as caught,
    ):
        client.fetch_transactions(bank_seed[0][0].account_id, WINDOW, noop)
    assert caught.value.status == 401
    assert bad_state.faults.count(label="token/new") == 1
    assert bad_state.faults.count(label="transactions") == 0
    assert "wrong-key" not in str(caught.value)


@pytest.mark.parametrize("ended", ["expired agreement", "revoked access"])
def test_an_ended_consent_is_a_typed_error_tried_once(
    ended: str, bad_client: GoCardlessClient, bad_state: GoCardlessState, bank_seed: Seed
) -> None:
    account = bank_seed[0][3].account_id
    if ended == "expired agreement":
        bad_state.expire_consent(account)
    else:
        bad_state.revoke_access(account)
    with pytest.raises(ConsentExpiredError) as caught:
        bad_client.fetch_transactions(account, WINDOW, noop)
    message = str(caught.value)
    assert account in message and "reconnect the account" in message
    assert ("EUA was valid for 90 days" if ended == "expired agreement" else "revoked") in message
    assert caught.value.status == 401 and caught.value.attempts == 1
    assert requests_to(bad_state, "transactions") == 1
    assert bad_state.token_counts == {"new": 1, "refresh": 0}
    assert bad_client.get_account(account).status == "EXPIRED"


# -- the bank wizard -------------------------------------------------------------------------------


def test_the_bank_wizard_links_accounts_through_the_consent_page(
    bad_client: GoCardlessClient, bank_seed: Seed
) -> None:
    dutch = [a for a in bank_seed[0] if a.iban.startswith("NL")]
    institutions = {i.id: i for i in bad_client.list_institutions("nl")}
    assert set(institutions) == {"ING_INGBNL2A", "ABNAMRO_ABNANL2A"}
    agreement = bad_client.create_agreement("ING_INGBNL2A", access_valid_for_days=180)
    requisition = bad_client.create_requisition(
        "https://recon.example/bank/done",
        "ING_INGBNL2A",
        reference="acme-ing-1",
        agreement=agreement.id,
    )
    assert requisition.status == "CR" and requisition.accounts == ()
    with httpx.Client() as browser:
        page = browser.get(requisition.link)
        assert page.status_code == 200 and "Allow access" in page.text
        allowed = browser.get(requisition.link + "/allow")
    assert allowed.status_code == 302
    assert allowed.headers["location"] == "https://recon.example/bank/done?ref=acme-ing-1"
    linked = bad_client.get_requisition(requisition.id)
    ing = [a.account_id for a in dutch if a.institution_id == "ING_INGBNL2A"]
    assert linked.status == "LN" and list(linked.accounts) == ing
    accounts = bad_client.list_accounts(requisition.id)
    assert [(a.id, a.iban, a.status) for a in accounts] == [
        (a.account_id, a.iban, "READY") for a in dutch if a.account_id in ing
    ]
    for call in (
        lambda: bad_client.list_institutions("US"),
        lambda: bad_client.create_agreement("ING_INGBNL2A", access_valid_for_days=365),
    ):
        with pytest.raises(ProviderRejectedError) as caught:
            call()
        assert caught.value.status == 400 and caught.value.attempts == 1


def test_the_gocardless_routes_share_the_sandbox_without_collisions(
    bad_state: GoCardlessState, payments_state: GoCardlessPaymentsState
) -> None:
    invoices, recorded = make_seed(20)
    groups = [
        RouteGroup("vault", vault_routes(VaultState())),
        RouteGroup(
            "whmcs", whmcs_routes(WhmcsState(invoices, recorded, identifier="i", secret="s"))
        ),
        RouteGroup("gocardless", bad_routes(bad_state)),
        RouteGroup("gocardless_payments", payments_routes(payments_state)),
    ]
    check_disjoint(groups)
    check_disjoint([*groups[:3], RouteGroup("root", payments_routes(payments_state, prefix=""))])
