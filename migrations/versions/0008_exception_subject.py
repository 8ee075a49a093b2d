"""Exception subject

An exception's key was (kind, transaction, invoice), so exceptions about neither a payment nor
an invoice alone (a payout missing, short or incomplete; a WHMCS payment with no money behind
it) shared one key per kind and collapsed into one row. `subject_ref` names that subject (the
payout id, the WHMCS payment id) and is part of the key of new rows. Existing rows keep their
key; their subject is read from their detail here, so the engine recognises them on its next
run instead of opening a duplicate.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:30:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the start of each subject-bearing kind's detail, as the engine words it
_SUBJECT_IN_DETAIL = {
    "payout_missing": re.compile(r"^payout (\S+) "),
    "payout_incomplete": re.compile(r"^payout (\S+) "),
    "payout_shortfall": re.compile(r"^payout (\S+) is "),
    "unbacked_payment": re.compile(r"^WHMCS payment (\S+) "),
}


def upgrade() -> None:
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_ref", sa.String(length=255), nullable=True))
    # Row-level security is forced on PostgreSQL, for the owner too: name each tenant in turn.
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    tenants = [row[0] for row in bind.execute(sa.text("SELECT id FROM tenants"))]
    for tenant in tenants:
        if postgres:
            bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
        rows = bind.execute(
            sa.text(
                "SELECT id, kind, detail FROM exceptions WHERE tenant_id = :t "
                "AND transaction_ref IS NULL AND kind IN "
                "('payout_missing', 'payout_incomplete', 'payout_shortfall', 'unbacked_payment')"
            ),
            {"t": tenant},
        ).all()
        for row_id, kind, detail in rows:
            found = _SUBJECT_IN_DETAIL[kind].match(detail or "")
            if found:
                bind.execute(
                    sa.text("UPDATE exceptions SET subject_ref = :s WHERE id = :i"),
                    {"s": found.group(1), "i": row_id},
                )
    if postgres and tenants:
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def downgrade() -> None:
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_column("subject_ref")
