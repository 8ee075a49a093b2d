"""`webhook_events` as the receiver's outbox: store verified events, emit them until taken.

A delivery is acknowledged only after its events are committed here, each once per
(tenant, provider, event id), whether or not Prefect is up. Ids are kept forever: GoCardless
signs no timestamp, so a captured delivery stays valid and only the stored id stops its replay.
The emitter hands each unprocessed event that asks for a reconciliation to the sink and sets
`processed_at` only once the sink returned; a failure leaves the row for a later pass, with
exponential backoff. Rows are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
receivers can share a database; a process that dies mid-emit leaves the row unprocessed, and the
next pass (in this or a restarted process) emits it again under the same Prefect event id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, Engine, Table, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from apps.webhooks.translate import ProviderEvent, ReconcileRequest, reconcile_request
from recon.db.base import utcnow
from recon.db.models import Tenant, WebhookEvent
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import parse_settings

log = logging.getLogger("apps.webhooks")

BATCH_SIZE = 50
MAX_BACKOFF_SECONDS = 300.0
POLL_SECONDS = 2.0
MAX_PAUSE_SECONDS = 30.0
LINGER_SECONDS = 0.25


class EventSink(Protocol):
    """Where reconcile requests go, a batch at a time: Prefect events in production; raises
    unless every request of the batch was delivered."""

    def __call__(self, requests: Sequence[ReconcileRequest]) -> None: ...


@dataclass(frozen=True)
class Stored:
    """What one delivery did to the outbox."""

    new: int
    duplicates: int
    to_emit: int


def store_events(
    engine: Engine, tenant_id: str, events: Sequence[ProviderEvent], body: bytes
) -> Stored:
    """Record each event once, in one transaction; a redelivered id changes nothing.

    "New" is decided from the row `INSERT ... ON CONFLICT DO NOTHING RETURNING id` gives back
    (psycopg 3 reports rowcount -1 for that statement, so rowcount cannot tell)."""
    table = WebhookEvent.__table__
    assert isinstance(table, Table)
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    digest = hashlib.sha256(body).hexdigest()
    now = utcnow()
    new = duplicates = to_emit = 0
    with tenant_session(engine, tenant_id) as session:
        for event in events:
            request = reconcile_request(tenant_id, event)
            statement = (
                dialect.insert(table)
                .values(
                    tenant_id=tenant_id,
                    provider=event.provider,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    payload_sha256=digest,
                    received_at=now,
                    # an event that starts nothing has nothing to emit: processed on arrival
                    processed_at=None if request else now,
                    window_from=request.date_from if request else None,
                    window_to=request.date_to if request else None,
                    emit_attempts=0,
                )
                .on_conflict_do_nothing(index_elements=["tenant_id", "provider", "event_id"])
                .returning(table.c.id)
            )
            if session.execute(statement).first() is None:
                duplicates += 1
                continue
            new += 1
            to_emit += request is not None
    return Stored(new, duplicates, to_emit)


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(2.0 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def _webhook_tenants(engine: Engine) -> list[str]:
    with admin_session(engine) as session:
        tenants = session.scalars(select(Tenant).where(Tenant.active.is_(True))).all()
        return [t.id for t in tenants if parse_settings(t.settings).webhooks_enabled]


@dataclass(frozen=True)
class EmitPass:
    """What one pass of the emitter did."""

    emitted: int
    failed: int


def emit_pending(engine: Engine, sink: EventSink, *, resume: bool = False) -> EmitPass:
    """Emit the due, unprocessed events of every tenant (with `resume`, those backing off too),
    up to BATCH_SIZE per tenant and sink call; stop at the first failure."""
    emitted = 0
    for tenant_id in _webhook_tenants(engine):
        with tenant_session(engine, tenant_id) as session:
            now = utcnow()
            due: list[ColumnElement[bool]] = [
                WebhookEvent.processed_at.is_(None),
                WebhookEvent.window_from.is_not(None),
            ]
            if not resume:
                due.append(
                    or_(WebhookEvent.next_emit_at.is_(None), WebhookEvent.next_emit_at <= now)
                )
            rows = session.scalars(
                select(WebhookEvent)
                .where(*due)
                .order_by(WebhookEvent.id)
                .limit(BATCH_SIZE)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                continue
            requests = [
                ReconcileRequest(
                    tenant_id,
                    row.provider,
                    row.event_id,
                    row.event_type,
                    row.window_from,
                    row.window_to,
                )
                for row in rows
                if row.window_from is not None and row.window_to is not None
            ]
            try:
                sink(requests)
            except Exception as exc:  # the rows stay unprocessed: a later pass retries them
                error = str(exc)[:200] or type(exc).__name__
                for row in rows:
                    row.emit_attempts += 1
                    row.next_emit_at = utcnow() + _backoff(row.emit_attempts)
                    row.last_emit_error = error
                log.warning("%d events of tenant %s not emitted: %s", len(rows), tenant_id, error)
                return EmitPass(emitted, len(rows))
            done = utcnow()
            for row in rows:
                row.emit_attempts += 1
                row.processed_at = done
                row.last_emit_error = None
            emitted += len(rows)
    return EmitPass(emitted, 0)


class Emitter:
    """A thread that runs `emit_pending` when woken and every `poll` seconds, until stopped."""

    def __init__(self, engine: Engine, sink: EventSink, poll: float = POLL_SECONDS) -> None:
        self._engine, self._sink, self._poll = engine, sink, poll
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-emitter", daemon=True)

    def start(self) -> None:
        """Start the loop; it first resumes whatever a previous process left unprocessed."""
        self._thread.start()

    def wake(self) -> None:
        """Ask for a pass now (a delivery stored something to emit)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current pass and end the loop."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        failures, resume = 0, True  # the first pass resumes what a previous process left
        while not self._stop.is_set():
            self._wake.clear()
            try:
                result = emit_pending(self._engine, self._sink, resume=resume)
            except Exception as exc:  # the database is down: try again later
                log.error("webhook emitter pass failed: %s", type(exc).__name__)
                result = EmitPass(0, 1)
            resume = False
            failures = failures + 1 if result.failed else 0
            if failures:  # Prefect (or the database) is down: new deliveries do not wake us
                self._stop.wait(min(_backoff(failures).total_seconds(), MAX_PAUSE_SECONDS))
            # a full batch may leave more: go on at once; else wait for a delivery (or the poll),
            # then linger a moment so that one pass takes the whole burst
            elif result.emitted < BATCH_SIZE and self._wake.wait(self._poll):
                self._stop.wait(LINGER_SECONDS)
