"""People: users, tenant grants, who changed an exception, notes on allocations, bank balances

* `users` (not tenant-scoped): email, role (finance | auditor | admin), Argon2 hash, active;
* `tenant_grants` (tenant-scoped, under row-level security): which users may see a tenant;
* `exceptions.resolution_kind` and `exceptions.updated_by`: how a person resolved it, and who
  made the last change (what a stale write's ConflictError names);
* `allocations.note`: why a person allocated or reversed. Added with a plain ADD COLUMN, never a
  SQLite batch copy, which would drop the append-only triggers;
* `balance_snapshots` (tenant-scoped): bank balances as reported, for the report's tie-out.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 18:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "recon_app"
POLICY_CHECK = "tenant_id = current_setting('app.tenant_id', true)"
NEW_TENANT_TABLES = ("tenant_grants", "balance_snapshots")
PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _create_tables() -> None:
    op.create_table(
        "users",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role IN ('finance', 'auditor', 'admin')", name=op.f("ck_users_role_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "tenant_grants",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("user_id", PK, nullable=False),
        sa.Column("granted_by", sa.String(length=200), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_grants_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tenant_grants_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_grants")),
        sa.UniqueConstraint("tenant_id", "user_id", name=op.f("uq_tenant_grants_tenant_id_user_id")),
    )
    with op.batch_alter_table("tenant_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tenant_grants_tenant_id"), ["tenant_id"])
        batch_op.create_index(batch_op.f("ix_tenant_grants_user_id"), ["user_id"])
    op.create_table(
        "balance_snapshots",
        sa.Column("id", PK, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("account_ref", sa.String(length=255), nullable=False),
        sa.Column("balance_type", sa.String(length=32), nullable=False),
        sa.Column("reference_date", sa.Date(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("raw_payload_id", PK, nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["raw_payload_id"],
            ["raw_payloads.id"],
            name=op.f("fk_balance_snapshots_raw_payload_id_raw_payloads"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_balance_snapshots_tenant_id_tenants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_snapshots")),
        sa.UniqueConstraint(
            "tenant_id",
            "account_ref",
            "balance_type",
            "reference_date",
            "currency",
            name=op.f("uq_balance_snapshots_tenant_id_account_ref_balance_type_reference_date_currency"),
        ),
    )
    with op.batch_alter_table("balance_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_balance_snapshots_tenant_id"), ["tenant_id"])


def _secure_postgresql() -> None:
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON users TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    for table in NEW_TENANT_TABLES:
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP_ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({POLICY_CHECK}) WITH CHECK ({POLICY_CHECK})"
        )


def upgrade() -> None:
    _create_tables()
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution_kind", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("updated_by", sa.String(length=200), nullable=True))
    op.add_column("allocations", sa.Column("note", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        _secure_postgresql()


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    # in place on both backends (SQLite >= 3.35): a batch copy would drop the triggers
    op.execute("ALTER TABLE allocations DROP COLUMN note")
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_column("updated_by")
        batch_op.drop_column("resolution_kind")
    for table in NEW_TENANT_TABLES:
        if postgres:
            op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
    with op.batch_alter_table("balance_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_balance_snapshots_tenant_id"))
    op.drop_table("balance_snapshots")
    with op.batch_alter_table("tenant_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tenant_grants_user_id"))
        batch_op.drop_index(batch_op.f("ix_tenant_grants_tenant_id"))
    op.drop_table("tenant_grants")
    op.drop_table("users")
