"""The webhook receiver over real HTTP, on SQLite and PostgreSQL (the application role):
signatures, deduplication, refusals that do not reveal tenants, body limits, the outbox."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, func, select

from apps.webhooks.app import MAX_BODY_BYTES, ReceiverConfig, build_receiver
from apps.webhooks.outbox import emit_pending
from apps.webhooks.signatures import gocardless_signature, stripe_signature_header
from apps.webhooks.translate import ReconcileRequest
from connectors.sandbox.serve import run_in_thread
from recon.db.models import WebhookEvent
from recon.db.tenancy import admin_session, tenant_session
from recon.secrets import (
    GOCARDLESS_WEBHOOK_SECRET,
    STRIPE_WEBHOOK_SECRET,
    SecretResolver,
    env_var_name,
)
from recon.settings import Settings
from recon.tenants import TenantSettings, add_tenant

STRIPE_SECRET = "whsec_receiver_test_1234"
GC_SECRET = "gc-endpoint-secret-5678"


class RecordingSink:
    """Stands in for the Prefect API (tested for real in test_webhook_durable): collects
    reconcile requests, and can be told to fail like an unreachable API."""

    def __init__(self) -> None:
        self.requests: list[ReconcileRequest] = []
        self.fail = False

    def __call__(self, requests: Sequence[ReconcileRequest]) -> None:
        if self.fail:
            raise ConnectionError("Prefect API unreachable")
        self.requests.extend(requests)


@dataclass
class Receiver:
    url: str
    engine: Engine  # the engine the receiver uses (PostgreSQL: the non-owner application role)
    sink: RecordingSink

    def flush(self) -> int:
        """One pass of the emitter, as the server's loop runs it."""
        return emit_pending(self.engine, self.sink).emitted


