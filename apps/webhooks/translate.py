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


# Dates a provider can mean: anything else is a malformed event (and must not overflow later).
EARLIEST_DAY = dt.date(2000, 1, 1)
LATEST_DAY = dt.date(2200, 1, 1)
MAX_EVENT_ID = 255
MAX_EVENT_TYPE = 100


def _window(day: dt.date) -> tuple[dt.date, dt.date]:
    margin = dt.timedelta(days=WINDOW_MARGIN_DAYS)
    return day - margin, day + margin


def _checked_day(day: dt.date, event_id: str) -> dt.date:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(f"event {event_id} has a date out of range")
    return day


def _text(value: object, what: str, limit: int) -> str:
    """A short identifier the database can store on every backend (no NUL, bounded length)."""
    if not isinstance(value, str) or not value or len(value) > limit or "\x00" in value:
        raise ValueError(f"{what} must be a non-empty string of at most {limit} characters")
    return value


def _stripe_day(event: dict[str, Any]) -> dt.date:
    obj = (event.get("data") or {}).get("object") or {}
    stamp = obj.get("arrival_date") or obj.get("created") or event.get("created") or 0
    if isinstance(stamp, bool) or not isinstance(stamp, int | float):
        raise ValueError("a Stripe event's dates must be unix timestamps")
    try:
        day = dt.datetime.fromtimestamp(int(stamp), dt.UTC).date()
    except (OverflowError, OSError, ValueError):
        raise ValueError("a Stripe event has a timestamp out of range") from None
    return _checked_day(day, str(event.get("id")))


def stripe_events(body: dict[str, Any]) -> list[ProviderEvent]:
    """The single event of a Stripe delivery; ValueError when it has no id or type."""
    if not isinstance(body, dict):
        raise ValueError("a Stripe delivery is one event object")
    event_id = _text(body.get("id"), "a Stripe event id", MAX_EVENT_ID)
    event_type = _text(body.get("type"), "a Stripe event type", MAX_EVENT_TYPE)
    return [ProviderEvent("stripe", event_id, event_type, _stripe_day(body), body)]


def gocardless_events(body: dict[str, Any]) -> list[ProviderEvent]:
    """The events of a GoCardless delivery (a batch); ValueError when malformed."""
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        raise ValueError("a GoCardless delivery needs an events list")
    parsed = []
    for event in events:
        if not isinstance(event, dict):
            raise ValueError("every GoCardless event is an object")
        event_id = _text(event.get("id"), "a GoCardless event id", MAX_EVENT_ID)
        created = str(event.get("created_at") or "")[:10]
        try:
            day = dt.date.fromisoformat(created)
        except ValueError:
            raise ValueError(f"GoCardless event {event_id} has no valid created_at") from None
        kind = _text(
            f"{event.get('resource_type')}.{event.get('action')}",
            "a GoCardless event type",
            MAX_EVENT_TYPE,
        )
        parsed.append(
            ProviderEvent("gocardless", event_id, kind, _checked_day(day, event_id), event)
        )
    return parsed


def reconcile_request(tenant_id: str, event: ProviderEvent) -> ReconcileRequest | None:
    """The window to re-run for `event`, or None when the event changes nothing we reconcile."""
    if event.event_type not in TRIGGERS.get(event.provider, frozenset()):
        return None
    date_from, date_to = _window(event.occurred_on)
    return ReconcileRequest(
        tenant_id, event.provider, event.event_id, event.event_type, date_from, date_to
    )
