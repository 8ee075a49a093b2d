"""GoCardless Payments over real HTTP against the sandbox: cursor paging, the version header and
auth, faults, 410 for old payout items, and landing/normalising/loading into the real DB."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from connectors.gocardless_payments import GoCardlessPaymentsClient
from connectors.http import ProviderRejectedError
from connectors.pages import Page
from connectors.sandbox.faults import FaultPlan, FaultRule
from connectors.sandbox.gocardless_payments import PREFIX, GoCardlessPaymentsState
from connectors.sandbox.serve import RunningServer
from recon.db.models import Payout, PayoutLine, QuarantinedRow, Transaction
from recon.db.tenancy import tenant_session
from tasks.land import FetchScope, LandedPages, StoredPage, land_or_replay
from tasks.load import Batch, LoadResult, load_batches
from tasks.normalise_gocardless import payments_batches
from tests.integration.gocardless_fixtures import (
    CREDITOR,
    PAYMENTS_TOKEN,
    TENANT,
    WINDOW,
    RecordingSleep,
    bad_state,
    bank_seed,
    clock,
    db,
    fast_policy,
    gc_server,
    make_payments_seed,
    payments_client,
    payments_state,
    sleep,
)
from tests.integration.whmcs_fixtures import wait_for_requests

__all__ = [
    "bad_state",
    "bank_seed",
    "clock",
    "db",
    "gc_server",
    "payments_client",
    "payments_state",
    "sleep",
]

STATUS = {
    "paid_out": "booked",
    "pending_submission": "pending",
    "submitted": "pending",
    "confirmed": "booked",
    "failed": "failed",
    "customer_approval_denied": "failed",
}


def land_window(
    engine: Engine,
    client: GoCardlessPaymentsClient,
    *,
    refetch: bool = False,
    window: tuple[dt.date, dt.date] = WINDOW,
) -> LandedPages:
    scope = FetchScope("gocardless_payments", CREDITOR, "window", *window)
    return land_or_replay(
        engine,
        TENANT,
        scope,
        lambda on_page: client.fetch_window(window, on_page),
        refetch=refetch,
    )


def load_window(engine: Engine, landed: LandedPages) -> tuple[LoadResult, list[Batch]]:
    """Normalise a landed window and load its three batches in one transaction."""
    batches = payments_batches(landed.pages, CREDITOR)
    return load_batches(engine, TENANT, batches)[0], batches


def stored_payouts(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The payouts and payout lines as the database holds them, in `plain` form."""
    with tenant_session(engine, TENANT) as session:
        payouts = sorted(
            (p.source, p.payout_id, p.arrival_on, p.amount_minor, p.currency, p.status)
            for p in session.scalars(select(Payout))
        )
        lines = sorted(
            (line.source, line.payout_id, line.transaction_id)
            for line in session.scalars(select(PayoutLine))
        )
    return payouts, lines


def plain(batch: Batch) -> list[tuple[Any, ...]]:
    """A batch's rows without lineage, sorted: what a load of it would write."""
    rows = batch.rows.drop(columns=["raw_payload_id"])
    return sorted(tuple(r) for r in rows.itertuples(index=False))


