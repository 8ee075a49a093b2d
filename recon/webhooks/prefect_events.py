"""Reconcile requests as Prefect events, which the event-triggered deployment listens for."""

from __future__ import annotations

import uuid

from prefect.events import emit_event

from recon.errors import ReconError
from recon.webhooks.translate import RECONCILE_EVENT, ReconcileRequest

_EVENT_NAMESPACE = uuid.UUID("5b7cbd8e-4f4e-4b8a-9d55-3a2f6c1f0e11")


class EventNotEmittedError(ReconError):
    """Prefect did not take the event (no API configured, or events are disabled)."""


def emit_reconcile_request(request: ReconcileRequest) -> None:
    """Emit `recon.provider.changed` for the tenant; the id is derived from the provider event,
    so a provider redelivery that slips past deduplication is the same Prefect event."""
    event = emit_event(
        event=RECONCILE_EVENT,
        resource={
            "prefect.resource.id": f"recon.tenant.{request.tenant_id}",
            "prefect.resource.name": request.tenant_id,
            "recon.provider": request.provider,
        },
        payload=request.as_payload(),
        id=uuid.uuid5(_EVENT_NAMESPACE, f"{request.provider}:{request.event_id}"),
    )
    if event is None:
        raise EventNotEmittedError(
            "Prefect did not accept the event; set PREFECT_API_URL to the Prefect server"
        )
