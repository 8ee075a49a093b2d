"""Read speed: the Overview page and the work queue at 1,000,000 transactions

* `ix_allocations_reversal` on allocations (tenant_id, reverses_id), partial on the reversal
  rows only: the "live allocation" anti-join (no reversal points at it) reads the few reversals
  from this index instead of hashing every allocation;
* `ix_transactions_period` (PostgreSQL) on transactions (tenant_id, booked_on) carrying kind,
  amount, source, currency and the natural key: the Overview's figures over a period of
  customer payments read the index alone (an index-only scan), not the table;
* `ix_exceptions_overview` (PostgreSQL) on exceptions (tenant_id, status, kind, currency)
  carrying created_at and amount: the queue's counts and sums by status, kind, age and currency
  and the Overview's open exceptions read the index alone.

On SQLite the INCLUDE columns are left out (they are PostgreSQL's); the indexes are declared on
the models too, so the schema does not drift. Plain CREATE INDEX (no SQLite batch copy, which would drop the
append-only triggers).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    reversal = sa.text("reverses_id IS NOT NULL")
    op.create_index(
        "ix_allocations_reversal",
        "allocations",
        ["tenant_id", "reverses_id"],
        postgresql_where=reversal,
        sqlite_where=reversal,
    )
    op.create_index(
        "ix_transactions_period",
        "transactions",
        ["tenant_id", "booked_on"],
        postgresql_include=[
            "kind",
            "amount_minor",
            "currency",
            "source",
            "account_ref",
            "source_id",
        ],
    )
    op.create_index(
        "ix_exceptions_overview",
        "exceptions",
        ["tenant_id", "status", "kind", "currency"],
        postgresql_include=["created_at", "amount_minor"],
    )


def downgrade() -> None:
    op.drop_index("ix_exceptions_overview", table_name="exceptions")
    op.drop_index("ix_transactions_period", table_name="transactions")
    op.drop_index("ix_allocations_reversal", table_name="allocations")