def in_window(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    days = pd.to_datetime(frame[column]).dt.date
    return frame[(days >= WINDOW[0]) & (days <= WINDOW[1])]


def dump(engine: Engine) -> list[tuple[Any, ...]]:
    with tenant_session(engine, TENANT) as session:
        return [tuple(r) for r in session.execute(text("SELECT * FROM transactions ORDER BY id"))]


def test_a_window_loads_the_seeded_payments_payouts_and_lines_idempotently(
    db: Engine,
    gc_server: RunningServer,
    payments_client: GoCardlessPaymentsClient,
    payments_state: GoCardlessPaymentsState,
    sleep: RecordingSleep,
) -> None:
    payments, payouts = make_payments_seed()
    charged = in_window(payments, "charge_date")
    result, (_, payout_batch, line_batch) = load_window(db, land_window(db, payments_client))
    assert result.quarantined == 0 and not payout_batch.rejects and not line_batch.rejects
    assert stored_payouts(db) == (plain(payout_batch), plain(line_batch))
    with tenant_session(db, TENANT) as session:
        rows = session.scalars(
            select(Transaction).where(Transaction.kind == "payment").order_by(Transaction.source_id)
        ).all()
        fees = session.scalars(select(Transaction).where(Transaction.kind == "fee")).all()
    expected = sorted(
        (
            r["payment_id"],
            r["charge_date"],
            r["amount_minor"],
            r["currency"],
            r["payout_id"] if isinstance(r["payout_id"], str) else None,
            r["customer_name"],
            STATUS[r["status"]],
            " | ".join(p for p in (r["reference"], r["description"]) if p),
        )
        for r in charged.to_dict("records")
    )
    assert [
        (
            t.source_id,
            t.booked_on,
            t.amount_minor,
            t.currency,
            t.payout_id,
            t.counterparty,
            t.status,
            t.reference,
        )
        for t in rows
    ] == expected
    assert {(t.source, t.account_ref) for t in rows} == {("gocardless", CREDITOR)}
    by_currency = charged.groupby("currency")["amount_minor"].agg(["count", "sum"])
    loaded = pd.DataFrame([(t.currency, t.amount_minor) for t in rows], columns=["c", "a"])
    assert loaded.groupby("c")["a"].agg(["count", "sum"]).values.tolist() == (
        by_currency.values.tolist()
    )
    created = payouts[payouts["arrival_date"].map(lambda d: d.month) == 10]
    assert plain(payout_batch) == sorted(
        ("gocardless", r["payout_id"], r["arrival_date"], r["amount_minor"], r["currency"], "paid")
        for r in created.to_dict("records")
    )
    # every payout equals the sum of the lines that settle it (its payments less the fee row)
    amounts = {t.source_id: t.amount_minor for t in [*rows, *fees]}
    lines = [(pid, tid) for _, pid, tid in plain(line_batch)]
    for _, payout_id, _, amount, _, _ in plain(payout_batch):
        assert sum(amounts[tid] for pid, tid in lines if pid == payout_id) == amount
    assert len(lines) == int(charged["payout_id"].notna().sum()) + len(fees)
    assert {f.source_id for f in fees} == {
        "fee:PO0000000001",
        "fee:PO0000000002",
        "fee:PO0000000003",
    }
    # run 2 replays without a single request; run 3 fetches again; nothing changes
    snapshot = dump(db)
    sent = len(payments_state.faults.requests())
    with GoCardlessPaymentsClient(
        gc_server.url + PREFIX, PAYMENTS_TOKEN, policy=fast_policy(sleep)
    ) as fresh:
        replay = land_window(db, fresh)
        assert replay.replayed
        replayed, replayed_batches = load_window(db, replay)
        assert len(payments_state.faults.requests()) == sent
        again, again_batches = load_window(db, land_window(db, fresh, refetch=True))
    for run, batches in ((replayed, replayed_batches), (again, again_batches)):
        assert (run.inserted, run.updated, run.unchanged) == (0, 0, len(rows) + len(fees))
        assert [plain(b) for b in batches[1:]] == [plain(payout_batch), plain(line_batch)]
    assert dump(db) == snapshot
    assert stored_payouts(db) == (plain(payout_batch), plain(line_batch))


def test_lists_follow_the_cursor_to_the_end(
    payments_client: GoCardlessPaymentsClient,
    payments_state: GoCardlessPaymentsState,
    gc_server: RunningServer,
) -> None:
    params = {"charge_date[gte]": "2026-10-01", "charge_date[lte]": "2026-10-31"}
    paged = list(payments_client.iter_list("payments", params))
    pages = payments_state.faults.count(label="payments")
    with GoCardlessPaymentsClient(gc_server.url + PREFIX, PAYMENTS_TOKEN) as big:
        whole = list(big.iter_list("payments", params))
    assert [p["id"] for p in paged] == [p["id"] for p in whole]
    assert len({p["id"] for p in paged}) == len(paged) == 33
    assert pages == math.ceil(33 / 7)
    with httpx.Client(
        base_url=gc_server.url + PREFIX,
        headers={"Authorization": f"Bearer {PAYMENTS_TOKEN}", "GoCardless-Version": "2015-07-06"},
    ) as raw:
        first = raw.get("/payments", params={**params, "limit": "10"}).json()
        second = raw.get(
            "/payments",
            params={**params, "limit": "10", "after": first["meta"]["cursors"]["after"]},
        ).json()
        back = raw.get(
            "/payments",
            params={**params, "limit": "10", "before": second["meta"]["cursors"]["before"]},
        ).json()
    assert first["meta"]["cursors"]["before"] is None and first["meta"]["limit"] == 10
    assert [p["id"] for p in back["payments"]] == [p["id"] for p in first["payments"]]
    assert isinstance(first["payments"][0]["amount"], int)


def test_the_version_header_and_the_token_are_required(
    gc_server: RunningServer, payments_state: GoCardlessPaymentsState, sleep: RecordingSleep
) -> None:
    url = gc_server.url + PREFIX + "/payouts"
    bearer = {"Authorization": f"Bearer {PAYMENTS_TOKEN}"}
    cases = [
        (bearer, 400, "missing_version_header"),
        ({**bearer, "GoCardless-Version": "2099-01-01"}, 400, "version_not_found"),
        ({"GoCardless-Version": "2015-07-06"}, 401, "missing_authorization_header"),
        (
            {"Authorization": "Bearer nope", "GoCardless-Version": "2015-07-06"},
            401,
            "access_token_not_found",
        ),
    ]
    for headers, status, reason in cases:
        answer = httpx.get(url, headers=headers)
        error = answer.json()["error"]
        assert (answer.status_code, error["code"], error["errors"][0]["reason"]) == (
            status,
            status,
            reason,
        )
        assert error["type"] == "invalid_api_usage" and error["request_id"]
    payments_state.faults.clear_log()
    with (
        GoCardlessPaymentsClient(
            gc_server.url + PREFIX, "wrong-token", policy=fast_policy(sleep)
        ) as bad,
        pytest.raises(ProviderRejectedError, match="Access token not found") as caught,
    ):
        bad.list_payouts(WINDOW)
    assert caught.value.status == 401 and payments_state.faults.count(label="payouts") == 1


FAULTS: dict[str, tuple[Callable[[FaultPlan], FaultRule], str]] = {
    "500 mid-pagination": (
        lambda p: p.status(500, path=f"{PREFIX}/payments", skip=2, count=1),
        "payments",
    ),
    "truncated page": (lambda p: p.truncate(0.5, path=f"{PREFIX}/payouts", count=1), "payouts"),
    "429 Retry-After": (
        lambda p: p.rate_limit(2, path=f"{PREFIX}/payout_items", count=2),
        "payout_items",
    ),
    "connection reset": (lambda p: p.reset(path=f"{PREFIX}/customers", count=1), "customers"),
    "timeout": (lambda p: p.timeout(0.8, path=f"{PREFIX}/mandates", count=1), "mandates"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_window_survives_transient_faults(
    fault: str,
    payments_client: GoCardlessPaymentsClient,
    payments_state: GoCardlessPaymentsState,
) -> None:
    clean: list[Page] = []
    payments_client.fetch_window(WINDOW, clean.append)
    payments_state.faults.clear_log()
    rule, endpoint = FAULTS[fault]
    fired = rule(payments_state.faults)
    pages: list[Page] = []
    payments_client.fetch_window(WINDOW, pages.append)
    assert [p.body for p in pages] == [p.body for p in clean]
    ok = sum(1 for p in clean if p.endpoint == endpoint)
    expected = ok + fired.fired  # a timed-out request is logged once its handler finishes
    assert wait_for_requests(payments_state.faults, expected, label=endpoint) == expected
    assert fired.fired == (2 if fault == "429 Retry-After" else 1)


def test_old_payouts_are_tied_by_payment_links_when_items_are_gone(
    payments_client: GoCardlessPaymentsClient, payments_state: GoCardlessPaymentsState
) -> None:
    with pytest.raises(ProviderRejectedError, match="last 6 months") as caught:
        payments_client.list_payout_items("PO0000000009")
    assert caught.value.status == 410 and caught.value.attempts == 1
    april = (dt.date(2026, 4, 1), dt.date(2026, 4, 30))
    pages: list[Page] = []
    payments_client.fetch_window(april, pages.append)
    stored = [StoredPage(n + 1, page) for n, page in enumerate(pages)]
    transactions, payouts, lines = payments_batches(stored, CREDITOR)
    assert payouts.rows["payout_id"].tolist() == ["PO0000000009"]
    linked = sorted(lines.rows["transaction_id"])
    paid = sorted(
        transactions.rows.loc[transactions.rows["payout_id"] == "PO0000000009", "source_id"]
    )
    assert linked == paid and len(paid) == 4 and "fee:PO0000000009" in paid
    settled = transactions.rows[transactions.rows["source_id"].isin(linked)]["amount_minor"].sum()
    assert int(settled) == int(payouts.rows["amount_minor"].iloc[0])


def test_malformed_payments_are_quarantined_with_reasons(
    db: Engine, payments_client: GoCardlessPaymentsClient, payments_state: GoCardlessPaymentsState
) -> None:
    breakages: list[Callable[[dict[str, Any]], None]] = [
        lambda r: r.update(amount=f"{r['amount'] / 100:.2f}"),
        lambda r: r.update(currency="EURO"),
        lambda r: r.update(
            charge_date=dt.date.fromisoformat(r["charge_date"]).strftime("%d/%m/%Y")
        ),
    ]
    queue = iter(breakages)
    payments_state.faults.malform(
        lambda record: next(queue)(record),
        records=("payments",),
        limit=3,
        path=f"{PREFIX}/payments",
        count=1,
    )
    landed = land_window(db, payments_client)
    result, _ = load_window(db, landed)
    assert result.quarantined == 3
    with tenant_session(db, TENANT) as session:
        quarantined = session.scalars(select(QuarantinedRow).order_by(QuarantinedRow.row_key)).all()
        loaded = session.scalar(
            select(text("COUNT(*)")).select_from(Transaction).where(Transaction.kind == "payment")
        )
    reasons = [q.reasons for q in quarantined]
    assert reasons[0][0].startswith("amount '") and reasons[0][0].endswith(
        "' is not an integer of minor units"
    )
    assert reasons[1] == ["currency 'EURO' is not ISO 4217"]
    assert reasons[2][0].startswith("charge_date '") and reasons[2][0].endswith("/2026' is not ISO")
    raw = [json.loads(p.page.body) for p in landed.pages if p.page.endpoint == "payments"]
    assert sum(len(page["payments"]) for page in raw) == loaded + len(quarantined) == 33
    assert all(q.raw_payload_id == landed.pages[0].raw_payload_id for q in quarantined)
