"""`recon match`: the matching engine on files (DESIGN §4.3).

Registered by the main CLI with `app.command("match")(match_command)`. A bad input raises
`InputFileError` (a bad settings file `ConfigError`) with one sentence naming the file, row and
column; the main CLI prints it on stderr and exits non-zero.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

_FILE_HELP = "CSV (UTF-8, header row) or Parquet"


def match_command(
    invoices: Annotated[
        Path, typer.Option("--invoices", help=f"WHMCS invoices ({_FILE_HELP}).", show_default=False)
    ],
    transactions: Annotated[
        Path,
        typer.Option(
            "--transactions",
            help=f"Bank, Stripe and GoCardless transactions ({_FILE_HELP}).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for allocations.csv, exceptions.csv and summary.json.",
            show_default=False,
        ),
    ],
    recorded: Annotated[
        Path | None,
        typer.Option("--recorded", help=f"Payments WHMCS has recorded ({_FILE_HELP})."),
    ] = None,
    payouts: Annotated[
        Path | None,
        typer.Option("--payouts", help=f"Stripe / GoCardless payouts ({_FILE_HELP})."),
    ] = None,
    payout_lines: Annotated[
        Path | None,
        typer.Option("--payout-lines", help="Payout → transaction links, with --payouts."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML or JSON: thresholds, tolerances, invoice numbering."),
    ] = None,
) -> None:
    """Decide which invoice each payment settles; write allocations, exceptions and a summary.

    Rows in error messages count the header as row 1, as a spreadsheet does.
    """
    # The engine loads only when this command runs, so the rest of the CLI starts fast.
    from recon.matching import MatchConfig, load_config, match, read_inputs, write_outputs
    from recon.matching.summary import build_summary, summary_table

    console = Console()
    status = Console(stderr=True)
    settings = load_config(config) if config is not None else MatchConfig()
    timings: dict[str, float] = {}
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=status,
        transient=True,
    ) as progress:
        task = progress.add_task("reading and checking the input files", total=None)
        started = time.perf_counter()
        inputs = read_inputs(invoices, transactions, recorded, payouts, payout_lines)
        timings["read"] = round(time.perf_counter() - started, 4)

        progress.update(task, description="matching payments to invoices")
        started = time.perf_counter()
        result = match(inputs, settings)
        timings["match"] = round(time.perf_counter() - started, 4)

        progress.update(task, description=f"writing {out}")
        started = time.perf_counter()
        summary = build_summary(inputs, result, settings, timings)
        write_outputs(result, out, summary)
        timings["write"] = round(time.perf_counter() - started, 4)
    console.print(summary_table(summary))
    console.print(
        f"read {timings['read']:.2f} s, matched {timings['match']:.2f} s, "
        f"wrote {timings['write']:.2f} s → {out}",
        highlight=False,
    )
