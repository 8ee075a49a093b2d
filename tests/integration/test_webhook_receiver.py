"""The webhook receiver over real HTTP: signatures, deduplication, events for the deployment."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine, func, select

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
from recon.webhooks.app import ReceiverConfig, build_receiver
from recon.webhooks.signatures import gocardless_signature, stripe_signature_header
from recon.webhooks.translate import ReconcileRequest

STRIPE_SECRET = "whsec_receiver_test_1234"
GC_SECRET = "gc-endpoint-secret-5678"


class RecordingSink:
    """Collects reconcile requests; can be told to fail like an unreachable Prefect API."""

    def __init__(self) -> None:
        self.requests: list[ReconcileRequest] = []
        self.fail = False

    def __call__(self, request: ReconcileRequest) -> None:
        if self.fail:
            raise ConnectionError("Prefect API unreachable")
        self.requests.append(request)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def receiver(
    sqlite_engine: Engine, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    with admin_session(sqlite_engine) as session:
        add_tenant(session, "acme", "Acme", TenantSettings(webhooks_enabled=True), actor="t")
        add_tenant(session, "quiet", "Quiet", TenantSettings(), actor="t")
        add_tenant(
            session, "nosecret", "No secret", TenantSettings(webhooks_enabled=True), actor="t"
        )
    monkeypatch.setenv(env_var_name(STRIPE_WEBHOOK_SECRET, "acme"), STRIPE_SECRET)
    monkeypatch.setenv(env_var_name(GOCARDLESS_WEBHOOK_SECRET, "acme"), GC_SECRET)
    config = ReceiverConfig(sqlite_engine, SecretResolver(Settings()), sink)
    with run_in_thread(build_receiver(config)) as server:
        yield server.url


def stripe_event(
    event_id: str, event_type: str = "payout.paid", arrival: int = 1_798_761_600
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


def test_signed_stripe_event_becomes_one_reconcile_request(
    receiver: str, sink: RecordingSink, sqlite_engine: Engine
) -> None:
    response = post_stripe(receiver, stripe_event("evt_1"))
    assert response.status_code == 200 and response.json()["new"] == 1
    (request,) = sink.requests
    assert (request.tenant_id, request.event_type) == ("acme", "payout.paid")
    assert (
        request.date_from.isoformat() == "2026-12-29"
        and request.date_to.isoformat() == "2027-01-04"
    )
    assert stored_events(sqlite_engine) == 1


def test_redelivery_in_any_order_has_one_effect(
    receiver: str, sink: RecordingSink, sqlite_engine: Engine
) -> None:
    deliveries = [f"evt_{n}" for n in range(4)] * 5
    random.Random(3).shuffle(deliveries)
    for event_id in deliveries:
        assert post_stripe(receiver, stripe_event(event_id)).status_code == 200
    assert sorted(r.event_id for r in sink.requests) == [f"evt_{n}" for n in range(4)]
    assert stored_events(sqlite_engine) == 4


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
    receiver: str,
    sink: RecordingSink,
    sqlite_engine: Engine,
    secret: str,
    offset: int,
    tamper: bool,
) -> None:
    body = stripe_event("evt_bad")
    header = stripe_signature_header(body, secret, int(time.time()) + offset)
    sent = body.replace(b"payout.paid", b"payout.fail") if tamper else body
    response = httpx.post(
        f"{receiver}/webhooks/stripe/acme", content=sent, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400
    assert STRIPE_SECRET not in response.text
    assert sink.requests == [] and stored_events(sqlite_engine) == 0


def test_missing_stripe_signature_is_rejected(receiver: str, sink: RecordingSink) -> None:
    response = httpx.post(f"{receiver}/webhooks/stripe/acme", content=stripe_event("evt_x"))
    assert response.status_code == 400 and sink.requests == []


def test_events_that_change_nothing_are_recorded_but_start_nothing(
    receiver: str, sink: RecordingSink, sqlite_engine: Engine
) -> None:
    assert post_stripe(receiver, stripe_event("evt_c", "customer.created")).status_code == 200
    assert sink.requests == [] and stored_events(sqlite_engine) == 1


def test_unknown_disabled_or_unconfigured_tenants(receiver: str, sink: RecordingSink) -> None:
    body = stripe_event("evt_t")
    assert post_stripe(receiver, body, tenant="nobody").status_code == 404
    assert post_stripe(receiver, body, tenant="quiet").status_code == 404
    response = post_stripe(receiver, body, tenant="nosecret")
    assert response.status_code == 503 and "not configured" in response.text
    assert sink.requests == []


def test_a_failed_emit_is_retried_by_the_provider(
    receiver: str, sink: RecordingSink, sqlite_engine: Engine
) -> None:
    sink.fail = True
    assert post_stripe(receiver, stripe_event("evt_r")).status_code == 503
    assert stored_events(sqlite_engine) == 0  # rolled back with the failed emit
    sink.fail = False
    assert post_stripe(receiver, stripe_event("evt_r")).status_code == 200
    assert [r.event_id for r in sink.requests] == ["evt_r"]


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


def test_gocardless_batch_is_verified_and_replay_is_a_no_op(
    receiver: str, sink: RecordingSink, sqlite_engine: Engine
) -> None:
    body = gocardless_batch(
        ("EV1", "payouts", "paid"), ("EV2", "mandates", "created"), ("EV3", "payments", "confirmed")
    )
    headers = {"Webhook-Signature": gocardless_signature(body, GC_SECRET)}
    first = httpx.post(f"{receiver}/webhooks/gocardless/acme", content=body, headers=headers)
    assert first.status_code == 200 and first.json() == {
        "received": True,
        "new": 3,
        "duplicates": 0,
    }
    assert sorted(r.event_id for r in sink.requests) == ["EV1", "EV3"]
    replay = httpx.post(f"{receiver}/webhooks/gocardless/acme", content=body, headers=headers)
    assert replay.json() == {"received": True, "new": 0, "duplicates": 3}
    assert len(sink.requests) == 2 and stored_events(sqlite_engine) == 3


def test_gocardless_bad_signature_is_498(receiver: str, sink: RecordingSink) -> None:
    body = gocardless_batch(("EV9", "payouts", "paid"))
    for headers in ({}, {"Webhook-Signature": gocardless_signature(body, "wrong")}):
        response = httpx.post(f"{receiver}/webhooks/gocardless/acme", content=body, headers=headers)
        assert response.status_code == 498
    assert sink.requests == []


def test_oversized_payloads_are_refused(receiver: str) -> None:
    response = httpx.post(f"{receiver}/webhooks/stripe/acme", content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
