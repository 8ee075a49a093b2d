"""Benchmark of the finance work queue on PostgreSQL at size.

    python -m bench.queue_bench [--transactions 1000000] [--open 100000] [--repeat 7] [--db NAME]

Creates a throwaway database (RECON_TEST_PG_HOST/PORT/USER, as the tests), migrates it, bulk
loads one tenant's transactions and exceptions with COPY (plus a third as many resolved and
closed ones), then times through the service layer, as the application role under row-level
security: the queue's first page, a filtered page, the next page by cursor, a payer search, the
overview and one exception's detail. Each is run `--repeat` times; the first (cold) time and the
median are printed. The database is dropped at the end. Goal: <= 100 ms per page and overview.
`--db NAME` times an existing database built by this bench or `bench.ui_bench` (kept, not loaded).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import statistics
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
from psycopg import sql

TENANT = "bench"
USER = "fin@bench.test"
KINDS = ("unmatched_payment", "ambiguous", "overpayment", "underpayment", "duplicate_payment",
         "closed_invoice", "currency_mismatch", "unbacked_payment")  # fmt: skip
PAYERS = ("Jane Doe", "ACME Hosting Ltd", "Widgets plc", "Nowak Sp. z o.o.", "Müller GmbH",
          "García S.L.", "J SMITH", "Blue Sky Web", "Petrov OOO", "Dupont SARL")  # fmt: skip
APP_ROLE = "recon_bench_app"


def _conninfo(dbname: str, user: str) -> str:
    host = os.environ.get("RECON_TEST_PG_HOST", "127.0.0.1")
    port = os.environ.get("RECON_TEST_PG_PORT", "5432")
    return f"host={host} port={port} user={user} dbname={dbname}"


def _url(dbname: str, user: str) -> str:
    host = os.environ.get("RECON_TEST_PG_HOST", "127.0.0.1")
    port = os.environ.get("RECON_TEST_PG_PORT", "5432")
    return f"postgresql+psycopg://{user}@{host}:{port}/{dbname}"


def _transactions(n: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    start = dt.date(2026, 1, 1)
    now = dt.datetime.now(dt.UTC)
    for i in range(n):
        source = ("bank", "stripe", "gocardless")[i % 3]
        payer = f"{rng.choice(PAYERS)} {i % 5000}"
        yield (TENANT, source, f"acc{i % 4}", f"t{i}", "payment", "booked",
               start + dt.timedelta(days=i % 330), rng.randint(100, 500_000), 0,
               "EUR" if i % 5 else "GBP", payer, f"Invoice {100000 + i} ref {i % 997}",
               now, now)  # fmt: skip


def _exceptions(n_open: int, n_txn: int, rng: random.Random) -> Iterator[tuple[object, ...]]:
    now = dt.datetime.now(dt.UTC)
    total = n_open + n_open // 3
    for i in range(total):
        status = "open" if i < n_open else ("resolved", "closed")[i % 2]
        t = rng.randrange(n_txn)
        source = ("bank", "stripe", "gocardless")[t % 3]
        created = now - dt.timedelta(days=rng.randint(0, 200), seconds=rng.randint(0, 86399))
        yield (TENANT, secrets.token_hex(32), KINDS[i % len(KINDS)],
               f"{source}:acc{t % 4}:t{t}", rng.randint(100, 500_000),
               "EUR" if t % 5 else "GBP", "detail", status,
               USER if i % 10 == 0 else None, 1, created, created)  # fmt: skip


def _load(dbname: str, n_txn: int, n_open: int) -> None:
    rng = random.Random(7)
    with psycopg.connect(_conninfo(dbname, _superuser())) as conn:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY transactions (tenant_id, source, account_ref, source_id, kind, status, "
                "booked_on, amount_minor, fee_minor, currency, counterparty, reference, "
                "created_at, updated_at) FROM STDIN"
            ) as copy:
                for row in _transactions(n_txn, rng):
                    copy.write_row(row)
            with cur.copy(
                "COPY exceptions (tenant_id, exception_key, kind, transaction_ref, amount_minor, "
                "currency, detail, status, assignee, version, created_at, updated_at) FROM STDIN"
            ) as copy:
                for row in _exceptions(n_open, n_txn, rng):
                    copy.write_row(row)
            cur.execute(  # the payer and reference the engine keeps on each exception (0011)
                "UPDATE exceptions e SET payer = t.counterparty, reference = t.reference, "
                "search_text = lower(t.counterparty || E'\\n' || t.reference) "
                "FROM transactions t WHERE t.tenant_id = e.tenant_id "
                "AND e.transaction_ref = t.source || ':' || t.account_ref || ':' || t.source_id"
            )
            cur.execute(
                "INSERT INTO users (email, display_name, role, active) "
                "VALUES (%s, 'fin', 'finance', true) RETURNING id",
                (USER,),
            )
            user_id = cur.fetchone()[0]  # type: ignore[index]
            cur.execute(
                "INSERT INTO tenant_grants (tenant_id, user_id, granted_by, granted_at) "
                "VALUES (%s, %s, 'bench', now())",
                (TENANT, user_id),
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


def _superuser() -> str:
    return os.environ.get("RECON_TEST_PG_USER", "postgres")


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times[0], statistics.median(times[1:] or times), result


def main() -> None:
    """Build the throwaway database, load it, time the queue, print figures, drop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--db", help="time an existing bench database instead of building one")
    args = parser.parse_args()
    if (
        "RECON_SECRET_AUDIT_CHAIN_KEY" not in os.environ
    ):  # a throwaway key for a throwaway bench database
        os.environ["RECON_SECRET_AUDIT_CHAIN_KEY"] = secrets.token_hex(32)

    from recon.db import migrate
    from recon.db.engine import make_engine
    from recon.db.tenancy import admin_session
    from recon.tenants import TenantSettings, add_tenant

    if args.db:
        _measure(_url(args.db, APP_ROLE), args.repeat)
        return
    dbname = f"recon_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(_conninfo("postgres", _superuser()), autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        owner = make_engine(_url(dbname, _superuser()))
        migrate.upgrade(owner)
        with admin_session(owner) as session:
            add_tenant(session, TENANT, "Bench", TenantSettings(), actor="bench")
        owner.dispose()
        exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,))
        if exists.fetchone() is None:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE recon_app").format(
                    sql.Identifier(APP_ROLE)
                )
            )
        admin.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO recon_app").format(sql.Identifier(dbname))
        )
        started = time.perf_counter()
        _load(dbname, args.transactions, args.open)
        load_s = time.perf_counter() - started
        print(f"loaded {args.transactions:,} transactions and {args.open:,} open exceptions "
              f"(+{args.open // 3:,} resolved/closed) in {load_s:.1f} s")  # fmt: skip
        _measure(_url(dbname, APP_ROLE), args.repeat)
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        admin.close()


