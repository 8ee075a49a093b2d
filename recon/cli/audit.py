"""`recon audit`: verify the hash-chained audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from recon.cli.context import console, runtime
from recon.errors import ReconError

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


class AuditChainBrokenError(ReconError):
    """A tenant's audit chain does not verify."""

    exit_code = 7


@app.command()
def verify(
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant (default: every tenant).")
    ] = None,
) -> None:
    """Walk each tenant's chain and name the first broken entry."""
    from recon.audit import verify_chain
    from recon.db.tenancy import admin_session, tenant_session
    from recon.tenants import get_tenant, list_tenants

    engine = runtime().checked_engine()
    with admin_session(engine) as session:
        tenant_ids = (
            [get_tenant(session, tenant).id] if tenant else [t.id for t in list_tenants(session)]
        )
    broken = []
    for tenant_id in tenant_ids:
        with tenant_session(engine, tenant_id) as session:
            report = verify_chain(session, tenant_id)
        if report.ok:
            console.print(
                f"{tenant_id}: {report.entries} entries verified, head {report.head_hash[:16]}"
            )
        else:
            console.print(f"[red]{tenant_id}: chain broken[/red]")
            broken.append(report)
    if broken:
        first = broken[0].first_break
        raise AuditChainBrokenError(f"audit chain broken at {first}")
    if not tenant_ids:
        console.print("no tenants, nothing to verify")
