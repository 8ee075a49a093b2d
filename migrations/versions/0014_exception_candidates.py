"""Exception candidates: a runner-up's rule and confidence as data

An ambiguous payment's runners-up are `ambiguous` exceptions, one per other candidate, whose rule
and confidence lived only in their detail ("another candidate: invoice 123 and others,
confidence 87 (name_amount)"); the review read them back out of the text. `rule` and
`confidence` hold them now, written by the engine's store. Existing runner-up rows are filled
here from their detail, tenant by tenant (row-level security is forced on PostgreSQL, for the
owner too), with a plain UPDATE that leaves `version` as it is: the facts were there already, so
neither a person's pending write nor the next run sees a change. Other rows keep none.

Plain ADD COLUMN (no SQLite batch copy of the table). Downgrade drops both columns.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 17:30:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the engine's wording of a runner-up (recon/matching/engine.py `_runner_ups`) up to 0014
RUNNER_UP = re.compile(
    r"^another candidate: invoice \S+?(?: and others)?, confidence (\d+) \(([^()\s]{1,64})\)$"
)
_CHUNK = 500


def upgrade() -> None:
    op.add_column("exceptions", sa.Column("rule", sa.String(length=64), nullable=True))
    op.add_column("exceptions", sa.Column("confidence", sa.Integer(), nullable=True))
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    tenants = [row[0] for row in bind.execute(sa.text("SELECT id FROM tenants"))]
    for tenant in tenants:
        if postgres:
            bind.execute(sa.text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
        _fill(bind, tenant)
    if postgres and tenants:
        bind.execute(sa.text("SELECT set_config('app.tenant_id', '', true)"))


def _fill(bind: sa.Connection, tenant: str) -> None:
    """Read each runner-up's rule and confidence from its detail (any status)."""
    rows = bind.execute(
        sa.text(
            "SELECT id, detail FROM exceptions WHERE tenant_id = :t AND kind = 'ambiguous' "
            "AND detail LIKE 'another candidate: %'"
        ),
        {"t": tenant},
    ).all()
    params = []
    for row_id, detail in rows:
        found = RUNNER_UP.match(detail or "")
        if found:
            params.append({"r": found.group(2), "c": int(found.group(1)), "i": row_id})
    update = sa.text("UPDATE exceptions SET rule = :r, confidence = :c WHERE id = :i")
    for start in range(0, len(params), _CHUNK):
        bind.execute(update, params[start : start + _CHUNK])


def downgrade() -> None:
    op.drop_column("exceptions", "confidence")
    op.drop_column("exceptions", "rule")
