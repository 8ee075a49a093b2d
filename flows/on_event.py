"""The `on-provider-event` flow: what the event-triggered deployment runs when a verified
provider webhook (a paid payout, a refunded charge...) says a window's money changed."""

from __future__ import annotations

import datetime as dt

from prefect import flow, get_run_logger

from flows.outcome import RunOutcome
from flows.reconcile import reconcile
from recon.redaction import redact_exceptions


@flow(name="on-provider-event")
@redact_exceptions
def on_provider_event(
    tenant: str, date_from: dt.date, date_to: dt.date, event_id: str = "", provider: str = ""
) -> RunOutcome:
    """Reconcile the affected window, fetching fresh pages for the provider that changed."""
    get_run_logger().info(
        "%s event %s changed %s..%s of tenant %s", provider, event_id, date_from, date_to, tenant
    )
    sources = {"stripe": ["stripe", "bank", "whmcs"], "gocardless": ["gocardless", "bank", "whmcs"]}
    return reconcile(
        tenant=tenant,
        date_from=date_from,
        date_to=date_to,
        sources=sources.get(provider),
        refetch=True,
    )
