"""The ASGI receiver: `POST /webhooks/stripe/{tenant}` and `POST /webhooks/gocardless/{tenant}`.

Checks run cheapest first, and nothing is read that is not needed: a body over the limit is
refused from its `Content-Length`, or as soon as the stream passes the limit, with 413, before
any tenant lookup or signature work. Every delivery is then verified against the tenant's signing
secret (from the secrets layer) before its content is read. An unknown tenant, a tenant without
webhooks, a tenant without a secret and a bad signature get the same answer (Stripe: 400,
GoCardless: 498, one body), so the endpoint does not tell which tenants exist. Verified events are
committed to `webhook_events` before the 200 (see `apps.webhooks.outbox`), and the receiver's
emitter hands them to Prefect until Prefect takes them, across restarts.
"""

from __future__ import annotations

import json
import logging
import re
import secrets as token_source
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apps.webhooks.outbox import Emitter, EventSink, store_events
from apps.webhooks.signatures import SignatureError, verify_gocardless, verify_stripe
from apps.webhooks.translate import ProviderEvent, gocardless_events, stripe_events
from recon.db.models import Tenant
from recon.db.tenancy import admin_session
from recon.errors import ReconError
from recon.secrets import (
    GOCARDLESS_WEBHOOK_SECRET,
    STRIPE_WEBHOOK_SECRET,
    SecretResolver,
    SecretSpec,
)
from recon.tenants import TENANT_ID_PATTERN, parse_settings

log = logging.getLogger("apps.webhooks")

MAX_BODY_BYTES = 1024 * 1024
GOCARDLESS_INVALID_SIGNATURE = 498  # what GoCardless asks receivers to answer
REFUSED = {"error": "invalid signature"}
# Unknown tenants are "verified" against this, so they cost the same HMAC work as known ones.
_DECOY_SECRET = token_source.token_hex(32)

__all__ = ["MAX_BODY_BYTES", "EventSink", "ReceiverConfig", "build_receiver", "handle_delivery"]


@dataclass(frozen=True)
class ReceiverConfig:
    """What the receiver needs: the database, the secrets, the sink and a clock.

    `run_emitter=False` leaves emitting to the caller (`apps.webhooks.outbox.emit_pending`)."""

    engine: Engine
    secrets: SecretResolver
    sink: EventSink
    clock: Callable[[], float] | None = None
    run_emitter: bool = True
    max_body_bytes: int = MAX_BODY_BYTES


def _secrets_of(value: str) -> list[str]:
    """A stored signing secret may list several (space or comma separated) during rotation."""
    return [part for part in re.split(r"[\s,]+", value) if part]


def _tenant_accepts_webhooks(engine: Engine, tenant_id: str) -> bool:
    if not TENANT_ID_PATTERN.match(tenant_id):
        return False
    with admin_session(engine) as session:
        tenant = session.get(Tenant, tenant_id)
        return (
            tenant is not None
            and tenant.active
            # the receiver calls no provider; the run an event starts checks the URLs for https
            and parse_settings(tenant.settings, production=False).webhooks_enabled
        )


@dataclass(frozen=True)
class _Provider:
    name: str
    secret: SecretSpec
    header: str
    bad_signature_status: int
    parse: Callable[[Any], list[ProviderEvent]]


STRIPE = _Provider("stripe", STRIPE_WEBHOOK_SECRET, "stripe-signature", 400, stripe_events)
GOCARDLESS = _Provider(
    "gocardless",
    GOCARDLESS_WEBHOOK_SECRET,
    "webhook-signature",
    GOCARDLESS_INVALID_SIGNATURE,
    gocardless_events,
)


def _signing_secrets(config: ReceiverConfig, provider: _Provider, tenant_id: str) -> list[str]:
    """The tenant's secrets, or [] when it takes no webhooks of this provider (logged)."""
    if not _tenant_accepts_webhooks(config.engine, tenant_id):
        log.warning("refused a %s webhook for unknown tenant %r", provider.name, tenant_id[:80])
        return []
    try:
        return _secrets_of(config.secrets.get(provider.secret, tenant_id))
    except ReconError as exc:
        log.error("webhook for tenant %s refused: %s", tenant_id, exc)
        return []


def _verify(
    config: ReceiverConfig, provider: _Provider, body: bytes, header: str, keys: list[str]
) -> None:
    if provider is STRIPE:
        verify_stripe(body, header, keys, clock=config.clock or time.time)
    else:
        verify_gocardless(body, header, keys)


def handle_delivery(
    config: ReceiverConfig, provider: _Provider, tenant_id: str, body: bytes, header: str | None
) -> tuple[int, dict[str, Any]]:
    """Verify, parse and store one delivery; returns (HTTP status, JSON body)."""
    refused = provider.bad_signature_status, REFUSED
    if not header:
        return refused
    keys = _signing_secrets(config, provider, tenant_id)
    try:
        _verify(config, provider, body, header, keys or [_DECOY_SECRET])
    except SignatureError as exc:
        if keys:
            log.warning("rejected a %s webhook for tenant %s: %s", provider.name, tenant_id, exc)
        return refused
    if not keys:  # a decoy "match" is impossible without the decoy, but never accept one
        return refused
    try:
        events = provider.parse(json.loads(body))
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        log.warning("malformed %s webhook for tenant %s: %s", provider.name, tenant_id, exc)
        return 400, {"error": "malformed delivery"}
    try:
        stored = store_events(config.engine, tenant_id, events, body)
    except Exception as exc:  # nothing was committed: the provider's retry redoes it
        log.error(
            "could not store a %s webhook for tenant %s: %s",
            provider.name,
            tenant_id,
            type(exc).__name__,
        )
        return 503, {"error": "temporarily unable to process the delivery; retry later"}
    log.info(
        "%s webhook for tenant %s: %d new, %d duplicate events",
        provider.name,
        tenant_id,
        stored.new,
        stored.duplicates,
    )
    return 200, {"received": True, "new": stored.new, "duplicates": stored.duplicates}


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, or _TooLarge as soon as it is known to pass `limit` (nothing more is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def build_receiver(config: ReceiverConfig) -> Starlette:
    """The Starlette app of the webhook receiver; its lifespan runs the emitter."""
    emitter = Emitter(config.engine, config.sink) if config.run_emitter else None

    def endpoint(provider: _Provider) -> Callable[[Request], Awaitable[Response]]:
        async def receive(request: Request) -> Response:
            try:
                body = await _read_body(request, config.max_body_bytes)
            except _TooLarge:
                # Connection: close makes the server drop the rest instead of draining it
                return JSONResponse(
                    {"error": "payload too large"}, status_code=413, headers={"Connection": "close"}
                )
            except ClientDisconnect:
                return Response(status_code=400)
            status, answer = await run_in_threadpool(
                handle_delivery,
                config,
                provider,
                request.path_params["tenant"],
                body,
                request.headers.get(provider.header),
            )
            if status == 200 and emitter is not None and answer.get("new"):
                emitter.wake()
            return JSONResponse(answer, status_code=status)

        return receive

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if emitter is not None:
            emitter.start()
        try:
            yield
        finally:
            if emitter is not None:
                await run_in_threadpool(emitter.stop)

    return Starlette(
        routes=[
            Route("/webhooks/stripe/{tenant}", endpoint(STRIPE), methods=["POST"]),
            Route("/webhooks/gocardless/{tenant}", endpoint(GOCARDLESS), methods=["POST"]),
        ],
        lifespan=lifespan,
    )
