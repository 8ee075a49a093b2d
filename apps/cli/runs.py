"""`recon runs list|show`: a tenant's run history, as tables for people or JSON for scripts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Column, Table
from rich.text import Text

from apps.cli.context import console, runtime
from recon.redaction import redact

if TYPE_CHECKING:
    from tasks.run_history import RunRecord

app = typer.Typer(help="Run history: status, window, sources, duration, counts, error.")

_SHORT = {"gocardless": "gc", "stripe": "str", "whmcs": "whmcs", "bank": "bank"}
_STYLE = {"completed": "green", "failed": "red", "crashed": "red", "stuck": "yellow"}


def _duration(record: RunRecord) -> str:
    seconds = record.duration_seconds
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{hours}h{minutes:02d}m{rest:02d}s" if hours else f"{minutes}m{rest:02d}s"
    return text + (" so far" if record.status == "running" else "")


def _status(record: RunRecord) -> str:
    status = record.shown_status
    style = _STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _headline_counts(counts: dict[str, Any]) -> str:
    keys = (("transactions", "tx"), ("allocations_auto", "auto"), ("exceptions", "exc"))
    return ", ".join(f"{counts[key]} {label}" for key, label in keys if key in counts) or "-"


def _nested(value: Any) -> str:
    """A count as text: a group of counts one `name: figures` line each."""
    if not isinstance(value, dict):
        return str(value)
    lines = []
    for name, inner in sorted(value.items()):
        if isinstance(inner, dict):
            inner = ", ".join(f"{k} {v}" for k, v in sorted(inner.items()))
        lines.append(f"{name}: {inner}")
    return "\n".join(lines)


def _emit_json(document: object) -> None:
    typer.echo(json.dumps(document, sort_keys=True))


@app.command("list")
def list_command(
    tenant: Annotated[str, typer.Option(help="The tenant's id.")],
    status: Annotated[
        str | None,
        typer.Option(help="Only runs in this state: running, completed, failed, crashed, stuck."),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, for scripts.")] = False,
) -> None:
    """List a tenant's runs, newest first; stuck runs (writer gone) are shown as such."""
    from recon.db.tenancy import admin_session
    from recon.tenants import get_tenant
    from tasks.run_history import list_runs

    engine = runtime().checked_engine()
    with admin_session(engine) as session:
        get_tenant(session, tenant)
    records = list_runs(engine, tenant, status=status, limit=limit)
    if as_json:
        _emit_json([record.as_json() for record in records])
        return
    if not records:
        if status:
            console.print(f"no {status} runs for tenant {tenant}")
        else:
            console.print(f"no runs for tenant {tenant} yet; start one with `recon run`")
        return
    table = Table(
        Column("run", no_wrap=True),
        Column("status", no_wrap=True),
        Column("window", no_wrap=True),
        "sources",
        Column("started (UTC)", no_wrap=True),
        Column("took", no_wrap=True),
        "counts",
    )
    for record in records:
        shown = _status(record)
        if record.kind != "reconcile":
            shown += f" ({record.kind})"
        table.add_row(
            record.id[:8],
            shown,
            f"{record.window_from}..{record.window_to}",
            ",".join(_SHORT.get(s, s) for s in record.sources),
            record.started_at.strftime("%m-%d %H:%M"),
            _duration(record),
            _headline_counts(record.counts),
        )
    console.print(table)


@app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="The run's id (or a unique prefix).")],
    tenant: Annotated[str, typer.Option(help="The tenant's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, for scripts.")] = False,
) -> None:
    """Show one run: status, window, sources, duration, every count and sum, and its error."""
    from recon.db.tenancy import admin_session
    from recon.tenants import get_tenant
    from tasks.run_history import get_run

    engine = runtime().checked_engine()
    with admin_session(engine) as session:
        get_tenant(session, tenant)
    record = get_run(engine, tenant, run_id)
    if as_json:
        _emit_json(record.as_json())
        return
    table = Table("field", "value", title=f"run {record.id}", show_header=False)
    table.add_row("tenant", record.tenant_id)
    table.add_row("kind", record.kind)
    table.add_row("status", _status(record))
    if record.stuck:
        table.add_row(
            "note",
            "marked running but no process holds the tenant's writer lock (or it started long "
            "ago); the next run of the tenant closes it as crashed",
        )
    table.add_row("window", f"{record.window_from}..{record.window_to}")
    table.add_row("sources", ", ".join(record.sources) or "-")
    table.add_row("started", record.started_at.isoformat(timespec="seconds"))
    finished = record.finished_at.isoformat(timespec="seconds") if record.finished_at else "-"
    table.add_row("finished", finished)
    table.add_row("duration", _duration(record))
    if record.flow_run_id:
        table.add_row("prefect flow run", record.flow_run_id)
    for key, value in sorted(record.counts.items()):
        table.add_row(f"count: {key}", Text(_nested(value)))
    for key, value in sorted(record.sums.items()):
        table.add_row(f"sum: {key}", Text(json.dumps(value, sort_keys=True)))
    if record.error:
        table.add_row("error", Text(redact(record.error), style="red"))
    console.print(table)
