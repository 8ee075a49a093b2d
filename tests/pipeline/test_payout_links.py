"""The engine's payout ↔ bank credit links are append-only, as allocations are: the same result
twice writes nothing, a changed link is a reversal row (negated amount, `reverses_id`) and a new
row, a link whose credit the run decides and no longer links is reversed, and a credit outside
the window that another payout's link holds keeps it (SQLite, PostgreSQL application role)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select, text

from connectors.sandbox.world import SandboxWorld
from recon.db import migrate
from recon.db.engine import make_engine
from recon.db.models import AuditEntry
from recon.db.tenancy import tenant_session
from recon.matching.frames import MatchResult
from tasks.payout_links import LinkChanges, store_payout_matches
from tests.pipeline.conftest import TENANT, _register

LINK_COLUMNS = "id, match_key, run_id, left_ref, right_ref, amount_minor, reverses_id"
LIVE = "reverses_id IS NULL AND id NOT IN (SELECT reverses_id FROM matches WHERE reverses_id IS NOT NULL)"


@pytest.fixture(params=["sqlite", "postgresql"])
def books(
    request: pytest.FixtureRequest, sandbox: SandboxWorld, tmp_path: Path
) -> Iterator[tuple[Engine, Engine]]:
    """(owner, application) engines on a fresh migrated database with the tenant."""
    if request.param == "sqlite":
        owner = app = make_engine(f"sqlite:///{tmp_path / 'recon.db'}")
        migrate.upgrade(owner)
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    _register(owner, sandbox, "http://127.0.0.1:9")
    yield owner, app
    if request.param == "sqlite":
        owner.dispose()


def result(*links: tuple[str, str, int]) -> MatchResult:
    matches = pd.DataFrame(
        {
            "payout_id": pd.Series([p for p, _, _ in links], dtype="str"),
            "transaction_id": pd.Series([t for _, t, _ in links], dtype="str"),
            "amount": pd.Series([a for _, _, a in links], dtype="int64"),
            "shortfall": pd.Series([0] * len(links), dtype="int64"),
        }
    )
    return MatchResult(pd.DataFrame(), pd.DataFrame(), matches, {}, {})


def store(app: Engine, links: MatchResult, run_id: str, window: set[str]) -> LinkChanges:
    with tenant_session(app, TENANT) as session:
        return store_payout_matches(session, TENANT, run_id, links, window)


def all_rows(owner: Engine) -> list[tuple[Any, ...]]:
    with owner.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT {LINK_COLUMNS} FROM matches"))]


def live(owner: Engine) -> set[tuple[str, str, int]]:
    with owner.connect() as conn:
        rows = conn.execute(
            text(f"SELECT left_ref, right_ref, amount_minor FROM matches WHERE {LIVE}")
        )
        return {(r[0], r[1], r[2]) for r in rows}


WINDOW = {"c1", "c2", "c3"}


def test_the_same_links_twice_write_nothing(books: tuple[Engine, Engine]) -> None:
    owner, app = books
    links = result(("po_1", "c1", 4930), ("po_2", "c2", 1000))
    assert store(app, links, "run-1", WINDOW) == LinkChanges(added=2, reversed=0)
    stored = all_rows(owner)
    assert store(app, links, "run-2", WINDOW) == LinkChanges(added=0, reversed=0)
    assert all_rows(owner) == stored


def test_a_changed_link_is_a_reversal_and_a_new_row(books: tuple[Engine, Engine]) -> None:
    owner, app = books
    store(app, result(("po_1", "c1", 4930), ("po_2", "c2", 1000)), "run-1", WINDOW)
    first = {r[3]: r for r in all_rows(owner)}

    changes = store(app, result(("po_1", "c3", 4930), ("po_2", "c2", 1000)), "run-2", WINDOW)
    assert changes == LinkChanges(added=1, reversed=1)
    rows = all_rows(owner)
    assert [r for r in rows if r[0] in {f[0] for f in first.values()}] == list(first.values())
    (reversal,) = [r for r in rows if r[6] is not None]
    assert reversal[3:7] == ("po_1", "c1", -4930, first["po_1"][0])
    assert live(owner) == {("po_1", "c3", 4930), ("po_2", "c2", 1000)}
    assert len({r[1] for r in rows}) == len(rows)  # every row its own key

    with tenant_session(app, TENANT) as session:
        log = session.scalars(select(AuditEntry).where(AuditEntry.action == "match.reversed")).all()
    assert [(e.entity_id, e.details["reason"]) for e in log] == [(reversal[1], "replaced")]

    # and back again: a third generation, not a clash with the first row's key
    store(app, result(("po_1", "c1", 4930), ("po_2", "c2", 1000)), "run-3", WINDOW)
    assert live(owner) == {("po_1", "c1", 4930), ("po_2", "c2", 1000)}


def test_a_link_no_longer_proposed_is_reversed_only_where_the_run_decides_its_credit(
    books: tuple[Engine, Engine],
) -> None:
    owner, app = books
    store(app, result(("po_1", "c1", 4930), ("po_9", "x9", 700)), "run-1", WINDOW | {"x9"})
    # a later window decides c1..c3 but not x9: po_1's link goes, po_9's stays
    changes = store(app, result(), "run-2", WINDOW)
    assert changes == LinkChanges(added=0, reversed=1)
    assert live(owner) == {("po_9", "x9", 700)}


def test_an_evidence_credit_held_by_another_payout_keeps_its_link(
    books: tuple[Engine, Engine],
) -> None:
    owner, app = books
    store(app, result(("po_9", "x9", 700)), "run-1", {"x9"})
    # a run that sees x9 only as evidence proposes it for po_1: the earlier decision stands
    changes = store(app, result(("po_1", "x9", 700)), "run-2", WINDOW)
    assert changes == LinkChanges(added=0, reversed=0)
    assert live(owner) == {("po_9", "x9", 700)}
    # an evidence credit no payout holds is linked
    store(app, result(("po_2", "x8", 500)), "run-3", WINDOW)
    assert live(owner) == {("po_9", "x9", 700), ("po_2", "x8", 500)}
