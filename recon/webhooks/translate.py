"""What a provider event means for reconciliation: which window of which tenant to re-run.

Only events that change money a reconciliation looks at become Prefect events; the rest are
acknowledged and recorded (so redelivery stays a no-op) but start nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

RECONCILE_EVENT = "recon.provider.changed"
WINDOW_MARGIN_DAYS = 3


@dataclass(frozen=True)
class ProviderEvent:
    """One provider event, as much as the receiver needs of it."""

    provider: str
    event_id: str
    event_type: str
    occurred_on: dt.date
    payload: dict[str, Any]


@dataclass(frozen=True)
class ReconcileRequest:
    """A request to reconcile `tenant` over a window, for the event-triggered deployment."""

    tenant_id: str
    provider: str
    event_id: str
    event_type: str
    date_from: dt.date
    date_to: dt.date

    def as_payload(self) -> dict[str, str]:
        """The Prefect event payload the deployment's parameters template reads."""
        return {
            "tenant": self.tenant_id,
            "provider": self.provider,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
        }


STRIPE_TRIGGERS = frozenset(
    {
        "payout.paid",
        "payout.failed",
        "charge.succeeded",
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.closed",
    }
)
GOCARDLESS_TRIGGERS = frozenset(
    {
        "payouts.paid",
        "payments.confirmed",
        "payments.paid_out",
        "payments.failed",
        "payments.charged_back",
    }
)
TRIGGERS = {"stripe": STRIPE_TRIGGERS, "gocardless": GOCARDLESS_TRIGGERS}


def _window(day: dt.date) -> tuple[dt.date, dt.date]:
    margin = dt.timedelta(days=WINDOW_MARGIN_DAYS)
    return day - margin, day + margin


def _stripe_day(event: dict[str, Any]) -> dt.date:
    obj = (event.get("data") or {}).get("object") or {}
    stamp = obj.get("arrival_date") or obj.get("created") or event.get("created") or 0
    return dt.datetime.fromtimestamp(int(stamp), dt.UTC).date()


def stripe_events(body: dict[str, Any]) -> list[ProviderEvent]:
    """The single event of a Stripe delivery; ValueError when it has no id or type."""
    event_id, event_type = body.get("id"), body.get("type")
    if not isinstance(event_id, str) or not isinstance(event_type, str):
        raise ValueError("a Stripe event needs an id and a type")
    return [ProviderEvent("stripe", event_id, event_type, _stripe_day(body), body)]


def gocardless_events(body: dict[str, Any]) -> list[ProviderEvent]:
    """The events of a GoCardless delivery (a batch); ValueError when malformed."""
    events = body.get("events")
    if not isinstance(events, list):
        raise ValueError("a GoCardless delivery needs an events list")
    parsed = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise ValueError("every GoCardless event needs an id")
        created = str(event.get("created_at") or "")[:10]
        try:
            day = dt.date.fromisoformat(created)
        except ValueError:
            raise ValueError(f"GoCardless event {event['id']} has no valid created_at") from None
        kind = f"{event.get('resource_type')}.{event.get('action')}"
        parsed.append(ProviderEvent("gocardless", event["id"], kind, day, event))
    return parsed


def reconcile_request(tenant_id: str, event: ProviderEvent) -> ReconcileRequest | None:
    """The window to re-run for `event`, or None when the event changes nothing we reconcile."""
    if event.event_type not in TRIGGERS.get(event.provider, frozenset()):
        return None
    date_from, date_to = _window(event.occurred_on)
    return ReconcileRequest(
        tenant_id, event.provider, event.event_id, event.event_type, date_from, date_to
    )