def _measure(url: str, repeat: int) -> None:
    from recon.db.engine import make_engine
    from recon.review.exceptions import exception_detail
    from recon.review.queue import list_exceptions, queue_overview
    from recon.review.views import QueueFilter, QueueSort

    app = make_engine(url)
    first = list_exceptions(app, USER, TENANT, QueueFilter())
    assert first.next is not None
    cases: list[tuple[str, Callable[[], object]]] = [
        ("first page (open, oldest first, 50)", lambda: list_exceptions(app, USER, TENANT)),
        ("next page by cursor",
         lambda: list_exceptions(app, USER, TENANT, after=first.next)),
        ("filtered: kind + amount >= 1000.00 + EUR",
         lambda: list_exceptions(app, USER, TENANT, QueueFilter(
             kind="unmatched_payment", min_minor=100_000, currency="EUR"))),
        ("filtered: assignee + older than 30 days",
         lambda: list_exceptions(app, USER, TENANT, QueueFilter(
             assignee=USER, older_than_days=30))),
        ("sorted by amount (largest first)",
         lambda: list_exceptions(app, USER, TENANT, sort=QueueSort.AMOUNT)),
        ("search payer/reference 'widgets'",
         lambda: list_exceptions(app, USER, TENANT, QueueFilter(search="widgets"))),
        ("search matching nothing (scans every open row)",
         lambda: list_exceptions(app, USER, TENANT, QueueFilter(search="no such payer"))),
        ("overview (status x kind x age x currency)",
         lambda: queue_overview(app, USER, TENANT)),
        ("one exception's detail",
         lambda: exception_detail(app, USER, TENANT, first.items[0].id)),
    ]  # fmt: skip
    print(f"{'operation':<45} {'cold ms':>9} {'median ms':>10}  rows")
    for name, call in cases:
        cold, median, result = _timed(call, repeat)
        rows = len(getattr(result, "items", getattr(result, "rows", ())))
        print(f"{name:<45} {cold:>9.1f} {median:>10.1f}  {rows}")
    app.dispose()


if __name__ == "__main__":
    main()
