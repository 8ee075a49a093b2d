"""Pipeline records: fetch state, run errors

`raw_fetches.superseded_at`: a fetch that never completed (its process was killed, or the
provider failed half-way) is marked superseded once a complete fetch of the same dataset and
account covers its window, so its pages are never replayed nor counted, and are kept as evidence.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("raw_fetches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raw_fetches", schema=None) as batch_op:
        batch_op.drop_column("superseded_at")
