"""`recon run`: one reconciliation run of a tenant for a date range, as a Prefect flow (started
by `flows.launch`, which the UI's re-run form uses too; `run_flow` and `HEARTBEAT_SECONDS` are
re-exported from there for the other commands)."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from apps.cli.context import console, runtime
from flows.launch import HEARTBEAT_SECONDS, reconcile_here, run_flow, start_local_api
from recon.db.tenancy import admin_session
from recon.errors import ConfigError
from recon.money import format_amount
from recon.tenant_admin import active_tenant

if TYPE_CHECKING:
    from flows.outcome import RunOutcome

__all__ = ["HEARTBEAT_SECONDS", "parse_day", "print_summary", "run_command", "run_flow"]


def parse_day(value: str, option: str) -> dt.date:
    """An ISO date, or a ConfigError naming the option."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date; use YYYY-MM-DD") from None


def print_summary(result: RunOutcome) -> None:
    """The run's figures as two small tables."""
    sources = Table("source", "pages", "from", "loaded", "quarantined", title="sources")
    for name, figures in result.sources.items():
        sources.add_row(
            name,
            str(figures.pages),
            "replay" if figures.replayed else "provider",
            str(figures.loaded),
            str(figures.quarantined),
        )
    console.print(sources)
    outcome = Table("figure", "value", title=f"run {result.run_id}")
    for label, value in (
        ("transactions reconciled", result.transactions),
        ("automatic allocations", result.allocations_auto),
        ("suggestions for review", result.allocations_review),
        ("exceptions for a person", result.exceptions),
    ):
        outcome.add_row(label, str(value))
    for currency, minor in sorted(result.allocated_minor.items()):
        outcome.add_row(f"allocated automatically ({currency})", format_amount(minor, currency))
    if result.apply is not None:
        outcome.add_row("applied to WHMCS", str(result.apply.applied))
    anchor = result.audit_anchor
    if anchor:
        outcome.add_row("audit chain head", f"seq {anchor['seq']}, {anchor['head_hash'][:16]}")
    console.print(outcome)
    if anchor:  # one line, to keep outside the database: `recon audit verify --anchor FILE`
        line = f"audit anchor: {json.dumps(anchor, sort_keys=True)}"
        console.print(line, soft_wrap=True, markup=False, highlight=False)


def run_command(
    tenant: Annotated[str, typer.Option(help="The tenant's id.")],
    date_from: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    date_to: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD.")],
    source: Annotated[
        list[str] | None,
        typer.Option(help="Only these sources: whmcs, bank, stripe, gocardless (repeat)."),
    ] = None,
    refetch: Annotated[
        bool, typer.Option(help="Call the providers again instead of replaying landed pages.")
    ] = False,
) -> None:
    """Reconcile a tenant over a date range (extract, validate, load, match, store)."""
    start, end = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if start > end:
        raise ConfigError(f"--from {start} is after --to {end}")
    # Prefect's temporary server boots on the other core during the checks below (and is
    # stopped with this process if one of them fails).
    start_local_api()
    rt = runtime()
    with admin_session(rt.checked_engine()) as session:
        active_tenant(session, tenant)
    from recon.audit import resolve_chain_key

    resolve_chain_key(rt.secrets)  # stop before the flow starts when the audit key is missing
    result = reconcile_here(
        tenant,
        start,
        end,
        sources=source or None,
        refetch=refetch,
        announce=lambda: console.status(f"reconciling {tenant} {start}..{end}", spinner="dots"),
    )
    print_summary(result)
