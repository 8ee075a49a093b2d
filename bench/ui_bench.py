"""Benchmark of the ops UI's server-side work per page on PostgreSQL at size.

    python -m bench.ui_bench [--transactions 1000000] [--open 100000] [--invoices 200000]
                             [--allocated 600000] [--audit 100000] [--runs 400] [--repeat 5]

Builds a throwaway database with the queue bench's builder (`bench.queue_bench`: one tenant's
transactions and open/resolved exceptions, a finance user), adds invoices, allocations (engine,
review suggestions, people's, a few reversed), runs and a keyed audit chain, then times, as the
application role under row-level security, the service calls each page makes on its first load:

- Overview: data version, latest booking (the default period), figures and chart series (90 days)
- Exceptions: the queue's first page (25) and the first exception's detail
- Transactions, Invoices: the first page (50) with each row's allocations; Transactions also a
  free-text search that matches nothing (it reads every transaction of the tenant)
- Runs: the 30 latest runs with their failed validations and quarantined rows
- Audit log: the first page (50); chain verification (every entry) timed apart
- Reports: `build_report` over 30 days (summary, tie-outs, open exceptions, decisions, the chain's
  verdict), without streaming the allocation detail or writing a file

Each page runs once cold, then once as warm-up, then `--repeat` times; the median of those and the
cold time are printed and saved to bench/results/ui_bench.json. Goal: each page under 1 s.

The audit chain is keyed with RECON_SECRET_AUDIT_CHAIN_KEY, a throwaway one when it is not set; a
database kept with `--keep` leaves that key in `<tmp>/<database>.audit-key` (mode 0600), which
`--db` reads when the variable is not set: with another key the chain breaks at its first entry
and "verify chain" times nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import queue_bench as qb

GOAL_MS = 1000.0
RESULTS = Path(__file__).resolve().parent / "results" / "ui_bench.json"
START = dt.date(2026, 1, 1)  # the queue bench books transaction i on START + i % 330 days
GENESIS = "0" * 64  # recon.audit.GENESIS_HASH: the previous hash of a chain's first entry


def _ref(i: int) -> str:
    return f"{('bank', 'stripe', 'gocardless')[i % 3]}:acc{i % 4}:t{i}"


def _invoices(n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    now = dt.datetime.now(dt.UTC)
    for i in range(n):
        issued = START + dt.timedelta(days=i % 330)
        total = rng.randint(100, 500_000)
        paid = i % 4 != 0
        yield (qb.TENANT, str(100000 + i), f"INV-{100000 + i}", str(i % 5000),
               f"{rng.choice(qb.PAYERS)} {i % 5000}", None, issued,
               issued + dt.timedelta(days=14), total, 0 if paid else total,
               "EUR" if i % 5 else "GBP", "Paid" if paid else "Unpaid", now, now)  # fmt: skip


def _amount(k: int) -> int:
    return 100 + (k * 7919) % 500_000


def _allocations(n: int, n_txn: int, n_inv: int) -> Iterator[tuple[object, ...]]:
    """Engine rows for the first `n` payments (every 10th a review suggestion, every 50th a
    person's), then reversal rows undoing every 100th (ids are 1..n in COPY order)."""
    now = dt.datetime.now(dt.UTC)
    step = max(1, n_txn // n)
    for k in range(n):
        i = k * step
        manual = k % 50 == 0
        decision = "manual" if manual else ("review" if k % 10 == 0 else "auto")
        yield (qb.TENANT, secrets.token_hex(32), _ref(i), str(100000 + k % n_inv),
               _amount(k), "EUR" if i % 5 else "GBP",
               "manual" if manual else "exact_reference", 100 if manual else 60 + k % 40,
               decision, "manual" if manual else "engine", qb.USER if manual else "engine",
               None, now)  # fmt: skip
    for k in range(0, n, 100):
        i = k * step
        yield (qb.TENANT, secrets.token_hex(32), _ref(i), str(100000 + k % n_inv), -_amount(k),
               "EUR" if i % 5 else "GBP", "exact_reference", 100, "manual", "manual", qb.USER,
               k + 1, now)  # fmt: skip


def _runs(n: int) -> Iterator[tuple[object, ...]]:
    now = dt.datetime.now(dt.UTC)
    for k in range(n):
        started = now - dt.timedelta(hours=6 * (n - k))
        counts = {"transactions": 2500, "allocations_auto": 1800, "allocations_review": 200,
                  "exceptions": 250}  # fmt: skip
        day = START + dt.timedelta(days=k % 330)
        yield (str(uuid.uuid4()), qb.TENANT, "reconcile", day, day + dt.timedelta(days=6),
               "completed", started, started + dt.timedelta(seconds=90), json.dumps(counts),
               '["bank", "stripe", "gocardless"]', "{}")  # fmt: skip


def _audit_rows(n: int, seq: int, prev: str) -> Iterator[tuple[object, ...]]:
    """Keyed entries continuing the chain after (seq, prev): what runs and people append."""
    from recon import audit
    from recon.db.models import AuditEntry

    key = audit.resolve_chain_key()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=n)
    for k in range(n):
        entry = AuditEntry(
            tenant_id=qb.TENANT, seq=seq + k + 1, occurred_at=start + dt.timedelta(seconds=k),
            actor=qb.USER if k % 3 else "engine",
            action=("allocation.accepted", "exception.resolved", "run.completed")[k % 3],
            entity=("allocation", "exception", "run")[k % 3], entity_id=str(k),
            details={"note": f"bench {k}", "amount_minor": k * 7},
            prev_hash=prev, entry_hash="", chain_version=audit.CHAIN_HMAC, key_id=key.key_id,
        )  # fmt: skip
        prev = audit.compute_keyed_hash(key, prev, audit.entry_payload(entry))
        yield (qb.TENANT, entry.seq, entry.occurred_at, entry.actor, entry.action, entry.entity,
               entry.entity_id, audit.canonical_json(entry.details), entry.prev_hash, prev,
               audit.CHAIN_HMAC, key.key_id)  # fmt: skip


def _copy(cur: psycopg.Cursor[Any], statement: str, rows: Iterator[tuple[object, ...]]) -> None:
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _load_ui(dbname: str, args: argparse.Namespace) -> None:
    """What the queue bench does not build: invoices, allocations, runs, the audit chain."""
    rng = random.Random(13)
    with psycopg.connect(qb._conninfo(dbname, qb._superuser())) as conn:
        with conn.cursor() as cur:
            _copy(cur, "COPY invoices (tenant_id, invoice_id, invoice_num, client_id, "
                  "client_name, company_name, issued_on, due_on, total_minor, balance_minor, "
                  "currency, status, created_at, updated_at) FROM STDIN",
                  _invoices(args.invoices, rng))  # fmt: skip
            _copy(cur, "COPY allocations (tenant_id, allocation_key, transaction_ref, invoice_id, "
                  "amount_minor, currency, rule, confidence, decision, origin, created_by, "
                  "reverses_id, created_at) FROM STDIN",
                  _allocations(args.allocated, args.transactions, args.invoices))  # fmt: skip
            _copy(cur, "COPY runs (id, tenant_id, kind, window_from, window_to, status, "
                  "started_at, finished_at, counts, sources, sums) FROM STDIN", _runs(args.runs))  # fmt: skip
            head = cur.execute(
                "SELECT seq, entry_hash FROM audit_log WHERE tenant_id = %s "
                "ORDER BY seq DESC LIMIT 1",
                (qb.TENANT,),
            ).fetchone()
            seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
            _copy(cur, "COPY audit_log (tenant_id, seq, occurred_at, actor, action, entity, "
                  "entity_id, details, prev_hash, entry_hash, chain_version, key_id) FROM STDIN",
                  _audit_rows(args.audit, seq, prev))  # fmt: skip
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _pages(url: str) -> tuple[list[tuple[str, Callable[[], str]]], Any]:
    """Each page's first-load service calls, as one callable returning what it read."""
    from recon.db.engine import make_engine
    from recon.reports.build import build_report
    from recon.review import explore
    from recon.review import overview as ov
    from recon.review.exceptions import exception_detail
    from recon.review.queue import list_exceptions

    app = make_engine(url)
    me, tenant = qb.USER, qb.TENANT

    def period(days: int) -> tuple[dt.date, dt.date]:
        end = ov.latest_booking(app, me, tenant) or dt.date.today()
        return end - dt.timedelta(days=days - 1), end

    def overview() -> str:
        ov.data_version(app, me, tenant)
        view = ov.overview(app, me, tenant, *period(90))
        return f"{view.payments:,} payments, {len(view.match_rate_by_day)} days"

    def exceptions() -> str:
        page = list_exceptions(app, me, tenant, limit=25)
        detail = exception_detail(app, me, tenant, page.items[0].id)
        return f"{len(page.items)} rows + detail of {detail.exception.id}"

    def transactions() -> str:
        return f"{len(explore.transactions_page(app, me, tenant, limit=50).rows)} rows"

    def search() -> str:
        found = explore.transactions_page(app, me, tenant, search="no such payer", limit=50)
        return f"{len(found.rows)} rows"

    def invoices() -> str:
        return f"{len(explore.invoices_page(app, me, tenant, limit=50).rows)} rows"

    def runs() -> str:
        return f"{len(ov.recent_runs(app, me, tenant, limit=30))} runs"

    def audit_log() -> str:
        return f"{len(explore.audit_page(app, me, tenant, limit=50).rows)} rows"

    def verify() -> str:
        verdict = explore.verify_audit_chain(app, me, tenant)
        return f"{verdict.entries:,} entries, {'verified' if verdict.ok else 'BROKEN'}"

    def report() -> str:
        built = build_report(app, me, tenant, *period(30))
        return f"{built.allocation_count:,} allocations counted, {built.audit.entries:,} verified"

    pages = [("Overview", overview), ("Exceptions (page + detail)", exceptions),
             ("Transactions", transactions),
             ("Transactions: search, no match", search), ("Invoices", invoices), ("Runs", runs),
             ("Audit log (first page)", audit_log), ("Audit log: verify chain", verify),
             ("Reports: build_report (30 days)", report)]  # fmt: skip
    return pages, app


def _measure(url: str, repeat: int) -> list[dict[str, Any]]:
    pages, app = _pages(url)
    results = []
    print(f"{'page':<34} {'cold ms':>9} {'median ms':>10}  goal  read")
    for name, call in pages:
        started = time.perf_counter()
        what = call()
        cold = (time.perf_counter() - started) * 1000
        call()  # warm-up
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        median = statistics.median(times)
        ok = "met" if median < GOAL_MS else "MISS"
        print(f"{name:<34} {cold:>9.1f} {median:>10.1f}  {ok:<4}  {what}")
        results.append({"page": name, "cold_ms": round(cold, 1), "median_ms": round(median, 1),
                        "goal_met": median < GOAL_MS, "read": what})  # fmt: skip
    app.dispose()
    return results


def _create(dbname: str, admin: psycopg.Connection[Any]) -> None:
    """The database as the queue bench makes it: migrated, tenant added, the app role granted."""
    from recon.db import migrate
    from recon.db.engine import make_engine
    from recon.db.tenancy import admin_session
    from recon.tenants import TenantSettings, add_tenant

    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    owner = make_engine(qb._url(dbname, qb._superuser()))
    migrate.upgrade(owner)
    with admin_session(owner) as session:
        add_tenant(session, qb.TENANT, "Bench", TenantSettings(), actor="bench")
    owner.dispose()
    if (
        admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (qb.APP_ROLE,)).fetchone()
        is None
    ):
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE recon_app").format(
                sql.Identifier(qb.APP_ROLE)
            )
        )
    admin.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO recon_app").format(sql.Identifier(dbname))
    )


