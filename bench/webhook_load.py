"""Load on the webhook receiver: signed deliveries at a fixed rate over loopback.

    .venv/bin/python -m bench.webhook_load [--rate 50] [--duration 600] [--out FILE]

A child process serves the real receiver (uvicorn, a fresh migrated SQLite database, one tenant,
the durable outbox and its emitter handing events to a temporary Prefect API started with
Prefect's test harness, or to `--prefect-url`). The parent sends open-loop load: delivery i is
due at t0 + i / rate whatever happened to earlier ones, and its latency is counted from when it
was due, so a stalled server cannot hide its queue. Deliveries: 75 % Stripe events, 20 %
GoCardless batches of two events, 5 % replays of an earlier delivery (duplicates). Any answer
but 200, or any transport error, is an error. After the load it waits for the emitter to drain
the outbox and reports latencies, errors, the server's memory and the events emitted.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from recon.secrets import GOCARDLESS_WEBHOOK_SECRET, STRIPE_WEBHOOK_SECRET, env_var_name

TENANT = "bench"
LOOPBACK = "127.0.0.1"


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM once it has stopped, which would kill the process before the
    Prefect harness stops its server: this one only stops."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGTERM, self.handle_exit)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)


def _serve(database: Path, port_file: Path, prefect_url: str | None) -> None:
    """Child process: migrate, register the tenant, serve the receiver until SIGTERM."""
    from apps.webhooks.app import ReceiverConfig, build_receiver
    from apps.webhooks.prefect_events import PrefectEventSink
    from connectors.vault import secret_resolver
    from recon.db import migrate
    from recon.db.engine import make_engine
    from recon.db.tenancy import admin_session
    from recon.settings import Settings
    from recon.tenants import TenantSettings, add_tenant

    engine = make_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    with admin_session(engine) as session:
        add_tenant(session, TENANT, "Bench", TenantSettings(webhooks_enabled=True), actor="bench")

    def run(api_url: str) -> None:
        sink = PrefectEventSink(api_url)
        app = build_receiver(ReceiverConfig(engine, secret_resolver(Settings()), sink))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind((LOOPBACK, 0))
        port_file.write_text(f"{sock.getsockname()[1]} {api_url}")
        config = uvicorn.Config(app, log_config=None, access_log=False)
        _Server(config).run(sockets=[sock])

    if prefect_url:
        run(prefect_url)
        return
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        run(str(PREFECT_API_URL.value()))


def _stripe(event_id: str, now: int, secret: str) -> tuple[str, bytes, dict[str, str]]:
    from apps.webhooks.signatures import stripe_signature_header

    body = json.dumps(
        {
            "id": event_id,
            "type": "payout.paid",
            "created": now,
            "data": {"object": {"id": f"po_{event_id}", "object": "payout", "arrival_date": now}},
        }
    ).encode()
    return "stripe", body, {"Stripe-Signature": stripe_signature_header(body, secret, now)}


def _gocardless(event_id: str, secret: str) -> tuple[str, bytes, dict[str, str]]:
    from apps.webhooks.signatures import gocardless_signature

    body = json.dumps(
        {
            "events": [
                {
                    "id": f"{event_id}_{n}",
                    "created_at": "2026-11-20T10:00:00.000Z",
                    "resource_type": "payments",
                    "action": "confirmed",
                    "links": {"payment": f"PM{event_id}{n}"},
                }
                for n in range(2)
            ]
        }
    ).encode()
    return "gocardless", body, {"Webhook-Signature": gocardless_signature(body, secret)}


async def _load(url: str, rate: float, duration: float, keys: dict[str, str]) -> dict[str, Any]:
    rng = random.Random(11)
    total = int(rate * duration)
    latencies: list[float] = []
    by_minute: dict[int, list[float]] = {}
    errors: dict[str, int] = {}
    sent: list[tuple[str, bytes, dict[str, str]]] = []
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:

        async def one(due: float, delivery: tuple[str, bytes, dict[str, str]]) -> None:
            provider, body, headers = delivery
            try:
                response = await client.post(
                    f"/webhooks/{provider}/{TENANT}", content=body, headers=headers
                )
                if response.status_code != 200:
                    kind = f"HTTP {response.status_code}"
                    errors[kind] = errors.get(kind, 0) + 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latency = time.perf_counter() - due
            latencies.append(latency)
            by_minute.setdefault(int((due - start) // 60), []).append(latency)

        tasks = []
        start = time.perf_counter()
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            draw = rng.random()
            if draw < 0.05 and sent:  # a replay; Stripe re-signs what it re-sends
                provider, body, headers = rng.choice(sent)
                if provider == "stripe":
                    headers = _resign(body, keys["stripe"])
                delivery = (provider, body, headers)
            elif draw < 0.25:
                delivery = _gocardless(f"EV{i:07d}", keys["gocardless"])
            else:
                delivery = _stripe(f"evt_{i:07d}", int(time.time()), keys["stripe"])
            sent.append(delivery)
            tasks.append(asyncio.create_task(one(due, delivery)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float, values: list[float] = latencies) -> float:
        return round(1000 * values[min(len(values) - 1, int(p * len(values)))], 1)

    return {
        "requests": total,
        "elapsed_s": round(elapsed, 1),
        "achieved_rate": round(total / elapsed, 2),
        "errors": sum(errors.values()),
        "errors_by_kind": errors,
        "latency_ms": {
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": round(1000 * latencies[-1], 1),
            "mean": round(1000 * statistics.fmean(latencies), 1),
        },
        "p99_ms_by_minute": [pct(0.99, sorted(v)) for _, v in sorted(by_minute.items())],
    }


def _resign(body: bytes, secret: str) -> dict[str, str]:
    from apps.webhooks.signatures import stripe_signature_header

    return {"Stripe-Signature": stripe_signature_header(body, secret, int(time.time()))}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children that have exited."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round(sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK"), 1)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _outbox(database: Path) -> tuple[int, int, int]:
    with sqlite3.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*), sum(processed_at IS NOT NULL), sum(window_from IS NOT NULL) "
            "FROM webhook_events"
        ).fetchone()
    return int(row[0]), int(row[1] or 0), int(row[2] or 0)


def main(argv: list[str] | None = None) -> int:
    """Run the load and print its figures (JSON); exit 1 when an error or p99 >= 500 ms."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries per second")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--prefect-url", help="a Prefect API (default: a temporary one)")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORTFILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rate <= 0 or not 0 < args.duration <= 3600:
        parser.error("--rate must be positive and --duration within (0, 3600] seconds")
    if args.serve:
        _serve(Path(args.serve[0]), Path(args.serve[1]), args.prefect_url)
        return 0

    keys = {"stripe": "whsec_" + secrets.token_hex(16), "gocardless": secrets.token_hex(16)}
    with tempfile.TemporaryDirectory(prefix="webhook-load-") as tmp:
        database, port_file = Path(tmp) / "recon.db", Path(tmp) / "port"
        env = {
            **os.environ,
            "RECON_DATA_DIR": tmp,
            "RECON_SECRET_AUDIT_CHAIN_KEY": secrets.token_hex(32),
            env_var_name(STRIPE_WEBHOOK_SECRET, TENANT): keys["stripe"],
            env_var_name(GOCARDLESS_WEBHOOK_SECRET, TENANT): keys["gocardless"],
        }
        command = [
            sys.executable,
            "-m",
            "bench.webhook_load",
            "--serve",
            str(database),
            str(port_file),
        ]
        if args.prefect_url:
            command += ["--prefect-url", args.prefect_url]
        server = subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parent.parent)
        try:
            deadline = time.monotonic() + 240
            while not port_file.exists() or not port_file.read_text():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the receiver did not start")
                time.sleep(0.2)
            port = port_file.read_text().split()[0]
            time.sleep(1.0)  # let uvicorn start listening
            url = f"http://{LOOPBACK}:{port}"
            rss_before = _rss_mb(server.pid)
            prefect = _children(server.pid)
            cpu_before = [_cpu_seconds(p) for p in [server.pid, *prefect]]
            figures = asyncio.run(_load(url, args.rate, args.duration, keys))
            cpu_after = [_cpu_seconds(p) for p in [server.pid, *prefect]]
            figures["server_rss_mb"] = {"before": rss_before, "after": _rss_mb(server.pid)}
            figures["cpu_s_during_load"] = {
                "receiver": round(cpu_after[0] - cpu_before[0], 1),
                "prefect_api": round(sum(cpu_after[1:]) - sum(cpu_before[1:]), 1),
            }
            figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            figures["cores"] = os.cpu_count()
            drain_start = time.monotonic()
            while True:
                stored, processed, _ = _outbox(database)
                if processed == stored or time.monotonic() - drain_start > 120:
                    break
                time.sleep(0.5)
            figures["outbox"] = {
                "events_stored": stored,
                "events_emitted_to_prefect": processed,
                "drained_within_s": round(time.monotonic() - drain_start, 1),
            }
        finally:
            server.terminate()
            server.wait(30)
    figures.update({"rate": args.rate, "duration_s": args.duration})
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = figures["errors"] == 0 and figures["latency_ms"]["p99"] < 500
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
