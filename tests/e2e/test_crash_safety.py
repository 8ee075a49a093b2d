"""Reliability T1: `recon run` killed with SIGKILL at random points, then run again.

An uninterrupted run into its own database is the reference. It also times the flow's work
(the process spends its first seconds importing and reaching the Prefect API, touching no data):
from its first log line to the last source extracted (pages landed, loaded in one transaction per
source, concurrently), then to the window reconciled (one transaction), then to the flow's end
(the run closed, the event emitted).

Each seed kills a fresh run, its whole process group, with SIGKILL at a point drawn from a
seeded RNG. Drawn uniformly over the whole flow, four kills would rarely land in the short
reconcile step, so each seed draws in its own part of the run, timed from the log line that
opens that part in the killed run itself (the pace of a process varies from run to run):

* seed 1: the first half of the extraction; seed 2: its second half;
* seed 3: inside the reconcile step;
* seed 4: after the reconcile step committed, while the run is closed (or just after).

Then it checks that the tenant's writer lock did not outlive the process, runs the window again
to completion, and requires of the result:

* no natural key appears twice in any business table;
* conservation: every raw record of the landed pages of every source is loaded or quarantined,
  by count and by sum per (account, currency, day);
* the same business tables as the reference, compared on their natural columns;
* the last run is recorded as completed and none as failed.

The runs use the session's Prefect server, so no process starts an ephemeral server of its own.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from recon.db.engine import make_engine
from tests.e2e.conftest import MALFORMED_BANK_LINES, TenantDatabase
from tests.e2e.helpers import (
    BUSINESS_COLUMNS,
    NATURAL_KEYS,
    RECON,
    TENANT,
    WORLD_END,
    WORLD_START,
    conservation_failures,
    diff_snapshots,
    duplicate_keys,
    snapshot,
    table_counts,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SEEDS = (1, 2, 3, 4)
WINDOW = (WORLD_START, WORLD_END)
RUN_TIMEOUT = 180.0
POLL = 0.01

# Log lines that open each part of a run (the human log format, RECON_LOG_FORMAT unset).
MARKERS = {
    "began": "Beginning flow run",
    "extracted": "recon.extract: ",  # one line per source, after its load committed
    "reconciled": "recon.reconcile: reconciled",  # after the reconcile transaction committed
    "finished": "prefect.flow_runs: Finished in state",
}


@dataclass(frozen=True)
class KillPoint:
    """SIGKILL `delay` seconds after the `occurrence`-th line with MARKERS[`marker`]."""

    marker: str
    occurrence: int
    delay: float

    def describe(self) -> str:
        return f"{self.delay:.2f} s after {self.marker} #{self.occurrence}"


@dataclass
class Outcome:
    """One `recon run` process: how it ended, and when each marker line appeared."""

    returncode: int
    duration: float
    log: str
    seen: dict[str, list[float]] = field(default_factory=dict)
    killed: bool = False

    def at(self, marker: str, occurrence: int = 1) -> float:
        times = self.seen.get(marker, [])
        assert len(times) >= occurrence, f"no {marker} #{occurrence} in:\n{self.log[-3000:]}"
        return times[occurrence - 1]


def kill_due(kill: KillPoint, anchors: list[float], now: float) -> bool:
    """Whether the kill point has come, given when its marker's lines appeared."""
    return len(anchors) >= kill.occurrence and now - anchors[kill.occurrence - 1] >= kill.delay


