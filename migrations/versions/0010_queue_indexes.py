"""Queue indexes: the work queue's default page (open exceptions, oldest first)

`ix_exceptions_age` on (tenant_id, status, created_at, id) serves the queue's first page and
every keyset page after it straight from the index, without sorting a tenant's open exceptions.
Created with a plain CREATE INDEX (no SQLite batch copy).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_exceptions_age", "exceptions", ["tenant_id", "status", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_exceptions_age", table_name="exceptions")
