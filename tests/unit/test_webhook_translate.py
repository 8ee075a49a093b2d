"""Provider events to reconcile requests: what a validly signed but absurd event becomes."""

from __future__ import annotations

import datetime as dt

import pytest

from apps.webhooks.translate import gocardless_events, reconcile_request, stripe_events


def stripe(created: object, event_id: object = "evt_1") -> dict[str, object]:
    return {"id": event_id, "type": "payout.paid", "created": created, "data": {"object": {}}}


def test_a_stripe_payout_asks_for_its_window() -> None:
    (event,) = stripe_events(stripe(1_798_761_600))
    request = reconcile_request("acme", event)
    assert request is not None
    assert (request.date_from, request.date_to) == (dt.date(2026, 12, 29), dt.date(2027, 1, 4))


@pytest.mark.parametrize(
    "body",
    [
        stripe(1e20),
        stripe(-1e20),
        stripe(253_402_300_799),
        stripe(True),
        stripe("1798761600"),
        stripe(1_798_761_600, "x" * 256),
        stripe(1_798_761_600, "evt_\x00"),
        stripe(1_798_761_600, 42),
    ],
    ids=["1e20", "-1e20", "year-9999", "bool", "text", "long-id", "nul", "number-id"],
)
def test_absurd_stripe_events_are_value_errors(body: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        stripe_events(body)


@pytest.mark.parametrize("created", ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "soon"])
def test_absurd_gocardless_dates_are_value_errors(created: str) -> None:
    body = {"events": [{"id": "EV1", "created_at": created, "resource_type": "payouts"}]}
    with pytest.raises(ValueError):
        gocardless_events(body)
