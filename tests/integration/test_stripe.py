"""The Stripe connector over real HTTP against the sandbox, landed and loaded into the real DB."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from connectors.http import (
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from connectors.pages import Page
from connectors.sandbox.app import RouteGroup, check_disjoint, compose
from connectors.sandbox.faults import FaultPlan
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.stripe import (
    LOCK_TIMEOUT_BODY,
    StripeState,
    bad_currency,
    drop_amount,
    mask_key,
    stripe_amount,
)
from connectors.sandbox.stripe import routes as stripe_routes
from connectors.sandbox.vault import VaultState
from connectors.sandbox.vault import routes as vault_routes
from connectors.stripe import (
    BalanceTransaction,
    Malformed,
    StripeClient,
    balance_transaction,
    created_range,
    parse_list_page,
)
from recon.db.models import QuarantinedRow, RawPayload
from recon.db.tenancy import tenant_session
from tasks.land import StoredPage
from tasks.normalise_stripe import normalise, sync_window, window_scope
from tests.integration.stripe_fixtures import (
    ACCOUNT,
    API_KEY,
    TENANT,
    WINDOW,
    WRONG_KEY,
    RecordingSleep,
    World,
    engine,
    expected,
    make_client,
    make_world,
    sleep,
    sqlite_tenant,
    stripe_client,
    stripe_server,
    stripe_state,
    tls_files,
    world,
)

__all__ = [  # fixtures, imported so that pytest finds them here
    "engine",
    "sleep",
    "sqlite_tenant",
    "stripe_client",
    "stripe_server",
    "stripe_state",
    "tls_files",
    "world",
]

BT_PATH = "/v1/balance_transactions"
CREATED = dict(zip(("gte", "lt"), created_range(*WINDOW), strict=True))
TABLES = ("transactions", "payouts", "payout_lines", "quarantined_rows")


def _ids(pages: list[Page]) -> list[str]:
    return [r["id"] for p in pages for r in parse_list_page(p.body).records]


def _dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with tenant_session(engine, TENANT) as session:
        return {
            table: [tuple(r) for r in session.execute(text(f"SELECT * FROM {table} ORDER BY id"))]
            for table in TABLES
        }


def _wait_for(faults: FaultPlan, count: int, timeout: float = 3.0) -> int:
    """Balance-transaction requests logged, once `count` are (a timed-out request is logged
    only when the server gets round to answering it)."""
    deadline = time.monotonic() + timeout
    while faults.count(path=BT_PATH) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return faults.count(path=BT_PATH)


def _frame(engine: Engine, query: str) -> pd.DataFrame:
    with tenant_session(engine, TENANT) as session:
        result = session.execute(text(query))
        return pd.DataFrame(result.all(), columns=list(result.keys()))


# -- a window, end to end ---------------------------------------------------------------------------


def test_a_window_loads_exactly_the_seeded_world(
    engine: Engine, world: World, stripe_client: StripeClient, stripe_state: StripeState
) -> None:
    run = sync_window(engine, TENANT, stripe_client, ACCOUNT, *WINDOW)
    want = expected(world)

    got = _frame(
        engine,
        "SELECT source_id, kind, status, booked_on, value_on, amount_minor, fee_minor, currency, "
        "counterparty, reference, payout_id, charge_id, payment_intent FROM transactions "
        "ORDER BY source_id",
    )
    for column in ("booked_on", "value_on"):
        got[column] = pd.to_datetime(got[column]).dt.date
    pd.testing.assert_frame_equal(got, want["transactions"], check_dtype=False)
    per_currency = got.groupby("currency")[["amount_minor", "fee_minor"]].agg(["count", "sum"])
    assert per_currency.equals(
        want["transactions"]
        .groupby("currency")[["amount_minor", "fee_minor"]]
        .agg(["count", "sum"])
    )

    payouts = _frame(
        engine,
        "SELECT payout_id, arrival_on, amount_minor, currency, status FROM payouts "
        "ORDER BY payout_id",
    )
    payouts["arrival_on"] = pd.to_datetime(payouts["arrival_on"]).dt.date
    pd.testing.assert_frame_equal(payouts, want["payouts"], check_dtype=False)
    lines = _frame(
        engine,
        "SELECT payout_id, transaction_id FROM payout_lines ORDER BY payout_id, transaction_id",
    )
    pd.testing.assert_frame_equal(lines, want["payout_lines"])

    assert run.batches.balance_transactions == (
        len(want["transactions"])
        + run.batches.payout_balance_transactions
        + run.batches.linked_elsewhere
    )
    assert run.batches.payout_balance_transactions == len(want["payouts"])
    assert stripe_state.faults.count(path=BT_PATH) > 10  # pages of 7: many requests

    # October's payouts pay out late September's charges too: once September is loaded, every
    # payout's lines add up to it, but for the one seeded to arrive short.
    sync_window(engine, TENANT, stripe_client, ACCOUNT, dt.date(2026, 9, 20), dt.date(2026, 9, 30))
    nets = _frame(
        engine,
        "SELECT l.payout_id, SUM(t.amount_minor - t.fee_minor) AS net, MIN(p.amount_minor) AS paid "
        "FROM payout_lines l JOIN transactions t ON t.source_id = l.transaction_id "
        "JOIN payouts p ON p.payout_id = l.payout_id GROUP BY l.payout_id ORDER BY l.payout_id",
    )
    october = nets[nets["payout_id"].isin(want["payouts"]["payout_id"])]
    assert len(october) == len(want["payouts"])
    seeded_short = world.payouts[world.payouts["amount_minor"].notna()]["payout_id"]
    short = october[october["net"] != october["paid"]]
    assert list(short["payout_id"]) == list(seeded_short)
    assert int(short["net"].iloc[0] - short["paid"].iloc[0]) == 100


def test_replay_makes_no_call_and_three_runs_give_identical_tables(
    engine: Engine, stripe_client: StripeClient, stripe_state: StripeState
) -> None:
    first = sync_window(engine, TENANT, stripe_client, ACCOUNT, *WINDOW)
    assert not first.landed.replayed and first.results[0].inserted > 0
    snapshot = _dump(engine)
    stripe_state.faults.clear_log()

    replay = sync_window(engine, TENANT, stripe_client, ACCOUNT, *WINDOW)
    assert replay.landed.replayed and replay.landed.fetch_id == first.landed.fetch_id
    assert stripe_state.faults.count() == 0  # zero HTTP calls
    assert _dump(engine) == snapshot

    refetch = sync_window(engine, TENANT, stripe_client, ACCOUNT, *WINDOW, refetch=True)
    assert not refetch.landed.replayed and stripe_state.faults.count() > 0
    assert _dump(engine) == snapshot
    assert [(r.inserted, r.updated) for r in refetch.results] == [(0, 0)] * 3


def test_raw_bodies_are_landed_byte_for_byte(
    sqlite_tenant: Engine, stripe_client: StripeClient, stripe_server: RunningServer
) -> None:
    run = sync_window(sqlite_tenant, TENANT, stripe_client, ACCOUNT, *WINDOW)
    with tenant_session(sqlite_tenant, TENANT) as session:
        stored = session.scalars(select(RawPayload).order_by(RawPayload.page)).all()
        assert len(stored) == len(run.landed.pages) > 10
        raw = {(r.endpoint, r.request_key): bytes(r.body) for r in stored}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=stripe_server.url, headers=headers) as http:
        for (endpoint, request_key), body in list(raw.items())[:6]:
            path = endpoint.replace("{id}", request_key.removeprefix("id="))
            query = "" if "{id}" in endpoint else request_key
            direct = http.get(f"{path}?{query}" if query else path)
            assert direct.content == body  # verbatim: indentation and UTF-8 names included
    assert any("Zoë Müller".encode() in body for body in raw.values())


# -- listing --------------------------------------------------------------------------------------


def test_created_filters_are_exact_at_the_window_edges(sleep: RecordingSleep) -> None:
    start, end = (dt.datetime(2026, 10, d, tzinfo=dt.UTC) for d in (1, 31))
    moments = {
        "ch_before": start - dt.timedelta(seconds=1),
        "ch_first": start,
        "ch_last": end + dt.timedelta(hours=23, minutes=59, seconds=59),
        "ch_after": end + dt.timedelta(days=1),
    }
    charges = pd.DataFrame(
        [
            {
                "charge_id": cid,
                "created": when,
                "amount_minor": 1000,
                "currency": "EUR",
                "fee_minor": 30,
                "description": "Invoice #1",
                "customer_name": "Ada",
            }
            for cid, when in moments.items()
        ]
    )
    state = StripeState(charges, api_key=API_KEY)
    with (
        run_in_thread(compose([RouteGroup("stripe", stripe_routes(state))])) as server,
        make_client(server, sleep, page_size=1) as client,
    ):
        listed = client.list_charges(created=CREATED)
        assert _ids(listed) == ["ch_last", "ch_first"]  # newest first, both edges in
        assert len(listed) == 2
        bts = client.list_balance_transactions(created=CREATED)
        records = [r for p in bts for r in parse_list_page(p.body).records]
        assert [r["source"] for r in records] == ["ch_last", "ch_first"]
        # the sandbox's clock is its newest moment: ch_last's funds are not available yet
        assert [r["status"] for r in records] == ["pending", "available"]
        batches = normalise([StoredPage(1, p) for p in bts + listed], ACCOUNT)
        assert list(batches.transactions.rows["status"]) == ["pending", "booked"]


def test_payout_filter_lists_exactly_the_payouts_balance_transactions(
    stripe_client: StripeClient, stripe_state: StripeState
) -> None:
    payout = "po_usd1012"
    pages = stripe_client.list_balance_transactions(payout=payout)
    records = [r for p in pages for r in parse_list_page(p.body).records]
    assert [r["id"] for r in records] == [b["id"] for b in stripe_state.paid_out_in(payout)]
    assert len(pages) == len(records) // 7 + 1
    assert all("payout=po_usd1012" in p.request_key for p in pages)
    assert sum(r["net"] for r in records) == 0  # the payout's own transaction takes it all out
    own = [r for r in records if r["type"] == "payout"]
    assert [r["source"] for r in own] == [payout]


def test_sdk_paging_works_both_ways_on_the_sandbox(
    stripe_server: RunningServer, stripe_state: StripeState
) -> None:
    import stripe

    sdk = stripe.StripeClient(
        API_KEY, base_addresses={"api": stripe_server.url}, max_network_retries=0
    )
    everything = [o["id"] for o in stripe_state.objects("balance_transactions")]
    forward = sdk.v1.balance_transactions.list({"limit": 9}).auto_paging_iter()
    assert [o.id for o in forward] == everything
    backward = sdk.v1.balance_transactions.list(
        {"limit": 9, "ending_before": everything[-1]}
    ).auto_paging_iter()
    assert [o.id for o in backward] == list(reversed(everything[:-1]))


# -- faults ----------------------------------------------------------------------------------------

RECOVERABLE: dict[str, Callable[[FaultPlan], Any]] = {
    "429 with Retry-After": lambda f: f.rate_limit(retry_after=1, path=BT_PATH, count=2),
    "429 lock_timeout": lambda f: f.status(429, body=LOCK_TIMEOUT_BODY, path=BT_PATH, count=1),
    "500": lambda f: f.status(500, path=BT_PATH, count=2),
    "502": lambda f: f.status(502, path=BT_PATH, count=1),
    "503": lambda f: f.status(503, path=BT_PATH, count=3),
    "slow": lambda f: f.slow(0.2, path=BT_PATH, count=1),
    "read timeout": lambda f: f.timeout(0.8, path=BT_PATH, count=1),
    "truncated JSON": lambda f: f.truncate(0.5, path=BT_PATH, count=2),
    "reset mid-body": lambda f: f.reset(path=BT_PATH, count=1),
    "fault on a later page": lambda f: f.status(500, path=BT_PATH, skip=2, count=1),
}


@pytest.mark.parametrize("fault", list(RECOVERABLE), ids=list(RECOVERABLE))
def test_transient_faults_recover_within_the_policy(
    fault: str, stripe_server: RunningServer, stripe_state: StripeState, sleep: RecordingSleep
) -> None:
    with make_client(stripe_server, sleep, read_timeout=0.5) as client:
        baseline = client.list_balance_transactions(created=CREATED)
        stripe_state.faults.clear_log()
        rule = RECOVERABLE[fault](stripe_state.faults)
        pages = client.list_balance_transactions(created=CREATED)
    assert [p.body for p in pages] == [b.body for b in baseline]
    assert rule.fired == rule.count
    extra = 0 if fault == "slow" else rule.fired  # a slow answer is still the one answer
    assert _wait_for(stripe_state.faults, len(baseline) + extra) == len(baseline) + extra
    if fault == "429 with Retry-After":
        assert sleep.delays == [1.0, 1.0]  # the provider's wait, not the backoff


PERSISTENT: dict[str, tuple[Callable[[FaultPlan], Any], type[ProviderError], int]] = {
    "503 forever": (lambda f: f.status(503, path=BT_PATH), ProviderUnavailableError, 4),
    "429 forever": (
        lambda f: f.rate_limit(retry_after=1, path=BT_PATH),
        ProviderRateLimitedError,
        4,
    ),
    "Retry-After beyond the budget": (
        lambda f: f.rate_limit(retry_after=3600, path=BT_PATH),
        ProviderRateLimitedError,
        1,
    ),
    "truncated forever": (lambda f: f.truncate(0.3, path=BT_PATH), ProviderResponseError, 4),
    "timeouts forever": (lambda f: f.timeout(0.8, path=BT_PATH), ProviderUnavailableError, 4),
}


@pytest.mark.parametrize("fault", list(PERSISTENT), ids=list(PERSISTENT))
def test_persistent_faults_end_in_a_typed_error_within_the_attempts(
    fault: str, stripe_server: RunningServer, stripe_state: StripeState, sleep: RecordingSleep
) -> None:
    arrange, error, attempts = PERSISTENT[fault]
    arrange(stripe_state.faults)
    with (
        make_client(stripe_server, sleep, read_timeout=0.5) as client,
        pytest.raises(error) as caught,
    ):
        client.list_balance_transactions(created=CREATED)
    assert caught.value.attempts == attempts <= client.policy.max_attempts
    assert _wait_for(stripe_state.faults, attempts) == attempts
    assert "Stripe" in str(caught.value) and BT_PATH in str(caught.value)


def test_stripe_should_retry_is_obeyed_both_ways(
    stripe_server: RunningServer, stripe_state: StripeState, sleep: RecordingSleep
) -> None:
    stripe_state.should_retry.update({500: "false", 400: "true"})
    stripe_state.faults.status(500, path=BT_PATH, count=1)
    with (
        make_client(stripe_server, sleep) as client,
        pytest.raises(ProviderUnavailableError) as caught,
    ):
        client.list_balance_transactions(created=CREATED)
    assert caught.value.attempts == 1 and stripe_state.faults.count(path=BT_PATH) == 1
    stripe_state.faults.status(400, path="/v1/charges", count=2)  # told to retry: it does
    with make_client(stripe_server, sleep) as client:
        assert _ids(client.list_charges(created=CREATED))
    assert stripe_state.faults.count(path="/v1/charges", status=400) == 2


def test_the_sandbox_answers_errors_in_stripes_shape(
    stripe_server: RunningServer, stripe_state: StripeState
) -> None:
    faults = stripe_state.faults
    faults.rate_limit(retry_after=2, path="/v1/charges", count=1)
    faults.status(429, body=LOCK_TIMEOUT_BODY, path="/v1/charges", count=1)
    faults.status(503, path="/v1/charges", count=1)
    with httpx.Client(base_url=stripe_server.url) as http:
        auth = {"Authorization": f"Bearer {API_KEY}"}
        limited, locked, down, ok = (http.get("/v1/charges", headers=auth) for _ in range(4))
        wrong = http.get("/v1/charges", headers={"Authorization": f"Bearer {WRONG_KEY}"})
        missing = http.get("/v1/charges/ch_missing", headers=auth)
        unknown = http.get("/v1/charges?colour=red", headers=auth)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "2"
    assert limited.json()["error"]["code"] == "rate_limit"
    assert "stripe-should-retry" not in limited.headers  # the SDK does not retry a plain 429
    assert locked.headers["stripe-should-retry"] == "true"
    assert down.json() == {"error": {"message": "An unknown error occurred", "type": "api_error"}}
    assert ok.json()["object"] == "list" and ok.json()["url"] == "/v1/charges"
    assert all(r.headers["request-id"].startswith("req_") for r in (limited, down, ok, wrong))
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": {
            "message": f"Invalid API Key provided: sk_test_****{WRONG_KEY[-4:]}",
            "type": "invalid_request_error",
        }
    }
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"] == "Received unknown parameter: colour"


def test_tls_is_always_verified(tls_files: tuple[str, str], sleep: RecordingSleep) -> None:
    cert, key = tls_files
    state = make_world().state()
    app = compose([RouteGroup("stripe", stripe_routes(state))])
    with (
        run_in_thread(app, ssl_certfile=cert, ssl_keyfile=key) as server,
        make_client(server, sleep) as client,
        pytest.raises(ProviderUnavailableError) as caught,
    ):
        client.list_charges(created=CREATED)
    assert caught.value.attempts == 1
    assert "TLS certificate verification failed" in str(caught.value)
    assert state.faults.count() == 0  # the handshake failed: no request reached the API


def test_manual_payouts_are_loaded_without_a_payout_listing(
    sqlite_tenant: Engine, world: World, sleep: RecordingSleep
) -> None:
    manual = "po_usd1012"
    payouts = world.payouts.assign(automatic=world.payouts["payout_id"] != manual)
    state = World(world.charges, world.refunds, world.disputes, payouts).state()
    app = compose([RouteGroup("stripe", stripe_routes(state))])
    with run_in_thread(app) as server, make_client(server, sleep) as client:
        run = sync_window(sqlite_tenant, TENANT, client, ACCOUNT, *WINDOW)
        with pytest.raises(ProviderRejectedError, match="automatic"):
            client.list_balance_transactions(payout=manual)
    assert not any(f"payout={manual}" in p.page.request_key for p in run.landed.pages)
    lines = run.batches.payout_lines.rows
    assert manual not in set(lines["payout_id"]) and len(lines) > 0
    assert manual in set(run.batches.payouts.rows["payout_id"])


@pytest.mark.parametrize(
    ("call", "status"),
    [
        pytest.param(lambda c: c.retrieve("charges", "ch_missing"), 404, id="404 unknown charge"),
        pytest.param(lambda c: c.retrieve("payouts", "po_missing"), 404, id="404 unknown payout"),
        pytest.param(lambda c: c.list_balance_transactions(payout="po_missing"), 404, id="404"),
    ],
)
def test_not_found_is_tried_exactly_once(
    call: Callable[[StripeClient], Any],
    status: int,
    stripe_client: StripeClient,
    stripe_state: StripeState,
) -> None:
    with pytest.raises(ProviderRejectedError) as caught:
        call(stripe_client)
    assert caught.value.status == status and caught.value.attempts == 1
    assert stripe_state.faults.count() == 1
    assert "No such" in caught.value.provider_message


def test_a_bad_request_is_tried_exactly_once(
    stripe_server: RunningServer, stripe_state: StripeState, sleep: RecordingSleep
) -> None:
    with (
        make_client(stripe_server, sleep, page_size=1000) as client,
        pytest.raises(ProviderRejectedError) as caught,
    ):
        client.list_charges(created=CREATED)
    assert caught.value.status == 400 and caught.value.attempts == 1
    assert stripe_state.faults.count() == 1 and sleep.delays == []
    assert "less than or equal to 100" in str(caught.value)


def test_a_wrong_key_fails_once_without_showing_either_key(
    stripe_server: RunningServer,
    stripe_state: StripeState,
    sleep: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with (
        make_client(stripe_server, sleep, key=WRONG_KEY) as client,
        pytest.raises(ProviderRejectedError) as caught,
    ):
        client.fetch_window(*WINDOW)
    error = caught.value
    assert error.status == 401 and error.attempts == 1
    assert stripe_state.faults.count() == 1 and stripe_state.faults.count(status=401) == 1
    assert f"Invalid API Key provided: {mask_key(WRONG_KEY)}" in str(error)
    # a failing call with the right key is logged too: neither key may appear anywhere
    stripe_state.faults.status(500, path=BT_PATH)
    with make_client(stripe_server, sleep) as client, pytest.raises(ProviderUnavailableError):
        client.list_balance_transactions(created=CREATED)
    shown = [str(error), repr(error), caplog.text, *(r.getMessage() for r in caplog.records)]
    for key in (API_KEY, WRONG_KEY):
        assert not any(key in text for text in shown)
    assert any(r.name == "recon.stripe" for r in caplog.records)


# -- malformed records -----------------------------------------------------------------------------


def test_malformed_records_are_quarantined_with_reasons_and_conservation_holds(
    sqlite_tenant: Engine, stripe_client: StripeClient, stripe_state: StripeState
) -> None:
    faults = stripe_state.faults
    for payout_id, malformation in (("po_usd1012", drop_amount), ("po_eur1012", bad_currency)):
        faults.malform(  # a payout listing starts with the payout's own, which is left alone
            malformation,
            records=["data"],
            limit=2,
            path=BT_PATH,
            params={"payout": payout_id},
            count=1,
        )
    faults.malform(drop_amount, records=["data"], path="/v1/charges", count=1)
    run = sync_window(sqlite_tenant, TENANT, stripe_client, ACCOUNT, *WINDOW)

    batches = run.batches
    assert batches.balance_transactions == (
        len(batches.transactions.rows)
        + len(batches.transactions.rejects)
        + batches.payout_balance_transactions
        + batches.linked_elsewhere
    )
    with tenant_session(sqlite_tenant, TENANT) as session:
        quarantined = session.scalars(select(QuarantinedRow).order_by(QuarantinedRow.row_key))
        reasons = {q.row_key: q.reasons for q in quarantined}
        loaded = session.scalar(text("SELECT COUNT(*) FROM transactions"))
    assert len(reasons) == 3
    flat = sorted(r for rs in reasons.values() for r in rs)
    assert "amount is missing" in flat
    assert "currency 'zzz' is not an ISO 4217 code" in flat
    assert any(
        r.startswith("charge ch_") and r.endswith("is malformed: amount is missing") for r in flat
    )
    all_transactions = len(expected(make_world())["transactions"])
    assert loaded + len(reasons) == all_transactions  # nothing dropped, nothing doubled


def test_stored_pages_parse_without_calls_into_the_same_batches(
    sqlite_tenant: Engine, stripe_client: StripeClient, stripe_state: StripeState
) -> None:
    run = sync_window(sqlite_tenant, TENANT, stripe_client, ACCOUNT, *WINDOW)
    stripe_state.faults.clear_log()
    again = normalise(run.landed.pages, ACCOUNT)
    assert stripe_state.faults.count() == 0
    for mine, theirs in zip(run.batches.batches(), again.batches(), strict=True):
        pd.testing.assert_frame_equal(mine.rows, theirs.rows)
    assert window_scope(ACCOUNT, *WINDOW).dataset == "activity"


# -- the sandbox and the parsers on their own -------------------------------------------------------


def test_stripe_and_vault_routes_do_not_collide(stripe_state: StripeState) -> None:
    check_disjoint(
        [
            RouteGroup("vault", vault_routes(VaultState())),
            RouteGroup("stripe", stripe_routes(stripe_state)),
        ]
    )


def test_the_sandbox_refuses_seeds_stripe_could_not_hold(world: World) -> None:
    naive = world.charges.assign(created=dt.datetime(2026, 10, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        StripeState(naive, api_key=API_KEY)
    wrong_currency = world.payouts.assign(currency="GBP")
    with pytest.raises(ValueError, match="payout po_"):
        StripeState(world.charges, world.refunds, world.disputes, wrong_currency, api_key=API_KEY)
    with pytest.raises(ValueError, match="unknown payout"):
        StripeState(world.charges.assign(payout_id="po_nowhere"), api_key=API_KEY)


def test_stripe_minor_units_become_iso_minor_units() -> None:
    record = {
        "id": "txn_1",
        "type": "charge",
        "amount": 10000,
        "fee": 0,
        "net": 10000,
        "currency": "isk",
        "created": 1_790_000_000,
        "source": "ch_1",
    }
    parsed = balance_transaction(record)
    assert isinstance(parsed, BalanceTransaction) and parsed.amount_minor == 100  # ISK 100
    assert stripe_amount(100, "ISK") == 10000 and stripe_amount(5000, "JPY") == 5000
    odd = balance_transaction({**record, "amount": 10050, "net": 10050})
    assert isinstance(odd, Malformed) and odd.reasons == (
        "amount: 10050 is not a whole number of ISK minor units",
        "net: 10050 is not a whole number of ISK minor units",
    )
    wrong = balance_transaction({**record, "currency": "eur", "net": 1})
    assert isinstance(wrong, Malformed)
    assert wrong.reasons == ("net 1 is not amount 10000 minus fee 0",)
