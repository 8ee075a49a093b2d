"""Append-only decisions

`allocations` becomes append-only like `audit_log`: an allocation is undone by a reversal row
(`reverses_id`), never updated or deleted. Both backends get triggers that refuse UPDATE and
DELETE on it (PostgreSQL also TRUNCATE, which stops the owner too); on PostgreSQL the
application role `recon_app` keeps only SELECT and INSERT on it.

`exceptions` are no longer deleted when they stop applying: the engine closes them with a
reason (`closed_reason`), a time (`closed_at`) and the run that closed them (`closed_by_run`).

Downgrade drops the columns, the triggers, and gives `recon_app` back UPDATE and DELETE.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "recon_app"
CLOSED_COLUMNS = ("closed_reason", "closed_at", "closed_by_run")


def _upgrade_postgresql() -> None:
    op.execute(
        """
        CREATE FUNCTION allocations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'allocations is append-only: undo an allocation with a reversal row';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER allocations_no_update_delete BEFORE UPDATE OR DELETE ON allocations "
        "FOR EACH ROW EXECUTE FUNCTION allocations_append_only()"
    )
    op.execute(
        "CREATE TRIGGER allocations_no_truncate BEFORE TRUNCATE ON allocations "
        "FOR EACH STATEMENT EXECUTE FUNCTION allocations_append_only()"
    )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON allocations FROM {APP_ROLE}, PUBLIC")


def _downgrade_postgresql() -> None:
    op.execute("DROP TRIGGER IF EXISTS allocations_no_truncate ON allocations")
    op.execute("DROP TRIGGER IF EXISTS allocations_no_update_delete ON allocations")
    op.execute("DROP FUNCTION IF EXISTS allocations_append_only()")
    op.execute(f"GRANT UPDATE, DELETE ON allocations TO {APP_ROLE}")


def _upgrade_sqlite() -> None:
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER allocations_no_{action.lower()} BEFORE {action} ON allocations "
            "BEGIN SELECT RAISE(ABORT, 'allocations is append-only: undo an allocation with a "
            "reversal row'); END"
        )


def _downgrade_sqlite() -> None:
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS allocations_no_{action}")


def upgrade() -> None:
    # Plain ADD COLUMN (not batch mode): SQLite would otherwise rebuild the table.
    op.add_column("exceptions", sa.Column("closed_reason", sa.Text(), nullable=True))
    op.add_column("exceptions", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("exceptions", sa.Column("closed_by_run", sa.String(length=36), nullable=True))
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _upgrade_postgresql()
    elif dialect == "sqlite":
        _upgrade_sqlite()


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _downgrade_postgresql()
        for column in reversed(CLOSED_COLUMNS):
            op.drop_column("exceptions", column)
    elif dialect == "sqlite":
        _downgrade_sqlite()
        # SQLite (3.35+) drops a column in place, without rebuilding the table.
        for column in reversed(CLOSED_COLUMNS):
            op.execute(f"ALTER TABLE exceptions DROP COLUMN {column}")
