"""The `daily` flow: yesterday, in the tenant's own timezone, for the scheduled deployment."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import flow

from connectors.runtime import Runtime
from flows.outcome import RunOutcome
from flows.reconcile import reconcile
from recon.db.tenancy import admin_session
from recon.errors import ConfigError
from recon.redaction import redact_exceptions
from recon.tenant_admin import active_tenant
from recon.tenants import parse_settings


def yesterday_in(timezone: str, now: dt.datetime | None = None) -> dt.date:
    """Yesterday's date where the tenant keeps its books."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone {timezone!r} is not an IANA timezone name") from None
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(zone)
    return moment.date() - dt.timedelta(days=1)


@flow(name="daily")
@redact_exceptions
def daily(tenant: str, lookback_days: int = 3) -> RunOutcome:
    """Reconcile the last `lookback_days` days up to yesterday (late bookings are caught up;
    the overlap costs nothing, re-running a window gives the same tables)."""
    with admin_session(Runtime().checked_engine()) as session:
        settings = parse_settings(active_tenant(session, tenant).settings)
    end = yesterday_in(settings.timezone)
    return reconcile(
        tenant=tenant, date_from=end - dt.timedelta(days=lookback_days - 1), date_to=end
    )
