"""Append-only payout links

`matches` (a payout's links to the charges it paid out) became append-only in code with issue 9:
a link the engine no longer proposes is undone by a reversal row (`reverses_id`). This makes the
database hold to it as it does for `allocations` (0004): triggers refuse UPDATE and DELETE on both
backends (and TRUNCATE on PostgreSQL, which stops the owner too), and the application role
`recon_app` keeps only SELECT and INSERT on PostgreSQL.

Downgrade drops the triggers and gives `recon_app` back UPDATE and DELETE.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "recon_app"
REFUSAL = "matches is append-only: undo a payout link with a reversal row"


def _upgrade_postgresql() -> None:
    op.execute(
        f"""
        CREATE FUNCTION matches_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{REFUSAL}';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER matches_no_update_delete BEFORE UPDATE OR DELETE ON matches "
        "FOR EACH ROW EXECUTE FUNCTION matches_append_only()"
    )
    op.execute(
        "CREATE TRIGGER matches_no_truncate BEFORE TRUNCATE ON matches "
        "FOR EACH STATEMENT EXECUTE FUNCTION matches_append_only()"
    )
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON matches FROM {APP_ROLE}, PUBLIC")


def _downgrade_postgresql() -> None:
    op.execute("DROP TRIGGER IF EXISTS matches_no_truncate ON matches")
    op.execute("DROP TRIGGER IF EXISTS matches_no_update_delete ON matches")
    op.execute("DROP FUNCTION IF EXISTS matches_append_only()")
    op.execute(f"GRANT UPDATE, DELETE ON matches TO {APP_ROLE}")


def _upgrade_sqlite() -> None:
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER matches_no_{action.lower()} BEFORE {action} ON matches "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def _downgrade_sqlite() -> None:
    for action in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS matches_no_{action}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _downgrade_postgresql()
    else:
        _downgrade_sqlite()
