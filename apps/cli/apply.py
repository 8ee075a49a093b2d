"""`recon apply`: record a tenant's automatic allocations in WHMCS, or list them (--dry-run)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from apps.cli.context import console, current_actor, runtime
from recon.errors import ConfigError


def apply_command(
    tenant: Annotated[str, typer.Option(help="The tenant's id.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be applied; change nothing.")
    ] = False,
) -> None:
    """Apply automatic allocations to WHMCS with AddInvoicePayment, each exactly once.

    Holds the tenant's writer lock while it writes: exit 10 when a run or another apply of the
    tenant is writing."""
    from connectors.whmcs import whmcs_client_for
    from recon.db.tenancy import admin_session
    from recon.tenant_admin import active_tenant
    from recon.tenants import parse_settings
    from tasks.apply import ApplyReport, apply_locked, apply_payments, describe

    rt = runtime()
    engine = rt.checked_engine()
    with admin_session(engine) as session:
        settings = parse_settings(active_tenant(session, tenant).settings)
    if settings.whmcs.base_url is None:
        raise ConfigError(f"tenant {tenant!r} has no WHMCS base URL to apply payments to")
    with whmcs_client_for(tenant, settings.whmcs, rt.secrets) as client:
        report: ApplyReport
        if dry_run:
            report = apply_payments(
                engine, tenant, client, default_gateway=settings.whmcs.gateway, dry_run=True
            )
        else:
            report = apply_locked(
                engine,
                tenant,
                client,
                default_gateway=settings.whmcs.gateway,
                actor=current_actor(),
            )
    table = Table("invoice", "transid", "amount (minor)", "currency", "gateway", "date",
                  title="would be applied" if dry_run else "planned")  # fmt: skip
    for row in describe(report.planned):
        table.add_row(*row.values())
    console.print(table)
    if not dry_run:
        console.print(
            f"applied {report.applied}, already in WHMCS {report.already_in_whmcs}, "
            f"refused by WHMCS {len(report.failed)} (now exceptions for a person)"
        )
