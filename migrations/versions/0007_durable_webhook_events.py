"""Durable webhook events

`webhook_events` becomes the receiver's outbox: a verified event is stored with the window it asks
to reconcile in the same transaction as the 200, and the receiver's emitter hands it to Prefect
until Prefect accepts it (`processed_at`). `emit_attempts`, `next_emit_at` and `last_emit_error`
carry the retry state. Rows received before this revision were emitted synchronously (or rolled
back), so they are marked processed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window_from", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("window_to", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("emit_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("next_emit_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_emit_error", sa.String(length=200), nullable=True))
        batch_op.create_index(
            "ix_webhook_events_pending", ["tenant_id", "processed_at"], unique=False
        )
    # Row-level security is forced on PostgreSQL, for the owner too: name each tenant in turn.
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    tenants = [row[0] for row in bind.execute(sa.text("SELECT id FROM tenants"))]
    for tenant in tenants:
        if postgres:
            bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
        bind.execute(
            sa.text(
                "UPDATE webhook_events SET processed_at = received_at "
                "WHERE tenant_id = :t AND processed_at IS NULL"
            ),
            {"t": tenant},
        )
    if postgres and tenants:
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_events_pending")
        batch_op.drop_column("last_emit_error")
        batch_op.drop_column("next_emit_at")
        batch_op.drop_column("emit_attempts")
        batch_op.drop_column("window_to")
        batch_op.drop_column("window_from")
