"""Payout links (`matches`) are append-only like allocations: the database refuses UPDATE and
DELETE on them (SQLite triggers; PostgreSQL triggers, and no privilege for the application role),
no code path tries either, and the migration that makes it so goes down and up again."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from recon.db import migrate
from recon.db.models import Match
from recon.db.tenancy import admin_session, tenant_session
from recon.tenants import TenantSettings, add_tenant

TENANT = "acme"
ROOT = Path(__file__).resolve().parents[2]
REFUSALS = (
    "UPDATE matches SET amount_minor = 1",
    "UPDATE matches SET reverses_id = id",
    "DELETE FROM matches",
)


def _one_link(owner: Engine, app: Engine) -> None:
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    with tenant_session(app, TENANT) as session:
        session.add(
            Match(
                match_key="m" * 64, kind="payout_charge", left_ref="stripe:acct:po_1",
                right_ref="stripe:acct:txn_1", rule="payout_member", confidence=100,
                amount_minor=1250, currency="EUR",
            )
        )  # fmt: skip


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM matches")).scalar_one())


@pytest.mark.parametrize("statement", REFUSALS)
def test_sqlite_refuses_update_and_delete(sqlite_engine: Engine, statement: str) -> None:
    _one_link(sqlite_engine, sqlite_engine)
    with pytest.raises(DBAPIError, match="append-only"), sqlite_engine.begin() as conn:
        conn.execute(text(statement))
    assert _count(sqlite_engine) == 1


@pytest.mark.parametrize("statement", REFUSALS)
def test_postgresql_refuses_them_to_the_application_role(
    pg_owner_engine: Engine, pg_app_engine: Engine, statement: str
) -> None:
    _one_link(pg_owner_engine, pg_app_engine)
    with pytest.raises(DBAPIError, match="permission denied"), pg_app_engine.begin() as conn:
        conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": TENANT})
        conn.execute(text(statement))
    assert _count(pg_owner_engine) == 1


@pytest.mark.parametrize("statement", (*REFUSALS, "TRUNCATE matches CASCADE"))
def test_postgresql_refuses_them_to_the_owner_too(pg_owner_engine: Engine, statement: str) -> None:
    _one_link(pg_owner_engine, pg_owner_engine)
    with pytest.raises(DBAPIError, match="append-only"), pg_owner_engine.begin() as conn:
        conn.execute(text(statement))
    assert _count(pg_owner_engine) == 1


def test_the_application_role_may_only_read_and_insert(pg_owner_engine: Engine) -> None:
    with pg_owner_engine.connect() as conn:
        granted = set(
            conn.execute(
                text(
                    "SELECT privilege_type FROM information_schema.role_table_grants "
                    "WHERE grantee = 'recon_app' AND table_name = 'matches'"
                )
            ).scalars()
        )
    assert granted == {"SELECT", "INSERT"}


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return {name for name in conn.execute(text(query)).scalars() if "matches" in name}


@pytest.fixture(params=["sqlite", "postgresql"])
def owner_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An owner's engine migrated to head, on each backend."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_owner_engine"
    yield request.getfixturevalue(name)


def test_the_migration_goes_down_and_up_again(owner_engine: Engine) -> None:
    assert _triggers(owner_engine)
    migrate.downgrade(owner_engine, "0011")
    assert not _triggers(owner_engine)
    with owner_engine.begin() as conn:  # below 0012 a link may be deleted again
        conn.execute(text("DELETE FROM matches"))
    migrate.upgrade(owner_engine)
    assert _triggers(owner_engine)


# -- no code path updates or deletes a payout link ------------------------------------------------

SCANNED = ("recon", "tasks", "flows", "connectors", "ui", "apps", "bench")
RAW_SQL = ("update matches", "delete from matches", "truncate matches", "truncate table matches")


def _python_files() -> Iterator[Path]:
    for folder in SCANNED:
        yield from (ROOT / folder).rglob("*.py")


def test_no_code_path_updates_or_deletes_a_link() -> None:
    found = []
    for path in _python_files():
        source = path.read_text()
        lowered = " ".join(source.lower().split())
        found += [f"{path.relative_to(ROOT)}: {sql!r}" for sql in RAW_SQL if sql in lowered]
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"update", "delete"}
                and any(isinstance(a, ast.Name) and a.id == "Match" for a in node.args)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}(Match)")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "delete"
                and any(
                    isinstance(a, ast.Name) and "match" in a.id.lower() and a.id != "matches"
                    for a in node.args
                )
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: session.delete(a link)")
    assert found == []