def _key_file(dbname: str) -> Path:
    """Where a kept database's throwaway chain key is left for later `--db` runs."""
    return Path(tempfile.gettempdir()) / f"{dbname}.audit-key"


def main() -> None:
    """Build the throwaway database, load it, time every page, print and save, drop it."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--invoices", type=int, default=200_000)
    parser.add_argument("--allocated", type=int, default=600_000)
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    parser.add_argument("--db", help="time an existing database kept by --keep instead of building")
    args = parser.parse_args()
    dbname = args.db or f"recon_uibench_{uuid.uuid4().hex[:10]}"
    if "RECON_SECRET_AUDIT_CHAIN_KEY" not in os.environ:
        kept = _key_file(dbname)
        if args.db and kept.exists():  # the key the kept database's chain was written with
            os.environ["RECON_SECRET_AUDIT_CHAIN_KEY"] = kept.read_text().strip()
        else:  # a throwaway key for a throwaway bench database
            os.environ["RECON_SECRET_AUDIT_CHAIN_KEY"] = secrets.token_hex(32)
            if args.keep and not args.db:
                kept.touch(mode=0o600)
                kept.write_text(os.environ["RECON_SECRET_AUDIT_CHAIN_KEY"] + "\n")
    admin = psycopg.connect(qb._conninfo("postgres", qb._superuser()), autocommit=True)
    load_s = 0.0
    try:
        if not args.db:
            _create(dbname, admin)
            started = time.perf_counter()
            qb._load(dbname, args.transactions, args.open)
            _load_ui(dbname, args)
            load_s = time.perf_counter() - started
            print(f"loaded {args.transactions:,} transactions, {args.open:,} open exceptions, "
                  f"{args.invoices:,} invoices, {args.allocated:,} allocations, {args.runs} runs, "
                  f"{args.audit:,} audit entries in {load_s:.0f} s")  # fmt: skip
        pages = _measure(qb._url(dbname, qb.APP_ROLE), args.repeat)
    finally:
        if args.keep or args.db:
            print(f"kept database {dbname} (drop it with: dropdb -h 127.0.0.1 {dbname}; its "
                  f"chain key, if the bench made one, is in {_key_file(dbname)})")  # fmt: skip
        else:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )
        admin.close()
    missed = [p["page"] for p in pages if not p["goal_met"]]
    print("goal (< 1 s median) missed by: " + (", ".join(missed) if missed else "none"))
    sizes = {k: getattr(args, k) for k in ("transactions", "open", "invoices", "allocated",
                                           "audit", "runs", "repeat")}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, load {os.getloadavg()[0]:.1f}",
        "sizes": sizes, "load_seconds": round(load_s, 1), "goal_ms": GOAL_MS, "pages": pages,
        "missed": missed}, indent=2) + "\n")  # fmt: skip
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
