"""Benchmark of the matching engine on synthetic worlds, side by side with a plain baseline.

    python -m bench.match_bench [--sizes 10000,100000,1000000] [--seed 7] [--out FILE]
    python -m bench.match_bench --read-only --sizes 1000000 --repeat 5 --workdir DIR

For each size: generate the world (`connectors.sandbox.synth`), write it as the `recon match` CSV files, then
in a fresh process each (so peak RSS is the matcher's own): read and validate the files, match,
write the outputs. Reading is timed apart from matching. The outputs are then graded against the
world's truth: automatic precision and recall, share left for review, wrong automatic
allocations on lines that are not customer payments, per case.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]
from rich.console import Console
from rich.table import Table

from connectors.sandbox.synth import SynthConfig, World, generate
from recon.matching import MatchConfig, match, read_inputs, write_outputs
from recon.matching.baseline import plain_match
from recon.matching.frames import MatchResult
from recon.matching.summary import build_summary

NUMBER_FORMAT = "INV-{YEAR}-{NUMBER}"
# transactions that are no customer's payment: an automatic allocation of one is always wrong
NOT_CUSTOMER = ("non_customer", "outgoing", "payout_credit", "provider_fee", "refund", "dispute")
# charges WHMCS recorded with their transaction id: easy, so recall is also given without them
BY_TRANSID = ("stripe_recorded", "gocardless_recorded")
FILES = ("invoices", "transactions", "recorded", "payouts", "payout_lines")


def _rss_mb() -> float:
    """Current resident set size of this process, in MiB (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, folder: Path) -> dict[str, Any]:
    """In this process: read, match (engine or baseline), write; return timings and memory."""
    paths = {name: folder / f"{name}.csv" for name in FILES}
    started = time.perf_counter()
    cpu_started = time.process_time()
    if kind in ("engine", "read"):
        inputs = read_inputs(
            paths["invoices"],
            paths["transactions"],
            paths["recorded"],
            paths["payouts"],
            paths["payout_lines"],
        )
    else:
        inputs = read_inputs(paths["invoices"], paths["transactions"])
    read_s = time.perf_counter() - started
    read_cpu_s = time.process_time() - cpu_started
    rss_after_read = _rss_mb()
    if kind == "read":
        return {
            "kind": kind,
            "invoices": len(inputs.invoices),
            "transactions": len(inputs.transactions),
            "read_s": round(read_s, 3),
            "read_cpu_s": round(read_cpu_s, 3),
            "rss_after_read_mb": round(rss_after_read, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
        }
    out = folder / kind
    started = time.perf_counter()
    cpu_started = time.process_time()
    stages: dict[str, float] = {}
    if kind == "engine":
        config = MatchConfig(invoice_number_format=NUMBER_FORMAT)
        result = match(inputs, config)
        stages = result.timings
    else:
        allocations = plain_match(inputs)
        empty = pd.DataFrame(
            {
                "kind": pd.Series([], dtype="str"),
                "transaction_id": pd.Series([], dtype="str"),
                "invoice_id": np.zeros(0, np.int64),
                "amount": np.zeros(0, np.int64),
                "currency": pd.Series([], dtype="str"),
                "detail": pd.Series([], dtype="str"),
            }
        )
        result = MatchResult(allocations, empty, pd.DataFrame(), {}, {})
        config = MatchConfig()
    match_s = time.perf_counter() - started
    match_cpu_s = time.process_time() - cpu_started
    started = time.perf_counter()
    write_outputs(result, out, build_summary(inputs, result, config))
    write_s = time.perf_counter() - started
    return {
        "kind": kind,
        "invoices": len(inputs.invoices),
        "transactions": len(inputs.transactions),
        "payments": int((inputs.transactions["amount"] > 0).sum()),
        "read_s": round(read_s, 3),
        "read_cpu_s": round(read_cpu_s, 3),
        "match_s": round(match_s, 3),
        "match_cpu_s": round(match_cpu_s, 3),
        "write_s": round(write_s, 3),
        "rss_after_read_mb": round(rss_after_read, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "stages": stages,
    }


def _spawn(kind: str, folder: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.match_bench", "--child", kind, "--dir", str(folder)]
    load = os.getloadavg()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["load_average_before"] = [round(x, 2) for x in load]
    return result


def _write_world(
    n: int, seed: int, folder: Path, console: Console
) -> tuple[World, dict[str, float]]:
    """Generate the world of `n` invoices and write its input files; the seconds each took."""
    started = time.perf_counter()
    world = generate(SynthConfig(n_invoices=n, seed=seed, invoice_number_format=NUMBER_FORMAT))
    generate_s = time.perf_counter() - started
    started = time.perf_counter()
    world.write_csv(folder)
    write_inputs_s = time.perf_counter() - started
    console.print(
        f"[bold]{n:,} invoices[/bold]: {len(world.transactions):,} transactions, "
        f"generated in {generate_s:.1f} s, written in {write_inputs_s:.1f} s"
    )
    return world, {"generate_s": round(generate_s, 2), "write_inputs_s": round(write_inputs_s, 2)}


def bench_read(n: int, seed: int, work: Path, console: Console, repeat: int) -> dict[str, Any]:
    """Only `read_inputs`, in a fresh process per run, on the files of a world (kept in `work`)."""
    folder = work / f"n{n}"
    if not all((folder / f"{name}.csv").is_file() for name in FILES):
        _write_world(n, seed, folder, console)
    runs = [_spawn("read", folder) for _ in range(repeat)]
    middle = {
        key: statistics.median(run[key] for run in runs)
        for key in ("read_s", "read_cpu_s", "rss_after_read_mb", "peak_rss_mb")
    }
    console.print(
        f"  read {n:,} invoices: median of {repeat}: {middle['read_s']:.2f} s "
        f"(cpu {middle['read_cpu_s']:.2f} s), RSS after {middle['rss_after_read_mb']:.0f} MiB, "
        f"peak {middle['peak_rss_mb']:.0f} MiB; load before each "
        f"{[run['load_average_before'][0] for run in runs]}"
    )
    return {"invoices": n, "median": middle, "runs": runs}


def _read_output(path: Path) -> pd.DataFrame:
    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types={"transaction_id": pa.string(), "invoice_id": pa.string()},
            strings_can_be_null=False,
        ),
    )
    frame: pd.DataFrame = table.to_pandas()
    return frame


def grade(world: World, allocations: pd.DataFrame, exceptions: pd.DataFrame) -> dict[str, Any]:
    """Quality of a matcher's output against the world's truth, overall and per case."""
    truth = world.truth[["transaction_id", "invoice_id"]].astype({"invoice_id": "int64"})
    truth = truth.drop_duplicates()
    cases = world.cases.set_index("transaction_id")
    alloc = allocations[["transaction_id", "invoice_id", "decision"]].copy()
    alloc["invoice_id"] = pd.to_numeric(alloc["invoice_id"]).astype("int64")
    alloc = alloc.drop_duplicates(["transaction_id", "invoice_id", "decision"])
    marked = alloc.merge(truth.assign(ok=True), on=["transaction_id", "invoice_id"], how="left")
    marked["ok"] = marked["ok"].fillna(False).astype(bool)
    marked["case"] = cases["case"].reindex(marked["transaction_id"]).to_numpy()
    auto = marked[marked["decision"] == "auto"]
    need = truth.groupby("transaction_id").size()
    auto_ok = auto[auto["ok"]].groupby("transaction_id").size().reindex(need.index, fill_value=0)
    any_ok = (
        marked[marked["ok"]]
        .drop_duplicates(["transaction_id", "invoice_id"])
        .groupby("transaction_id")
        .size()
        .reindex(need.index, fill_value=0)
    )
    wrong_auto = set(auto.loc[~auto["ok"], "transaction_id"])
    full_auto = (auto_ok == need) & ~need.index.isin(list(wrong_auto))
    full_any = any_ok == need
    has_auto = set(auto["transaction_id"])
    has_review = set(marked.loc[marked["decision"] == "review", "transaction_id"])
    table = world.cases[["transaction_id", "case", "expected", "belongs"]].copy()
    ids = table["transaction_id"]
    # recall-like figures only over the payments that belong to invoices (NaN elsewhere)
    table["auto_ok"] = ids.map(full_auto).astype("float")
    table["any_ok"] = ids.map(full_any).astype("float")
    table["wrong_auto"] = ids.isin(list(wrong_auto))
    table["review_only"] = ids.isin(list(has_review)) & ~ids.isin(list(has_auto))
    raised: dict[str, set[str]] = {}
    for transaction_id, kind in zip(exceptions["transaction_id"], exceptions["kind"], strict=True):
        raised.setdefault(str(transaction_id), set()).add(str(kind))
    table["exception_ok"] = [
        expected == "" or expected in raised.get(t, set())
        for t, expected in zip(table["transaction_id"], table["expected"], strict=True)
    ]
    belongs = table[table["belongs"]]
    assert belongs["auto_ok"].notna().all()
    per_case = (
        table.groupby("case")
        .agg(
            n=("transaction_id", "size"),
            belongs=("belongs", "sum"),
            auto_recall=("auto_ok", "mean"),
            allocated_or_suggested=("any_ok", "mean"),
            review=("review_only", "mean"),
            wrong_auto=("wrong_auto", "sum"),
            exception_found=("exception_ok", "mean"),
        )
        .reset_index()
    )
    return {
        "auto_rows": len(auto),
        "auto_wrong_rows": int((~auto["ok"]).sum()),
        "auto_precision": float(auto["ok"].mean()) if len(auto) else float("nan"),
        "belonging_payments": len(belongs),
        "auto_recall": float(belongs["auto_ok"].mean()),
        "auto_recall_without_transid": float(
            belongs.loc[~belongs["case"].isin(BY_TRANSID), "auto_ok"].mean()
        ),
        "allocated_or_suggested": float(belongs["any_ok"].mean()),
        "review_share": float(belongs["review_only"].mean()),
        "auto_on_not_customer": int(auto["case"].isin(NOT_CUSTOMER).sum()),
        "per_case": per_case.to_dict(orient="records"),
    }


def bench_size(n: int, seed: int, work: Path, console: Console, repeat: int = 1) -> dict[str, Any]:
    """Generate, run engine and baseline in their own processes, grade both."""
    folder = work / f"n{n}"
    world, seconds = _write_world(n, seed, folder, console)
    runs = {}
    for kind in ("engine", "baseline"):
        # on a shared machine the fastest of a few runs is the matcher's own speed; all are kept
        attempts = [_spawn(kind, folder) for _ in range(repeat)]
        run = min(attempts, key=lambda a: a["match_s"])
        run["match_s_all"] = [a["match_s"] for a in attempts]
        run["match_cpu_s_all"] = [a["match_cpu_s"] for a in attempts]
        allocations = _read_output(folder / kind / "allocations.csv")
        exceptions = _read_output(folder / kind / "exceptions.csv")
        run["quality"] = grade(world, allocations, exceptions)
        run["rows_per_s"] = round(run["transactions"] / run["match_s"]) if run["match_s"] else None
        runs[kind] = run
        console.print(
            f"  {kind:8s} read {run['read_s']:.2f} s (cpu {run['read_cpu_s']:.2f} s), "
            f"match {run['match_s']:.2f} s "
            f"(cpu {run['match_cpu_s']:.2f} s; all runs {run['match_s_all']}), "
            f"peak RSS {run['peak_rss_mb']:.0f} MiB"
        )
    return {
        "invoices": n,
        "transactions": len(world.transactions),
        **seconds,
        **runs,
    }


def _percent(value: float) -> str:
    return "-" if value != value else f"{100 * value:.2f} %"


def print_report(report: dict[str, Any], console: Console) -> None:
    """The side-by-side table per size, the scaling exponent, and quality per case."""
    table = Table(title="recon match benchmark (match time excludes reading the files)")
    for column in (
        "invoices", "transactions", "matcher", "read s", "match s", "write s", "peak RSS MiB",
        "rows/s", "auto precision", "auto recall", "(w/o transid)", "alloc+suggest", "review",
        "auto on non-cust.",
    ):  # fmt: skip
        table.add_column(column, justify="right")
    for size in report["sizes"]:
        for kind in ("engine", "baseline"):
            run, q = size[kind], size[kind]["quality"]
            table.add_row(
                f"{size['invoices']:,}",
                f"{size['transactions']:,}",
                kind,
                f"{run['read_s']:.2f}",
                f"{run['match_s']:.2f}",
                f"{run['write_s']:.2f}",
                f"{run['peak_rss_mb']:.0f}",
                f"{run['rows_per_s']:,}" if run["rows_per_s"] else "-",
                _percent(q["auto_precision"]),
                _percent(q["auto_recall"]),
                _percent(q["auto_recall_without_transid"]),
                _percent(q["allocated_or_suggested"]),
                _percent(q["review_share"]),
                str(q["auto_on_not_customer"]),
            )
    console.print(table)
    if report.get("scaling_exponent") is not None:
        console.print(
            f"time 100k → 1M: ×{report['scaling_ratio']:.2f}, "
            f"exponent {report['scaling_exponent']:.3f}"
        )
    largest = report["sizes"][-1]
    cases = Table(title=f"quality per case at {largest['invoices']:,} invoices (engine)")
    for column in (
        "case", "n", "belongs", "auto recall", "alloc+suggest", "review", "wrong auto",
        "exception found", "baseline auto recall",
    ):  # fmt: skip
        cases.add_column(column, justify="right")
    base = {row["case"]: row for row in largest["baseline"]["quality"]["per_case"]}
    for row in largest["engine"]["quality"]["per_case"]:
        cases.add_row(
            row["case"],
            str(row["n"]),
            str(row["belongs"]),
            _percent(row["auto_recall"]) if row["belongs"] else "-",
            _percent(row["allocated_or_suggested"]) if row["belongs"] else "-",
            _percent(row["review"]),
            str(row["wrong_auto"]),
            _percent(row["exception_found"]),
            _percent(base[row["case"]]["auto_recall"]) if row["belongs"] else "-",
        )
    console.print(cases)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in handle if "model name" in line), cpu
            )
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or (with --child) one measured matcher run."""
    parser = argparse.ArgumentParser(prog="python -m bench.match_bench", description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per matcher; the fastest counts"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="only time reading the files (fresh process per run; --workdir keeps the files)",
    )
    parser.add_argument("--child", choices=("engine", "baseline", "read"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.dir)))
        return 0
    console = Console(width=170)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="match_bench_"))
    report: dict[str, Any] = {"machine": _machine(), "seed": args.seed, "sizes": []}
    try:
        for n in sizes:
            if args.read_only:
                report["sizes"].append(bench_read(n, args.seed, work, console, args.repeat))
            else:
                report["sizes"].append(bench_size(n, args.seed, work, console, args.repeat))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    if args.read_only:
        _save(report, args.out, console)
        return 0
    by_size = {s["invoices"]: s["engine"]["match_s"] for s in report["sizes"]}
    if 100_000 in by_size and 1_000_000 in by_size and by_size[100_000] > 0:
        ratio = by_size[1_000_000] / by_size[100_000]
        report["scaling_ratio"] = round(ratio, 3)
        report["scaling_exponent"] = round(math.log10(ratio), 3)
    print_report(report, console)
    _save(report, args.out, console)
    return 0


def _save(report: dict[str, Any], out: Path | None, console: Console) -> None:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
        console.print(f"figures written to {out}")


if __name__ == "__main__":
    raise SystemExit(main())
