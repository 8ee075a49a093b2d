"""`recon bank`: connect a tenant's bank accounts through GoCardless, and see their consent.

`recon bank connect --country CC --institution ID` prints the consent link; once the account
holder has allowed access, `recon bank connect --requisition ID` (or `recon bank link`) stores the
accounts as the tenant's source accounts. Each command parses its arguments, takes the tenant's
provider clients from `connectors.bank_access` (as the UI's Connections page does), calls one
function of `recon.review.connections` and prints its typed result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from apps.cli.context import acting_user, console, runtime
from connectors.bank_access import TenantBank, probes
from recon.errors import ConfigError, ReconError

if TYPE_CHECKING:
    from recon.review.connection_views import ConnectionStatus

app = typer.Typer(
    help="Bank connections (GoCardless): consent links, linked accounts, consent expiry.",
    no_args_is_help=True,
)

Tenant = Annotated[str, typer.Option("--tenant", help="The tenant's id.")]
AsOption = Annotated[
    str | None, typer.Option("--as", help="Act as this user (else RECON_USER); must be an admin.")
]


class ConnectivityFailedError(ReconError):
    """At least one provider did not answer a connectivity check (exit 9, as a provider error)."""

    exit_code = 9


JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]


# -- printing --------------------------------------------------------------------------------------


def _json(value: Any) -> None:
    document = _plain(value) if dataclasses.is_dataclass(value) else value
    typer.echo(json.dumps(document, sort_keys=True, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _day(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


# -- commands --------------------------------------------------------------------------------------


@app.command("institutions")
def institutions_command(
    tenant: Tenant,
    country: Annotated[str, typer.Option(help="Two-letter country code, e.g. GB.")],
    as_json: JsonOption = False,
    as_: AsOption = None,
) -> None:
    """List the banks of a country the tenant can connect."""
    from recon.review.connections import list_institutions

    rt = runtime()
    engine = rt.checked_engine()
    with TenantBank(engine, tenant, rt.secrets) as client:
        found = list_institutions(engine, acting_user(as_), tenant, client, country)
    if as_json:
        _json([dataclasses.asdict(i) for i in found])
        return
    table = Table("institution", "name", "BIC", "history days", "access days")
    for item in found:
        table.add_row(
            item.id,
            item.name,
            item.bic,
            str(item.transaction_total_days),
            str(item.max_access_valid_for_days),
        )
    console.print(table)


@app.command("connect")
def connect_command(
    tenant: Tenant,
    country: Annotated[str | None, typer.Option(help="Two-letter country code.")] = None,
    institution: Annotated[str | None, typer.Option(help="The bank's institution id.")] = None,
    redirect: Annotated[
        str | None, typer.Option(help="Where the bank sends the account holder afterwards.")
    ] = None,
    history_days: Annotated[
        int | None, typer.Option(help="Days of history to read (default: all the bank gives).")
    ] = None,
    access_days: Annotated[int, typer.Option(help="Days the consent lasts.")] = 90,
    requisition: Annotated[
        str | None, typer.Option(help="Finish a started connection: store its accounts.")
    ] = None,
    as_json: JsonOption = False,
    as_: AsOption = None,
) -> None:
    """Start a bank connection (prints the consent link), or finish one with --requisition."""
    if requisition:
        link_command(tenant, requisition, as_json, as_)
        return
    if not country or not institution:
        raise ConfigError("pass --country and --institution to start, or --requisition to finish")
    from recon.review.connections import DEFAULT_REDIRECT, start_connection

    rt = runtime()
    engine = rt.checked_engine()
    with TenantBank(engine, tenant, rt.secrets) as client:
        started = start_connection(
            engine,
            acting_user(as_),
            tenant,
            client,
            country=country,
            institution_id=institution,
            redirect=redirect or DEFAULT_REDIRECT,
            max_historical_days=history_days,
            access_valid_for_days=access_days,
        )
    if as_json:
        _json(started)
        return
    console.print(
        f"requisition {started.requisition_id} started for {started.institution_id} "
        f"({started.max_historical_days} days of history, consent for "
        f"{started.access_valid_for_days} days)",
        highlight=False,
    )
    console.print("send the account holder to this consent link:", highlight=False)
    typer.echo(started.link)
    typer.echo(  # unwrapped, so it can be copied whole
        f"then finish with: recon bank connect --tenant {tenant} --requisition "
        f"{started.requisition_id}"
    )


@app.command("link")
def link_command(
    tenant: Tenant,
    requisition: Annotated[str, typer.Option(help="The requisition id `connect` printed.")],
    as_json: JsonOption = False,
    as_: AsOption = None,
) -> None:
    """Store a linked requisition's accounts as the tenant's source accounts (idempotent)."""
    from recon.review.connections import link_accounts

    rt = runtime()
    engine = rt.checked_engine()
    with TenantBank(engine, tenant, rt.secrets) as client:
        result = link_accounts(engine, acting_user(as_), tenant, client, requisition)
    if as_json:
        _json(result)
        return
    for account in result.accounts:
        console.print(
            f"{account.change}: {account.external_id} ({account.name or '-'}, "
            f"{account.currency or 'currency unknown'}), consent until "
            f"{_day(account.consent_expires_at)}",
            highlight=False,
        )


@app.command("status")
def status_command(tenant: Tenant, as_json: JsonOption = False, as_: AsOption = None) -> None:
    """Each bank account: consent expiry (warned 14 days before), last sync, quota left today."""
    from recon.review.connections import connection_status

    status = connection_status(runtime().checked_engine(), acting_user(as_), tenant)
    if as_json:
        _json(status)
        return
    _print_status(status)


def _print_status(status: ConnectionStatus) -> None:
    if not status.accounts:
        console.print(
            f"tenant {status.tenant_id} has no bank account yet; start with `recon bank connect`"
        )
        return
    table = Table("account", "name", "currency", "consent until", "consent", "last sync", "quota")
    for a in status.accounts:
        table.add_row(
            a.external_id,
            a.name or "-",
            a.currency or "-",
            _day(a.consent_expires_at),
            a.consent.value,
            _day(a.last_sync_at),
            ", ".join(f"{q.scope} {q.left}/{q.limit}" for q in a.quota),
        )
    console.print(table)
    for basis in sorted({a.consent_basis for a in status.accounts if a.consent_basis}):
        console.print(f"consent dates: {basis}", highlight=False)
    for warning in status.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@app.command("check")
def check_command(tenant: Tenant, as_json: JsonOption = False, as_: AsOption = None) -> None:
    """Check the tenant's WHMCS, Stripe and GoCardless connectivity (one cheap read each)."""
    from recon.review.connections import check_connectivity

    rt = runtime()
    engine = rt.checked_engine()
    results = check_connectivity(
        engine, acting_user(as_), tenant, probes(engine, tenant, rt.secrets)
    )
    if as_json:
        _json([dataclasses.asdict(r) for r in results])
    else:
        for result in results:
            mark = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
            console.print(f"{mark} {result.name}: {result.detail}", highlight=False)
        if not results:
            console.print("no provider is configured for this tenant")
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise ConnectivityFailedError(
            f"{len(failed)} of {len(results)} connectivity checks failed: {', '.join(failed)}"
        )
