"""Allocations and payout links (`matches`) are append-only: the database refuses UPDATE and
DELETE on them (SQLite triggers; PostgreSQL triggers and no privilege for the application role),
no code path tries either, and the migrations that make it so (0004, 0012) go down and up again."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from recon.db import migrate
from recon.db.models import Allocation, Match
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant

TENANT = "acme"
ROOT = Path(__file__).resolve().parents[2]
TABLES = ("allocations", "matches")
REFUSALS = (
    "UPDATE {table} SET amount_minor = 1",
    "UPDATE {table} SET reverses_id = id",
    "DELETE FROM {table}",
)


def _one_row(owner: Engine, app: Engine, table: str) -> None:
    """One allocation or one payout link of a new tenant."""
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    with tenant_session(app, TENANT) as session:
        if table == "allocations":
            session.add(
                Allocation(
                    allocation_key="k" * 64, transaction_ref="bank:acc:t1", invoice_id="10001",
                    amount_minor=1250, currency="EUR", rule="ref_amount_payer", confidence=99,
                    decision="auto",
                )
            )  # fmt: skip
        else:
            session.add(
                Match(
                    match_key="m" * 64, kind="payout_charge", left_ref="stripe:acct:po_1",
                    right_ref="stripe:acct:txn_1", rule="payout_member", confidence=100,
                    amount_minor=1250, currency="EUR",
                )
            )  # fmt: skip


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("statement", REFUSALS)
def test_sqlite_refuses_update_and_delete(
    sqlite_engine: Engine, table: str, statement: str
) -> None:
    _one_row(sqlite_engine, sqlite_engine, table)
    with pytest.raises(DBAPIError, match="append-only"), sqlite_engine.begin() as conn:
        conn.execute(text(statement.format(table=table)))
    assert _count(sqlite_engine, table) == 1


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("statement", REFUSALS)
def test_postgresql_refuses_them_to_the_application_role(
    pg_owner_engine: Engine, pg_app_engine: Engine, table: str, statement: str
) -> None:
    _one_row(pg_owner_engine, pg_app_engine, table)
    with pytest.raises(DBAPIError, match="permission denied"), pg_app_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": TENANT})
        conn.execute(text(statement.format(table=table)))
    assert _count(pg_owner_engine, table) == 1


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("statement", (*REFUSALS, "TRUNCATE {table} CASCADE"))
def test_postgresql_refuses_them_to_the_owner_too(
    pg_owner_engine: Engine, table: str, statement: str
) -> None:
    _one_row(pg_owner_engine, pg_owner_engine, table)
    with pytest.raises(DBAPIError, match="append-only"), pg_owner_engine.begin() as conn:
        conn.execute(text(statement.format(table=table)))
    assert _count(pg_owner_engine, table) == 1


@pytest.mark.parametrize("table", TABLES)
def test_the_application_role_may_only_read_and_insert(pg_owner_engine: Engine, table: str) -> None:
    with pg_owner_engine.connect() as conn:
        granted = set(
            conn.execute(
                text(
                    "SELECT privilege_type FROM information_schema.role_table_grants "
                    "WHERE grantee = 'recon_app' AND table_name = :table"
                ),
                {"table": table},
            ).scalars()
        )
    assert granted == {"SELECT", "INSERT"}


def _closing_columns(engine: Engine) -> set[str]:
    names = {c["name"] for c in inspect(engine).get_columns("exceptions")}
    return names & {"closed_reason", "closed_at", "closed_by_run"}


def _triggers(engine: Engine, table: str = "allocations") -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return {name for name in conn.execute(text(query)).scalars() if table in name}


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


def test_the_payout_links_migration_goes_down_and_up_again(owner_engine: Engine) -> None:
    assert _triggers(owner_engine, "matches")
    migrate.downgrade(owner_engine, "0011")
    assert not _triggers(owner_engine, "matches") and _triggers(owner_engine)
    with owner_engine.begin() as conn:  # below 0012 a payout link may be deleted again
        conn.execute(text("DELETE FROM matches"))
    migrate.upgrade(owner_engine)
    assert _triggers(owner_engine, "matches")


# -- no code path updates or deletes an allocation or a payout link ----------------------------------

SCANNED = ("recon", "tasks", "flows", "connectors", "ui", "apps", "migrations", "bench")
MODELS = {"Allocation": "allocations", "Match": "matches"}


def _raw_sql(table: str) -> tuple[str, ...]:
    return (f"update {table}", f"delete from {table}", f"truncate {table}",
            f"truncate table {table}")  # fmt: skip


def _mentions(node: ast.AST, model: str) -> bool:
    return any(
        (isinstance(n, ast.Name) and n.id == model)
        or (isinstance(n, ast.Attribute) and n.attr == model)
        for n in ast.walk(node)
    )


def _targets(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _row_names(func: ast.AST, model: str) -> set[str]:
    """Names bound, in a function, from an expression that reads `model` rows (fixed point)."""
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
                if _mentions(value, model) or _targets(value) & names:
                    new = _targets(target) - names
                    if new:
                        names |= new
                        changed = True
    return names


def violations(source: str, label: str, model: str = "Allocation") -> list[str]:
    """Every place in `source` that would update or delete a row of `model`."""
    found: list[str] = []
    what = {"Allocation": "an allocation", "Match": "a payout link"}[model]
    raw_sql = _raw_sql(MODELS[model])
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            flat = " ".join(node.value.lower().split())
            found += [f"{label}:{node.lineno}: raw SQL {sql!r}" for sql in raw_sql if sql in flat]
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
                node.func, "id", ""
            )  # fmt: skip
            # update(Model) or Model.__table__.update(); a set's .update(...) is no statement
            method_of_model = isinstance(node.func, ast.Attribute) and _mentions(
                node.func.value, model
            )
            statement = method_of_model or (
                isinstance(node.func, ast.Name)
                and bool(node.args)
                and _mentions(node.args[0], model)
            )
            if name == "update" and statement:
                found.append(f"{label}:{node.lineno}: {name}({model})")
            if name == "delete" and node.args and _mentions(node.args[0], model):
                found.append(f"{label}:{node.lineno}: {name}({model})")
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        rows = _row_names(func, model)
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and node.args:
                first = _targets(node.args[0]) & rows
                method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
                if method == "delete" and first:
                    found.append(f"{label}:{node.lineno}: session.delete of {what}")
                if getattr(node.func, "id", "") == "setattr" and first:
                    found.append(f"{label}:{node.lineno}: setattr on {what}")
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute) and _targets(target.value) & rows:
                        found.append(f"{label}:{node.lineno}: assignment to {what}")
    return found


@pytest.mark.parametrize("model", MODELS)
def test_no_code_updates_or_deletes_an_allocation_or_a_link(model: str) -> None:
    found: list[str] = []
    files = [p for d in SCANNED if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 50
    for path in files:
        if model == "Match" and path.parent.name == "versions":
            continue  # migrations below 0012 predate the rule for links
        found += violations(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)), model)
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


OLD_LINKS = """
def store_payout_matches(session, wanted):
    for link in session.scalars(select(Match).where(Match.kind == "payout_bank")):
        if link.match_key not in wanted:
            session.delete(link)
        else:
            link.confidence = wanted[link.match_key]
    session.execute(delete(Match).where(Match.run_id == "r"))
    session.execute(text("UPDATE matches SET rule = 'x'"))
    session.execute(Match.__table__.update().values(rule="x"))
    keys.update(session.scalars(select(Match.match_key)))  # a set: not a statement
"""


def test_the_scan_finds_each_kind_of_update_and_delete_of_a_link() -> None:
    found = violations(OLD_LINKS, "old", "Match")
    for kind in ("session.delete", "assignment", "delete(Match)", "update(Match)", "raw SQL"):
        assert any(kind in line for line in found), (kind, found)
    set_update = 1 + OLD_LINKS.splitlines().index(
        "    keys.update(session.scalars(select(Match.match_key)))  # a set: not a statement"
    )
    assert not any(f":{set_update}:" in line for line in found), found
    assert violations(OLD_LINKS, "old") == []  # none of it touches allocations
