"""Queue indexes: the work queue's default page, one exception's payment and its history

* `ix_exceptions_age` on (tenant_id, status, created_at, id) serves the queue's first page and
  every keyset page after it straight from the index, without sorting a tenant's open exceptions;
* `ix_exceptions_transaction` on (tenant_id, transaction_ref): the other exceptions of a payment
  (the engine's runners-up) and the engine's closing of a window's exceptions;
* `ix_audit_log_entity` on (tenant_id, entity, entity_id): one exception's audit history.

Created with plain CREATE INDEX (no SQLite batch copy, which would drop the append-only
triggers of audit_log).

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
    op.create_index("ix_exceptions_transaction", "exceptions", ["tenant_id", "transaction_ref"])
    op.create_index("ix_audit_log_entity", "audit_log", ["tenant_id", "entity", "entity_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_index("ix_exceptions_transaction", table_name="exceptions")
    op.drop_index("ix_exceptions_age", table_name="exceptions")
