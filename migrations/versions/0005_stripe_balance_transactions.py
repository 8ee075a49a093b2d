"""Stripe balance transactions keyed by their own id

A Stripe transaction row is now one balance transaction, keyed by its `txn_...` id (a charge
with a dispute and its reversal, or several refunds, has several). The charge it belongs to and
the charge's payment intent move to their own columns, so the engine still links the row to the
WHMCS payment whose `transid` names the charge.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("charge_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("payment_intent", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_transactions_charge", ["tenant_id", "charge_id"], unique=False)
    # Rows keyed by their charge before this revision name it in `source_id`. Row-level
    # security is forced on PostgreSQL, for the owner too: name each tenant in turn.
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    tenants = [row[0] for row in bind.execute(sa.text("SELECT id FROM tenants"))]
    for tenant in tenants:
        if postgres:
            bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
        bind.execute(
            sa.text(
                "UPDATE transactions SET charge_id = source_id WHERE tenant_id = :t "
                "AND source = 'stripe' AND source_id LIKE 'ch\\_%' ESCAPE '\\'"
            ),
            {"t": tenant},
        )
    if postgres and tenants:
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_charge")
        batch_op.drop_column("payment_intent")
        batch_op.drop_column("charge_id")