def seed_tenants(engine: Engine) -> None:
    with admin_session(engine) as session:
        add_tenant(session, "acme", "Acme", TenantSettings(webhooks_enabled=True), actor="t")
        add_tenant(session, "quiet", "Quiet", TenantSettings(), actor="t")
        add_tenant(
            session, "nosecret", "No secret", TenantSettings(webhooks_enabled=True), actor="t"
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def app_engine(request: pytest.FixtureRequest) -> Engine:
    """The receiver's engine, with tenants registered by the schema owner."""
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        seed_tenants(engine)
        return engine
    seed_tenants(request.getfixturevalue("pg_owner_engine"))
    app: Engine = request.getfixturevalue("pg_app_engine")
    return app


@pytest.fixture
def receiver(app_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv(env_var_name(STRIPE_WEBHOOK_SECRET, "acme"), STRIPE_SECRET)
    monkeypatch.setenv(env_var_name(GOCARDLESS_WEBHOOK_SECRET, "acme"), GC_SECRET)
    sink = RecordingSink()
    config = ReceiverConfig(app_engine, SecretResolver(Settings()), sink, run_emitter=False)
    with run_in_thread(build_receiver(config)) as server:
        yield Receiver(server.url, app_engine, sink)


def stripe_event(
    event_id: str, event_type: str = "payout.paid", arrival: float = 1_798_761_600
) -> bytes:
    body = {
        "id": event_id,
        "type": event_type,
        "created": arrival,
        "data": {"object": {"id": "po_1", "object": "payout", "arrival_date": arrival}},
    }
    return json.dumps(body).encode()


def post_stripe(
    url: str, body: bytes, secret: str = STRIPE_SECRET, tenant: str = "acme", at: int | None = None
) -> httpx.Response:
    header = stripe_signature_header(body, secret, at or int(time.time()))
    return httpx.post(
        f"{url}/webhooks/stripe/{tenant}", content=body, headers={"Stripe-Signature": header}
    )


def stored_events(engine: Engine, tenant: str = "acme") -> int:
    with tenant_session(engine, tenant) as session:
        return int(session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


def stored_rows(engine: Engine, tenant: str = "acme") -> list[WebhookEvent]:
    with tenant_session(engine, tenant) as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def test_signed_stripe_event_becomes_one_reconcile_request(receiver: Receiver) -> None:
    response = post_stripe(receiver.url, stripe_event("evt_1"))
    assert response.status_code == 200 and response.json()["new"] == 1
    assert receiver.flush() == 1
    (request,) = receiver.sink.requests
    assert (request.tenant_id, request.event_type) == ("acme", "payout.paid")
    assert (
        request.date_from.isoformat() == "2026-12-29"
        and request.date_to.isoformat() == "2027-01-04"
    )
    (row,) = stored_rows(receiver.engine)
    assert row.processed_at is not None and row.emit_attempts == 1


def test_the_same_signed_event_three_times_is_new_once(receiver: Receiver) -> None:
    body = stripe_event("evt_replayed")
    answers = [post_stripe(receiver.url, body).json() for _ in range(3)]
    assert [(a["new"], a["duplicates"]) for a in answers] == [(1, 0), (0, 1), (0, 1)]
    receiver.flush()
    assert [r.event_id for r in receiver.sink.requests] == ["evt_replayed"]


def test_redelivery_in_any_order_has_one_effect(receiver: Receiver) -> None:
    deliveries = [f"evt_{n}" for n in range(4)] * 5
    random.Random(3).shuffle(deliveries)
    news = 0
    for event_id in deliveries:
        response = post_stripe(receiver.url, stripe_event(event_id))
        assert response.status_code == 200
        news += response.json()["new"]
        receiver.flush()
    assert news == 4
    assert sorted(r.event_id for r in receiver.sink.requests) == [f"evt_{n}" for n in range(4)]
    assert stored_events(receiver.engine) == 4


@pytest.mark.parametrize(
    ("secret", "offset", "tamper"),
    [
        ("whsec_wrong", 0, False),
        (STRIPE_SECRET, -301, False),
        (STRIPE_SECRET, 301, False),
        (STRIPE_SECRET, 0, True),
    ],
    ids=["wrong-secret", "too-old", "future", "tampered"],
)
def test_bad_stripe_deliveries_are_rejected_with_400(
    receiver: Receiver, secret: str, offset: int, tamper: bool
) -> None:
    body = stripe_event("evt_bad")
    header = stripe_signature_header(body, secret, int(time.time()) + offset)
    sent = body.replace(b"payout.paid", b"payout.fail") if tamper else body
    response = httpx.post(
        f"{receiver.url}/webhooks/stripe/acme", content=sent, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400
    assert STRIPE_SECRET not in response.text
    assert stored_events(receiver.engine) == 0


def test_missing_stripe_signature_is_rejected(receiver: Receiver) -> None:
    response = httpx.post(f"{receiver.url}/webhooks/stripe/acme", content=stripe_event("evt_x"))
    assert response.status_code == 400 and stored_events(receiver.engine) == 0


def test_events_that_change_nothing_are_recorded_but_start_nothing(receiver: Receiver) -> None:
    assert post_stripe(receiver.url, stripe_event("evt_c", "customer.created")).status_code == 200
    assert receiver.flush() == 0 and receiver.sink.requests == []
    (row,) = stored_rows(receiver.engine)
    assert row.processed_at is not None  # nothing to emit: done on arrival


def test_refusals_do_not_reveal_which_tenants_exist(receiver: Receiver) -> None:
    """Unknown tenant, tenant without webhooks, tenant without a secret, malformed tenant id and
    a bad signature for a real tenant all get the same 4xx and body, for both providers."""
    stripe_body = stripe_event("evt_t")
    gc_body = gocardless_batch(("EV_T", "payouts", "paid"))
    tenants = ["nobody", "quiet", "nosecret", "NOT%20AN%20ID", "x" * 300]
    stripe_answers = {
        (r.status_code, r.content)
        for r in [post_stripe(receiver.url, stripe_body, tenant=t) for t in tenants]
        + [post_stripe(receiver.url, stripe_body, secret="whsec_wrong")]
    }
    gc_answers = {
        (r.status_code, r.content)
        for r in [
            httpx.post(
                f"{receiver.url}/webhooks/gocardless/{tenant}",
                content=gc_body,
                headers={"Webhook-Signature": gocardless_signature(gc_body, key)},
            )
            for tenant, key in [(t, GC_SECRET) for t in tenants] + [("acme", "wrong")]
        ]
    }
    assert len(stripe_answers) == 1 and len(gc_answers) == 1
    ((stripe_status, _),), ((gc_status, _),) = stripe_answers, gc_answers
    assert stripe_status == 400 and gc_status == 498
    assert stored_events(receiver.engine) == 0


@pytest.mark.parametrize(
    "body",
    [
        stripe_event("evt_far", arrival=1e20),
        stripe_event("evt_far", arrival=-1e20),
        stripe_event("evt_far", arrival=253402300799),  # 9999-12-31: its window would overflow
        stripe_event("evt_" + "x" * 300),
        stripe_event("evt_\u0000nul"),
        json.dumps({"id": "evt_s", "type": "payout.paid", "created": "soon"}).encode(),
        json.dumps(["not", "an", "event"]).encode(),
        b"{not json",
    ],
    ids=[
        "created-1e20",
        "created-minus",
        "year-9999",
        "long-id",
        "nul",
        "text-date",
        "list",
        "junk",
    ],
)
def test_validly_signed_nonsense_is_a_400_not_a_500(receiver: Receiver, body: bytes) -> None:
    response = post_stripe(receiver.url, body)
    assert response.status_code == 400 and response.json() == {"error": "malformed delivery"}
    assert stored_events(receiver.engine) == 0


def test_gocardless_date_out_of_range_is_a_400(receiver: Receiver) -> None:
    body = json.dumps(
        {
            "events": [
                {
                    "id": "EV_Y",
                    "created_at": "9999-12-31T00:00:00Z",
                    "resource_type": "payouts",
                    "action": "paid",
                }
            ]
        }
    ).encode()
    response = httpx.post(
        f"{receiver.url}/webhooks/gocardless/acme",
        content=body,
        headers={"Webhook-Signature": gocardless_signature(body, GC_SECRET)},
    )
    assert response.status_code == 400 and stored_events(receiver.engine) == 0


def test_prefect_down_still_acknowledges_and_keeps_the_event(receiver: Receiver) -> None:
    receiver.sink.fail = True
    response = post_stripe(receiver.url, stripe_event("evt_r"))
    assert response.status_code == 200 and response.json()["new"] == 1
    assert receiver.flush() == 0
    (row,) = stored_rows(receiver.engine)
    assert row.processed_at is None and row.emit_attempts == 1
    assert row.last_emit_error == "Prefect API unreachable" and row.next_emit_at is not None
    # the provider's retry is a duplicate: the stored row, not the retry, carries the event
    assert post_stripe(receiver.url, stripe_event("evt_r")).json()["duplicates"] == 1
    receiver.sink.fail = False
    assert emit_pending(receiver.engine, receiver.sink, resume=True).emitted == 1
    assert receiver.flush() == 0  # emitted once, never again
    assert [r.event_id for r in receiver.sink.requests] == ["evt_r"]
    (row,) = stored_rows(receiver.engine)
    assert row.processed_at is not None and row.emit_attempts == 2


def gocardless_batch(*events: tuple[str, str, str]) -> bytes:
    return json.dumps(
        {
            "events": [
                {
                    "id": eid,
                    "created_at": "2026-11-20T10:00:00.000Z",
                    "resource_type": rtype,
                    "action": action,
                    "links": {},
                }
                for eid, rtype, action in events
            ]
        }
    ).encode()


def test_gocardless_batch_is_verified_and_replay_is_a_no_op(receiver: Receiver) -> None:
    """GoCardless signs no timestamp: a captured delivery verifies forever, so only the kept
    event ids stop its replay."""
    body = gocardless_batch(
        ("EV1", "payouts", "paid"), ("EV2", "mandates", "created"), ("EV3", "payments", "confirmed")
    )
    headers = {"Webhook-Signature": gocardless_signature(body, GC_SECRET)}
    url = f"{receiver.url}/webhooks/gocardless/acme"
    first = httpx.post(url, content=body, headers=headers)
    assert first.status_code == 200 and first.json() == {
        "received": True,
        "new": 3,
        "duplicates": 0,
    }
    assert receiver.flush() == 2
    assert sorted(r.event_id for r in receiver.sink.requests) == ["EV1", "EV3"]
    for _ in range(2):
        replay = httpx.post(url, content=body, headers=headers)
        assert replay.json() == {"received": True, "new": 0, "duplicates": 3}
    assert receiver.flush() == 0
    assert len(receiver.sink.requests) == 2 and stored_events(receiver.engine) == 3


def test_gocardless_bad_signature_is_498(receiver: Receiver) -> None:
    body = gocardless_batch(("EV9", "payouts", "paid"))
    for headers in ({}, {"Webhook-Signature": gocardless_signature(body, "wrong")}):
        response = httpx.post(
            f"{receiver.url}/webhooks/gocardless/acme", content=body, headers=headers
        )
        assert response.status_code == 498
    assert stored_events(receiver.engine) == 0


def test_oversized_payload_is_refused_from_its_content_length(receiver: Receiver) -> None:
    response = httpx.post(
        f"{receiver.url}/webhooks/stripe/acme", content=b"x" * (MAX_BODY_BYTES + 1)
    )
    assert response.status_code == 413


def test_an_oversized_stream_is_cut_off_not_read(receiver: Receiver) -> None:
    """A chunked body with no Content-Length: the server stops reading past the limit and
    closes the connection, so the client cannot push more than the socket buffers hold."""
    chunk, chunks = b"x" * 65536, 3200  # 200 MiB offered
    offered = 0

    def stream() -> Iterator[bytes]:
        nonlocal offered
        for _ in range(chunks):
            offered += len(chunk)
            yield chunk

    response = httpx.post(f"{receiver.url}/webhooks/gocardless/nobody", content=stream())
    assert response.status_code == 413
    assert offered < len(chunk) * chunks // 10, f"the server read {offered} bytes"
