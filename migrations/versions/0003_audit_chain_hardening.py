"""Audit chain hardening

The audit chain becomes keyed: each entry records its chain format (`chain_version`: 1 for the
plain SHA-256 entries written before this revision, 2 for HMAC-SHA256 with the `audit_chain_key`
secret) and the id of the key it was written with (`key_id`, NULL for format 1). Entries already
stored keep format 1; the first keyed entry appended after them (any append, or
`recon audit seal`) binds them, since its HMAC covers their head hash. No migration needs the key.

PostgreSQL also refuses TRUNCATE on `audit_log`: a BEFORE TRUNCATE statement trigger (which stops
the owner too, TRUNCATE ... CASCADE from `tenants` included) and no TRUNCATE privilege for
`recon_app` or PUBLIC (it never had it; the revoke keeps a stray grant from giving it). SQLite has
no TRUNCATE; its DELETE trigger from 0002 already refuses `DELETE FROM audit_log`.

Downgrade drops both columns and the trigger, but refuses while keyed entries exist: without the
marker they would read as format 1 and never verify again, and evidence must not be lost silently.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from recon.errors import ConfigError

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "recon_app"


def upgrade() -> None:
    # Plain ADD COLUMN on both backends (not batch mode): SQLite would otherwise rebuild the
    # table and drop its append-only triggers on the way.
    op.add_column(
        "audit_log",
        sa.Column("chain_version", sa.Integer(), server_default="1", nullable=False),
    )
    op.add_column("audit_log", sa.Column("key_id", sa.String(length=16), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
        op.execute(f"REVOKE TRUNCATE ON audit_log FROM {APP_ROLE}, PUBLIC")


def downgrade() -> None:
    bind = op.get_bind()
    keyed = bind.execute(sa.text("SELECT count(*) FROM audit_log WHERE chain_version > 1")).scalar()
    if keyed:
        raise ConfigError(
            f"audit_log holds {keyed} entries keyed with audit_chain_key; below revision 0003 "
            "they could never be verified again, so the downgrade is refused (restore a backup "
            "taken before 0003 instead)"
        )
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.drop_column("audit_log", "key_id")
        op.drop_column("audit_log", "chain_version")
    else:
        # SQLite (3.35+) drops a column in place; the 0002 triggers stay as they are.
        op.execute("ALTER TABLE audit_log DROP COLUMN key_id")
        op.execute("ALTER TABLE audit_log DROP COLUMN chain_version")
