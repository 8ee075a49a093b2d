"""Reconcile requests as Prefect events, which the event-triggered deployment listens for.

Events are POSTed to the Prefect API's `/events` endpoint and count as delivered only when it
answers 2xx, unlike `prefect.events.emit_event`, whose background worker drops events silently
when the API is down. The event id is derived from the provider event, and Prefect stores an
event id once: emitting again after a crash between the emit and `processed_at` is harmless.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Sequence

import httpx
from prefect.events import Event

from apps.webhooks.translate import RECONCILE_EVENT, ReconcileRequest
from recon.errors import ReconError

_EVENT_NAMESPACE = uuid.UUID("5b7cbd8e-4f4e-4b8a-9d55-3a2f6c1f0e11")
EMIT_TIMEOUT_SECONDS = 10.0


class EventNotEmittedError(ReconError):
    """Prefect did not take the event (unreachable, or it refused it)."""


def event_id_of(provider: str, event_id: str) -> uuid.UUID:
    """The Prefect event id of a provider event: the same for every redelivery."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{provider}:{event_id}")


def reconcile_event(request: ReconcileRequest, occurred: dt.datetime | None = None) -> Event:
    """The `recon.provider.changed` event of `request`."""
    return Event.model_validate(
        {
            "occurred": occurred or dt.datetime.now(dt.UTC),
            "event": RECONCILE_EVENT,
            "resource": {
                "prefect.resource.id": f"recon.tenant.{request.tenant_id}",
                "prefect.resource.name": request.tenant_id,
                "recon.provider": request.provider,
            },
            "payload": request.as_payload(),
            "id": event_id_of(request.provider, request.event_id),
        }
    )


class PrefectEventSink:
    """Sends reconcile requests to one Prefect API; raises EventNotEmittedError unless taken."""

    def __init__(
        self,
        api_url: str,
        *,
        api_key: str | None = None,
        auth_string: str | None = None,
        timeout: float = EMIT_TIMEOUT_SECONDS,
    ) -> None:
        headers = {}
        if auth_string:
            token = base64.b64encode(auth_string.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        elif api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._url = api_url.rstrip("/") + "/events"
        self._client = httpx.Client(headers=headers, timeout=timeout)

    def __call__(self, requests: Sequence[ReconcileRequest]) -> None:
        """Emit `recon.provider.changed` for each request and wait for Prefect to take them."""
        events = [reconcile_event(request).model_dump(mode="json") for request in requests]
        try:
            response = self._client.post(self._url, json=events)
        except httpx.HTTPError as exc:
            raise EventNotEmittedError(
                f"the Prefect API is unreachable ({type(exc).__name__})"
            ) from None
        if not response.is_success:
            raise EventNotEmittedError(
                f"the Prefect API refused the event (HTTP {response.status_code})"
            )

    def close(self) -> None:
        """Release the HTTP connections."""
        self._client.close()
