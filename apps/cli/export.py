"""`recon export`: the auditor's signed reconciliation report, and `recon export verify`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from apps.cli.context import acting_user, console, runtime
from recon.errors import ConfigError

app = typer.Typer(
    help="The auditor's reconciliation report (signed): recon export --tenant T --from D --to D "
    "--format csv|xlsx|pdf --out PATH, and recon export verify PATH.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _date(value: str | None, option: str) -> dt.date:
    if not value:
        raise ConfigError(f"recon export needs {option} (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


@app.callback()
def export(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="The tenant to report on.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv (a zip), xlsx or pdf.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Where to write the report.")] = None,
    acting: Annotated[
        str | None, typer.Option("--as", help="Who exports (default: RECON_USER).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write the signed reconciliation report of a tenant for a period."""
    if ctx.invoked_subcommand is not None:
        return
    from recon.reports import build_report, write_report
    from recon.reports.canonical import resolve_signing_key

    if not tenant:
        raise ConfigError("recon export needs --tenant")
    if out is None:
        raise ConfigError("recon export needs --out PATH")
    first, last = _date(date_from, "--from"), _date(date_to, "--to")
    if fmt not in ("csv", "xlsx", "pdf"):
        raise ConfigError(f"--format must be csv, xlsx or pdf, not {fmt!r}")
    who = acting_user(acting)
    key = resolve_signing_key(runtime().secrets)  # fail before any work when it is missing
    from recon.audit import resolve_chain_key

    chain_key = resolve_chain_key(runtime().secrets)
    report = build_report(runtime().checked_engine(), who, tenant, first, last, chain_key=chain_key)
    written = write_report(report, fmt, out, key)
    differences = report.differences()
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "path": str(written.path),
                    "format": written.rendering,
                    "digest": written.digest,
                    "signature": written.signature,
                    "key_id": written.key_id,
                    "rows": written.rows,
                    "tie_out_differences": differences,
                }
            )
        )
        return
    console.print(
        f"{tenant} {first}..{last}: wrote {written.rendering} report to {written.path} "
        f"({written.rows.get('allocations', 0):,} allocations); digest {written.digest}, "
        f"signed with key {written.key_id}",
        highlight=False,
    )
    unbalanced = {name: count for name, count in differences.items() if count}
    if unbalanced:
        listed = ", ".join(f"{count} in {name}" for name, count in unbalanced.items())
        console.print(f"tie-out rows with a difference (shown in the report): {listed}")


@app.command()
def verify(
    path: Annotated[Path, typer.Argument(help="A report written by recon export.")],
) -> None:
    """Check a report file: exit 0 when untouched, 16 after any change."""
    from recon.reports import verify_report
    from recon.reports.canonical import resolve_signing_key
    from recon.reports.verify import ReportVerificationError

    result = verify_report(path, resolve_signing_key(runtime().secrets))
    if not result.ok:
        raise ReportVerificationError(result.problem or f"report {path} does not verify")
    console.print(
        f"{path}: {result.rendering} report verified; digest {result.digest}, signed with key "
        f"{result.key_id}",
        highlight=False,
    )