def recon_run(
    env: dict[str, str], cwd: Path, log_path: Path, *, kill: KillPoint | None = None
) -> Outcome:
    """Run `recon run` over WINDOW, noting when each marker appears in its output; with `kill`,
    SIGKILL its process group at that point (unless it ended before)."""
    argv = [RECON, "run", "--tenant", TENANT, "--from", str(WINDOW[0]), "--to", str(WINDOW[1])]
    seen: dict[str, list[float]] = {name: [] for name in MARKERS}
    killed = False
    with open(log_path, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while True:
                done = process.poll() is not None
                now = time.monotonic() - started
                written = log_path.read_text(errors="replace")
                for name, marker in MARKERS.items():
                    seen[name] += [now] * (written.count(marker) - len(seen[name]))
                if done:
                    break
                if now > RUN_TIMEOUT:
                    raise AssertionError(
                        f"recon run did not finish within {RUN_TIMEOUT:.0f} s:\n{written[-4000:]}"
                    )
                if kill and kill_due(kill, seen[kill.marker], now):
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    killed = True
                    break
                time.sleep(POLL)
        finally:
            if process.poll() is None:  # a failed assertion above: leave nothing behind
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        duration = time.monotonic() - started
    output = log_path.read_text(errors="replace")
    return Outcome(process.returncode, duration, output, seen, killed)


def kill_point(seed: int, reference: Outcome) -> KillPoint:
    """The seed's kill point, drawn in its part of the run (see the module doc)."""
    rng = random.Random(seed)
    sources = len(reference.seen["extracted"])
    extraction = reference.at("extracted", sources) - reference.at("began")
    reconciling = reference.at("reconciled") - reference.at("extracted", sources)
    closing = reference.at("finished") - reference.at("reconciled")
    match SEEDS.index(seed) % 4:
        case 0:
            return KillPoint("began", 1, rng.uniform(0, extraction / 2))
        case 1:
            return KillPoint("began", 1, rng.uniform(extraction / 2, extraction))
        case 2:
            return KillPoint("extracted", sources, rng.uniform(0, reconciling))
        case _:
            return KillPoint("reconciled", 1, rng.uniform(0, closing))


def _last_line(log: str) -> str:
    """The last line the killed run wrote: roughly where the kill landed."""
    lines = [line for line in log.splitlines() if line.strip()]
    return lines[-1][:160] if lines else "(nothing)"


def lock_is_free(database_url: str) -> bool:
    """Whether the tenant's writer lock (a flock next to the SQLite file) can be taken now."""
    path = Path(f"{database_url.removeprefix('sqlite:///')}.{TENANT}.lock")
    if not path.exists():
        return True
    descriptor = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return True
    finally:
        os.close(descriptor)


def run_statuses(engine: Engine) -> list[str]:
    """The status of every recorded run of the window, oldest first."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT status FROM runs WHERE window_from = :start AND window_to = :end "
                    "ORDER BY started_at"
                ),
                {"start": str(WINDOW[0]), "end": str(WINDOW[1])},
            ).scalars()
        )


@pytest.fixture(scope="module")
def reference(
    tenant_database: TenantDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Outcome, Engine]]:
    """An uninterrupted run into its own database."""
    url, env = tenant_database("crash-reference")
    workdir = tmp_path_factory.mktemp("crash-reference")
    outcome = recon_run(env, workdir, workdir / "run.log")
    assert outcome.returncode == 0, outcome.log[-4000:]
    flow = outcome.at("finished") - outcome.at("began")
    print(f"uninterrupted run: {outcome.duration:.1f} s, of which the flow {flow:.1f} s")
    engine = make_engine(url)
    yield outcome, engine
    engine.dispose()


def test_the_reference_run_is_sound(reference: tuple[Outcome, Engine]) -> None:
    outcome, engine = reference
    assert len(outcome.seen["extracted"]) == 4, "whmcs, one bank account, stripe, gocardless"
    assert run_statuses(engine) == ["completed"]
    assert not any(duplicate_keys(engine).values())
    assert conservation_failures(engine, TENANT, WINDOW) == []
    tables = snapshot(engine)
    assert all(tables[name] for name in BUSINESS_COLUMNS), {
        name: sum(rows.values()) for name, rows in tables.items()
    }
    assert sum(tables["quarantined_rows"].values()) == MALFORMED_BANK_LINES
    assert set(NATURAL_KEYS) >= set(BUSINESS_COLUMNS)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_run_killed_at_a_random_point_then_rerun_leaves_the_reference_tables(
    seed: int,
    reference: tuple[Outcome, Engine],
    tenant_database: TenantDatabase,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    ref_outcome, ref_engine = reference
    url, env = tenant_database(f"crash-seed-{seed}")
    workdir = tmp_path_factory.mktemp(f"crash-seed-{seed}")
    point = kill_point(seed, ref_outcome)

    crashed = recon_run(env, workdir, workdir / "killed.log", kill=point)
    where = f"seed {seed}: kill {point.describe()}, after: {_last_line(crashed.log)}"
    assert crashed.killed or crashed.returncode == 0, f"{where}\n{crashed.log[-4000:]}"
    assert lock_is_free(url), f"{where}: the tenant lock outlived the killed process"

    engine = make_engine(url)
    try:
        left = table_counts(engine, ("raw_payloads", "transactions", "allocations"))
        print(f"{where}\n  left behind: {left}, runs {run_statuses(engine)}")
        rerun = recon_run(env, workdir, workdir / "rerun.log")
        assert rerun.returncode == 0, f"{where}\nthe re-run failed:\n{rerun.log[-4000:]}"

        # The killed run is closed as "crashed" by the re-run (which holds the tenant's lock, so
        # the killed writer is provably gone) or is "completed" (if the kill came after its
        # last write); nothing is recorded as failed and nothing is left "running".
        statuses = run_statuses(engine)
        assert statuses[-1] == "completed" and len(statuses) <= 2, f"{where}: {statuses}"
        assert set(statuses) <= {"crashed", "completed"}, f"{where}: {statuses}"
        duplicates = {name: n for name, n in duplicate_keys(engine).items() if n}
        assert not duplicates, f"{where}: duplicate natural keys {duplicates}"
        assert conservation_failures(engine, TENANT, WINDOW) == [], where
        difference = diff_snapshots(snapshot(engine), snapshot(ref_engine))
        assert not difference, f"{where}\n{difference}"
    finally:
        engine.dispose()
