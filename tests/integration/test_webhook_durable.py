"""Durable webhook events against a real Prefect API: a delivery acknowledged while Prefect is
down is kept, and a restarted receiver emits it once Prefect is back."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy import Engine, select

from apps.webhooks.app import ReceiverConfig, build_receiver
from apps.webhooks.prefect_events import PrefectEventSink, event_id_of
from apps.webhooks.signatures import stripe_signature_header
from apps.webhooks.translate import ReconcileRequest
from connectors.sandbox.serve import run_in_thread
from recon.db.models import WebhookEvent
from recon.db.tenancy import admin_session, tenant_session
from recon.secrets import STRIPE_WEBHOOK_SECRET, SecretResolver, env_var_name
from recon.settings import Settings
from recon.tenants import TenantSettings, add_tenant

SECRET = "whsec_durable_test_5678"
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[str]:
    """A temporary Prefect API (one per module: it takes long to start)."""
    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_API_URL.value()
        assert url
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def app_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Engine:
    owner: Engine = request.getfixturevalue(
        "sqlite_engine" if request.param == "sqlite" else "pg_owner_engine"
    )
    with admin_session(owner) as session:
        add_tenant(session, "acme", "Acme", TenantSettings(webhooks_enabled=True), actor="t")
    monkeypatch.setenv(env_var_name(STRIPE_WEBHOOK_SECRET, "acme"), SECRET)
    if request.param == "sqlite":
        return owner
    app: Engine = request.getfixturevalue("pg_app_engine")
    return app


class CountingSink:
    """The real Prefect sink, counting the events it handed over."""

    def __init__(self, api_url: str) -> None:
        self.inner = PrefectEventSink(api_url, timeout=2.0)
        self.taken: list[str] = []

    def __call__(self, requests: Sequence[ReconcileRequest]) -> None:
        self.inner(requests)
        self.taken.extend(r.event_id for r in requests)


def unreachable_api() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def rows(engine: Engine) -> list[WebhookEvent]:
    with tenant_session(engine, "acme") as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def deliver(url: str, event_id: str) -> httpx.Response:
    body = json.dumps(
        {
            "id": event_id,
            "type": "payout.paid",
            "created": 1_798_761_600,
            "data": {"object": {"id": "po_1", "arrival_date": 1_798_761_600}},
        }
    ).encode()
    header = stripe_signature_header(body, SECRET, int(time.time()))
    return httpx.post(
        f"{url}/webhooks/stripe/acme", content=body, headers={"Stripe-Signature": header}
    )


def prefect_events(api_url: str, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{api_url}/events/filter",
        json={"filter": {"id": {"id": [str(i) for i in ids]}}, "limit": 50},
    )
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def test_events_survive_prefect_down_and_a_restart(prefect_api: str, app_engine: Engine) -> None:
    event_ids = [f"evt_durable_{app_engine.dialect.name}_{n}" for n in range(3)]
    down = CountingSink(unreachable_api())
    with run_in_thread(
        build_receiver(ReceiverConfig(app_engine, SecretResolver(Settings()), down))
    ) as server:
        for event_id in event_ids:
            response = deliver(server.url, event_id)
            assert response.status_code == 200 and response.json()["new"] == 1
        wait_for(lambda: any(r.emit_attempts for r in rows(app_engine)), "a failed emit")
    stored = rows(app_engine)
    assert [r.event_id for r in stored] == event_ids
    assert all(r.processed_at is None for r in stored) and down.taken == []
    assert any(r.last_emit_error and "unreachable" in r.last_emit_error for r in stored)

    up = CountingSink(prefect_api)
    with run_in_thread(build_receiver(ReceiverConfig(app_engine, SecretResolver(Settings()), up))):
        wait_for(lambda: all(r.processed_at for r in rows(app_engine)), "the backlog emitted")
    assert sorted(up.taken) == sorted(event_ids)  # each handed to Prefect exactly once

    expected = [event_id_of("stripe", e) for e in event_ids]
    wait_for(lambda: len(prefect_events(prefect_api, expected)) == 3, "Prefect to store the events")
    stored_events = prefect_events(prefect_api, expected)
    assert sorted(e["id"] for e in stored_events) == sorted(str(i) for i in expected)
    assert {e["event"] for e in stored_events} == {"recon.provider.changed"}
    payloads = [e["payload"] for e in stored_events]
    assert sorted(p["event_id"] for p in payloads) == sorted(event_ids)
