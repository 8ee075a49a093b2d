"""The ASGI receiver: `POST /webhooks/stripe/{tenant}` and `POST /webhooks/gocardless/{tenant}`.

Every delivery is verified against the tenant's signing secret (from the secrets layer) before
anything is read from it. Each event id is recorded once in `webhook_events`, in the same
transaction that emits its Prefect event: a redelivery is acknowledged and does nothing, and an
emit that fails rolls the record back so that the provider's retry gets another chance.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from recon.db.models import Tenant, WebhookEvent
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import ReconError
from recon.secrets import (
    GOCARDLESS_WEBHOOK_SECRET,
    STRIPE_WEBHOOK_SECRET,
    SecretResolver,
    SecretSpec,
)
from recon.tenants import parse_settings
from recon.webhooks.signatures import SignatureError, verify_gocardless, verify_stripe
from recon.webhooks.translate import (
    ProviderEvent,
    ReconcileRequest,
    gocardless_events,
    reconcile_request,
    stripe_events,
)

log = logging.getLogger("recon.webhooks")

MAX_BODY_BYTES = 1024 * 1024
GOCARDLESS_INVALID_SIGNATURE = 498  # what GoCardless asks receivers to answer


class EventSink(Protocol):
    """Where reconcile requests go: Prefect events in production."""

    def __call__(self, request: ReconcileRequest) -> None: ...


@dataclass(frozen=True)
class ReceiverConfig:
    """What the receiver needs: the database, the secrets, the sink and a clock."""

    engine: Engine
    secrets: SecretResolver
    sink: EventSink
    clock: Callable[[], float] | None = None


def _secrets_of(value: str) -> list[str]:
    """A stored signing secret may list several (space or comma separated) during rotation."""
    return [part for part in re.split(r"[\s,]+", value) if part]


def _tenant_accepts_webhooks(engine: Engine, tenant_id: str) -> bool:
    with admin_session(engine) as session:
        tenant = session.get(Tenant, tenant_id)
        return (
            tenant is not None
            and tenant.active
            and parse_settings(tenant.settings).webhooks_enabled
        )


def _insert_ignore(engine: Engine) -> Any:
    table = WebhookEvent.__table__
    assert isinstance(table, Table)
    module = postgresql if engine.dialect.name == "postgresql" else sqlite
    return module.insert(table)


def record_and_emit(
    engine: Engine, tenant_id: str, events: Sequence[ProviderEvent], body: bytes, sink: EventSink
) -> tuple[int, int]:
    """Record each new event and emit its reconcile request; returns (new, duplicates)."""
    digest = hashlib.sha256(body).hexdigest()
    new = duplicates = 0
    for event in events:
        with tenant_session(engine, tenant_id) as session:
            statement = (
                _insert_ignore(engine)
                .values(
                    tenant_id=tenant_id,
                    provider=event.provider,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    payload_sha256=digest,
                )
                .on_conflict_do_nothing(index_elements=["tenant_id", "provider", "event_id"])
            )
            inserted = session.execute(statement).rowcount  # type: ignore[attr-defined]
            if not inserted:
                duplicates += 1
                continue
            new += 1
            request = reconcile_request(tenant_id, event)
            if request is not None:
                sink(request)  # an exception here rolls the record back: the retry will redo it
    return new, duplicates


@dataclass(frozen=True)
class _Provider:
    name: str
    secret: SecretSpec
    header: str
    bad_signature_status: int
    parse: Callable[[dict[str, Any]], list[ProviderEvent]]


STRIPE = _Provider("stripe", STRIPE_WEBHOOK_SECRET, "stripe-signature", 400, stripe_events)
GOCARDLESS = _Provider(
    "gocardless",
    GOCARDLESS_WEBHOOK_SECRET,
    "webhook-signature",
    GOCARDLESS_INVALID_SIGNATURE,
    gocardless_events,
)


def handle_delivery(
    config: ReceiverConfig, provider: _Provider, tenant_id: str, body: bytes, header: str | None
) -> tuple[int, dict[str, Any]]:
    """Verify, parse, deduplicate and emit one delivery; returns (HTTP status, JSON body)."""
    if not _tenant_accepts_webhooks(config.engine, tenant_id):
        return 404, {"error": "unknown endpoint"}
    try:
        secrets = _secrets_of(config.secrets.get(provider.secret, tenant_id))
    except ReconError as exc:
        log.error("webhook for tenant %s refused: %s", tenant_id, exc)
        return 503, {"error": "webhook endpoint not configured"}
    try:
        if provider is STRIPE:
            verify_stripe(body, header, secrets, clock=config.clock or time.time)
        else:
            verify_gocardless(body, header, secrets)
    except SignatureError as exc:
        log.warning("rejected a %s webhook for tenant %s: %s", provider.name, tenant_id, exc)
        return provider.bad_signature_status, {"error": f"invalid signature: {exc}"}
    try:
        events = provider.parse(json.loads(body))
    except (ValueError, TypeError, AttributeError) as exc:
        return 400, {"error": f"malformed delivery: {exc}"}
    try:
        new, duplicates = record_and_emit(config.engine, tenant_id, events, body, config.sink)
    except Exception as exc:  # nothing was recorded for the failed event: the retry redoes it
        log.error("could not hand on a %s webhook for tenant %s: %s", provider.name, tenant_id, exc)
        return 503, {"error": "temporarily unable to process the delivery; retry later"}
    log.info(
        "%s webhook for tenant %s: %d new, %d duplicate events",
        provider.name,
        tenant_id,
        new,
        duplicates,
    )
    return 200, {"received": True, "new": new, "duplicates": duplicates}


def build_receiver(config: ReceiverConfig) -> Starlette:
    """The Starlette app of the webhook receiver."""

    def endpoint(provider: _Provider) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                return JSONResponse({"error": "payload too large"}, status_code=413)
            status, answer = await run_in_threadpool(
                handle_delivery,
                config,
                provider,
                request.path_params["tenant"],
                body,
                request.headers.get(provider.header),
            )
            return JSONResponse(answer, status_code=status)

        return receive

    return Starlette(
        routes=[
            Route("/webhooks/stripe/{tenant}", endpoint(STRIPE), methods=["POST"]),
            Route("/webhooks/gocardless/{tenant}", endpoint(GOCARDLESS), methods=["POST"]),
        ]
    )
