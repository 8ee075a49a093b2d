"""Allocations are append-only: the database refuses UPDATE and DELETE on them (SQLite triggers;
PostgreSQL triggers and no privilege for the application role), no code path tries either, and
the migration that makes it so goes down and up again."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from recon.db import migrate
from recon.db.models import Allocation
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant

TENANT = "acme"
ROOT = Path(__file__).resolve().parents[2]
REFUSALS = (
    "UPDATE allocations SET amount_minor = 1",
    "UPDATE allocations SET reverses_id = id",
    "DELETE FROM allocations",
)


def _one_allocation(owner: Engine, app: Engine) -> None:
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    with tenant_session(app, TENANT) as session:
        session.add(
            Allocation(
                allocation_key="k" * 64, transaction_ref="bank:acc:t1", invoice_id="10001",
                amount_minor=1250, currency="EUR", rule="ref_amount_payer", confidence=99,
                decision="auto",
            )
        )  # fmt: skip


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM allocations")).scalar_one())


@pytest.mark.parametrize("statement", REFUSALS)
def test_sqlite_refuses_update_and_delete(sqlite_engine: Engine, statement: str) -> None:
    _one_allocation(sqlite_engine, sqlite_engine)
    with pytest.raises(DBAPIError, match="append-only"), sqlite_engine.begin() as conn:
        conn.execute(text(statement))
    assert _count(sqlite_engine) == 1


@pytest.mark.parametrize("statement", REFUSALS)
def test_postgresql_refuses_them_to_the_application_role(
    pg_owner_engine: Engine, pg_app_engine: Engine, statement: str
) -> None:
    _one_allocation(pg_owner_engine, pg_app_engine)
    with pytest.raises(DBAPIError, match="permission denied"), pg_app_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": TENANT})
        conn.execute(text(statement))
    assert _count(pg_owner_engine) == 1


@pytest.mark.parametrize("statement", (*REFUSALS, "TRUNCATE allocations CASCADE"))
def test_postgresql_refuses_them_to_the_owner_too(pg_owner_engine: Engine, statement: str) -> None:
    _one_allocation(pg_owner_engine, pg_owner_engine)
    with pytest.raises(DBAPIError, match="append-only"), pg_owner_engine.begin() as conn:
        conn.execute(text(statement))
    assert _count(pg_owner_engine) == 1


def test_the_application_role_may_only_read_and_insert(pg_owner_engine: Engine) -> None:
    with pg_owner_engine.connect() as conn:
        granted = set(
            conn.execute(
                text(
                    "SELECT privilege_type FROM information_schema.role_table_grants "
                    "WHERE grantee = 'recon_app' AND table_name = 'allocations'"
                )
            ).scalars()
        )
    assert granted == {"SELECT", "INSERT"}


def _closing_columns(engine: Engine) -> set[str]:
    names = {c["name"] for c in inspect(engine).get_columns("exceptions")}
    return names & {"closed_reason", "closed_at", "closed_by_run"}


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return {name for name in conn.execute(text(query)).scalars() if "allocations" in name}


@pytest.fixture(params=["sqlite", "postgresql"])
def owner_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An owner's engine migrated to head, on each backend."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_owner_engine"
    yield request.getfixturevalue(name)


def test_the_migration_goes_down_and_up_again(owner_engine: Engine) -> None:
    assert _triggers(owner_engine) and _closing_columns(owner_engine) == {
        "closed_reason", "closed_at", "closed_by_run",
    }  # fmt: skip
    migrate.downgrade(owner_engine, "0003")
    assert not _triggers(owner_engine) and not _closing_columns(owner_engine)
    with owner_engine.begin() as conn:  # below 0004 an allocation may be deleted again
        conn.execute(text("DELETE FROM allocations"))
    migrate.upgrade(owner_engine)
    assert _triggers(owner_engine) and len(_closing_columns(owner_engine)) == 3


# -- no code path updates or deletes an allocation --------------------------------------------------

SCANNED = ("recon", "tasks", "flows", "connectors", "ui", "migrations", "bench")
RAW_SQL = ("update allocations", "delete from allocations", "truncate allocations",
           "truncate table allocations")  # fmt: skip


def _mentions_allocation(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id == "Allocation")
        or (isinstance(n, ast.Attribute) and n.attr == "Allocation")
        for n in ast.walk(node)
    )


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _allocation_names(func: ast.AST) -> set[str]:
    """Names bound, in a function, from an expression that reads allocations (fixed point)."""
    names: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node in ast.walk(func):
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.For | ast.comprehension):
                value = node.iter if isinstance(node, ast.For | ast.comprehension) else node.value
                target = (
                    node.target if not isinstance(node, ast.Assign) else ast.Tuple(node.targets)
                )
                if value is None:
                    continue
                if _mentions_allocation(value) or _targets(value) & names:
                    new = _targets(target) - names
                    if new:
                        names |= new
                        changed = True
    return names


def violations(source: str, label: str) -> list[str]:
    """Every place in `source` that would update or delete an allocation."""
    found: list[str] = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            flat = " ".join(node.value.lower().split())
            found += [f"{label}:{node.lineno}: raw SQL {sql!r}" for sql in RAW_SQL if sql in flat]
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", ""
            )  # fmt: skip
            if name in {"update", "delete"} and node.args and _mentions_allocation(node.args[0]):
                found.append(f"{label}:{node.lineno}: {name}(Allocation)")
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        rows = _allocation_names(func)
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and node.args:
                first = _targets(node.args[0]) & rows
                method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
                if method == "delete" and first:
                    found.append(f"{label}:{node.lineno}: session.delete of an allocation")
                if getattr(node.func, "id", "") == "setattr" and first:
                    found.append(f"{label}:{node.lineno}: setattr on an allocation")
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute) and _targets(target.value) & rows:
                        found.append(f"{label}:{node.lineno}: assignment to an allocation")
    return found


def test_no_code_updates_or_deletes_an_allocation() -> None:
    found: list[str] = []
    files = [p for d in SCANNED if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    for path in files:
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert found == []


OLD_STORE = """
def store_allocations(session, wanted, window_refs):
    existing = {a.allocation_key: a for a in session.scalars(select(Allocation))}
    for key, allocation in existing.items():
        if key not in wanted:
            session.delete(allocation)
        else:
            for field_name, value in wanted[key].items():
                setattr(allocation, field_name, value)
            allocation.run_id = "r"
    session.execute(update(Allocation).values(decision="review"))
    session.execute(text("DELETE FROM allocations WHERE id = 1"))
"""


def test_the_scan_finds_each_kind_of_update_and_delete() -> None:
    """The scan would have caught the store_allocations that updated and deleted in place."""
    found = violations(OLD_STORE, "old")
    for kind in ("session.delete", "setattr", "assignment", "update(Allocation)", "raw SQL"):
        assert any(kind in line for line in found), (kind, found)
