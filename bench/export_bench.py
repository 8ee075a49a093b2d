"""Benchmark: the auditor's export of a period holding N allocations (default 1,000,000).

Seeds a fresh SQLite database (or the PostgreSQL database `--database-url` names, which must be
migrated and empty) with N bank credits and one allocation each, then exports the report in
each format asked for, each in a fresh child process, so its peak RSS is that export's alone,
and verifies the file.

    .venv/bin/python -m bench.export_bench [--rows 1000000] [--formats csv,xlsx] [--database-url URL]

Prints, per format, the seconds to build the report's figures, to write the file (allocations
streamed) and to verify it, the file's size, its sheets (XLSX: a section past Excel's row limit
continues on more sheets) and the export process's peak RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TENANT = "bench"
USER = "auditor@bench.test"
PERIOD = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))
CHUNK = 50_000


def seed(url: str, rows: int) -> None:
    """Migrate (SQLite), register the tenant and an auditor, and write `rows` credits and
    allocations with bulk inserts."""
    from sqlalchemy import insert

    from recon.db import migrate
    from recon.db.engine import make_engine
    from recon.db.models import Allocation, TenantGrant, Transaction, User
    from recon.db.tenancy import admin_session, tenant_session
    from recon.tenants import TenantSettings, add_tenant

    engine = make_engine(url)
    migrate.upgrade(engine)
    with admin_session(engine) as session:
        add_tenant(session, TENANT, "Bench Hosting", TenantSettings(), actor="bench")
        user = User(email=USER, display_name="auditor", role="auditor")
        session.add(user)
        session.flush()
        user_id = user.id
    with tenant_session(engine, TENANT) as session:
        session.add(TenantGrant(tenant_id=TENANT, user_id=user_id, granted_by="bench"))
    for start in range(0, rows, CHUNK):
        stop = min(start + CHUNK, rows)
        txns, allocations = [], []
        for i in range(start, stop):
            day = PERIOD[0] + dt.timedelta(days=i % 31)
            amount = 1000 + (i % 97) * 125
            sid = f"t{i:08d}"
            txns.append(
                {"tenant_id": TENANT, "source": "bank", "account_ref": "acct-1", "source_id": sid,
                 "kind": "payment", "status": "booked", "booked_on": day, "amount_minor": amount,
                 "fee_minor": 0, "currency": "EUR", "counterparty": f"Customer {i % 5000}",
                 "reference": f"INV {100000 + i}"}
            )  # fmt: skip
            allocations.append(
                {"tenant_id": TENANT, "run_id": "bench",
                 "allocation_key": hashlib.sha256(sid.encode()).hexdigest(),
                 "transaction_ref": f"bank:acct-1:{sid}", "invoice_id": str(100000 + i),
                 "amount_minor": amount, "currency": "EUR", "rule": "reference_exact",
                 "confidence": 100, "decision": "auto", "origin": "engine",
                 "created_by": "engine"}
            )  # fmt: skip
        with tenant_session(engine, TENANT) as session:
            session.execute(insert(Transaction), txns)
            session.execute(insert(Allocation), allocations)
    engine.dispose()


def export(url: str, out: Path, fmt: str = "csv") -> dict[str, float | str]:
    """Build and write the report in `fmt`; return the timings and this process's peak RSS."""
    from recon.db.engine import make_engine
    from recon.reports import build_report, verify_report, write_report

    engine = make_engine(url)
    clock = time.perf_counter()
    report = build_report(engine, USER, TENANT, *PERIOD)
    built = time.perf_counter() - clock
    clock = time.perf_counter()
    written = write_report(report, fmt, out)
    wrote = time.perf_counter() - clock
    clock = time.perf_counter()
    assert verify_report(out).ok
    verified = time.perf_counter() - clock
    figures: dict[str, float | str] = {
        "format": fmt,
        "allocations": written.rows["allocations"],
        "build_s": round(built, 2),
        "write_s": round(wrote, 2),
        "verify_s": round(verified, 2),
        "file_mib": round(out.stat().st_size / 2**20, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if fmt == "xlsx":
        from openpyxl import load_workbook

        book = load_workbook(out, read_only=True)
        figures["allocation_sheets"] = ", ".join(
            n for n in book.sheetnames if n.lower().startswith("allocations")
        )
        book.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv", help="comma-separated: csv, xlsx, pdf")
    parser.add_argument("--database-url", help="default: a new SQLite file in a temporary dir")
    parser.add_argument("--export-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--format", default="csv", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (
        "RECON_SECRET_AUDIT_CHAIN_KEY" not in os.environ
    ):  # a throwaway key for a throwaway bench database
        os.environ["RECON_SECRET_AUDIT_CHAIN_KEY"] = secrets.token_hex(32)
    if (
        "RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY" not in os.environ
    ):  # a throwaway key for a throwaway bench database
        os.environ["RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY"] = secrets.token_hex(32)
    if args.export_only:
        print(json.dumps(export(args.database_url, args.out, args.format)))
        return 0
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        clock = time.perf_counter()
        seed(url, args.rows)
        seeded = round(time.perf_counter() - clock, 1)
        results = []
        for fmt in args.formats.split(","):
            out = Path(tmp) / ("report.zip" if fmt == "csv" else f"report.{fmt}")
            child = subprocess.run(
                [sys.executable, "-m", "bench.export_bench", "--export-only", "--database-url",
                 url, "--out", str(out), "--format", fmt],
                capture_output=True, text=True, check=True, env=os.environ.copy(),
            )  # fmt: skip
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    backend = url.split(":", 1)[0].split("+", 1)[0]
    print(json.dumps({"backend": backend, "rows": args.rows, "seed_s": seeded, "exports": results}))
    for figures in results:
        sheets = (
            f", sheets {figures['allocation_sheets']}" if "allocation_sheets" in figures else ""
        )
        print(
            f"{backend} {figures['format']}: {figures['allocations']:,} allocations; build "
            f"{figures['build_s']} s, write {figures['write_s']} s, verify {figures['verify_s']} s, "
            f"file {figures['file_mib']} MiB{sheets}, export process peak RSS "
            f"{figures['peak_rss_mib']} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
