"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-30 10:40:37
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tenants',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants'))
    )
    op.create_table('allocations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('allocation_key', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('transaction_ref', sa.String(length=255), nullable=False),
    sa.Column('invoice_id', sa.String(length=255), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('confidence', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.CheckConstraint("decision IN ('auto', 'review', 'manual')", name=op.f('ck_allocations_decision_known')),
    sa.ForeignKeyConstraint(['reverses_id'], ['allocations.id'], name=op.f('fk_allocations_reverses_id_allocations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_allocations_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_allocations')),
    sa.UniqueConstraint('tenant_id', 'allocation_key', name=op.f('uq_allocations_tenant_id_allocation_key'))
    )
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.create_index('ix_allocations_invoice', ['tenant_id', 'invoice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_allocations_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_allocations_transaction', ['tenant_id', 'transaction_ref'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('entity', sa.String(length=100), nullable=False),
    sa.Column('entity_id', sa.String(length=255), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('entry_hash', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_audit_log_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    sa.UniqueConstraint('tenant_id', 'seq', name=op.f('uq_audit_log_tenant_id_seq'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('exceptions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('exception_key', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('transaction_ref', sa.String(length=255), nullable=True),
    sa.Column('invoice_id', sa.String(length=255), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee', sa.String(length=200), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.String(length=200), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_exceptions_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exceptions')),
    sa.UniqueConstraint('tenant_id', 'exception_key', name=op.f('uq_exceptions_tenant_id_exception_key'))
    )
    with op.batch_alter_table('exceptions', schema=None) as batch_op:
        batch_op.create_index('ix_exceptions_queue', ['tenant_id', 'status', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_exceptions_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('invoices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.String(length=255), nullable=False),
    sa.Column('invoice_num', sa.String(length=255), nullable=True),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('client_name', sa.String(length=300), nullable=True),
    sa.Column('company_name', sa.String(length=300), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('total_minor', sa.BigInteger(), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('balance_minor >= 0', name=op.f('ck_invoices_balance_not_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invoices_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('tenant_id', 'invoice_id', name=op.f('uq_invoices_tenant_id_invoice_id'))
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invoices_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('matches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('match_key', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('left_ref', sa.String(length=255), nullable=False),
    sa.Column('right_ref', sa.String(length=255), nullable=False),
    sa.Column('rule', sa.String(length=64), nullable=False),
    sa.Column('confidence', sa.Integer(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['reverses_id'], ['matches.id'], name=op.f('fk_matches_reverses_id_matches')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_matches_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_matches')),
    sa.UniqueConstraint('tenant_id', 'match_key', name=op.f('uq_matches_tenant_id_match_key'))
    )
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_matches_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('payout_lines',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('payout_id', sa.String(length=255), nullable=False),
    sa.Column('transaction_id', sa.String(length=255), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payout_lines_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payout_lines')),
    sa.UniqueConstraint('tenant_id', 'source', 'payout_id', 'transaction_id', name=op.f('uq_payout_lines_tenant_id_source_payout_id_transaction_id'))
    )
    with op.batch_alter_table('payout_lines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payout_lines_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('payouts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('payout_id', sa.String(length=255), nullable=False),
    sa.Column('arrival_on', sa.Date(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_payouts_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payouts')),
    sa.UniqueConstraint('tenant_id', 'source', 'payout_id', name=op.f('uq_payouts_tenant_id_source_payout_id'))
    )
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payouts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('provider_quotas',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('account_ref', sa.String(length=255), nullable=False),
    sa.Column('endpoint', sa.String(length=200), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('calls', sa.Integer(), nullable=False),
    sa.Column('limit', sa.Integer(), nullable=True),
    sa.Column('reset_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_provider_quotas_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_quotas')),
    sa.UniqueConstraint('tenant_id', 'provider', 'account_ref', 'endpoint', 'day', name=op.f('uq_provider_quotas_tenant_id_provider_account_ref_endpoint_day'))
    )
    with op.batch_alter_table('provider_quotas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_quotas_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('raw_fetches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('account_ref', sa.String(length=255), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('window_from', sa.Date(), nullable=False),
    sa.Column('window_to', sa.Date(), nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_raw_fetches_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_raw_fetches'))
    )
    with op.batch_alter_table('raw_fetches', schema=None) as batch_op:
        batch_op.create_index('ix_raw_fetches_replay', ['tenant_id', 'provider', 'account_ref', 'dataset', 'window_from', 'window_to'], unique=False)
        batch_op.create_index(batch_op.f('ix_raw_fetches_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('recorded_payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('whmcs_txn_id', sa.String(length=255), nullable=False),
    sa.Column('invoice_id', sa.String(length=255), nullable=True),
    sa.Column('recorded_on', sa.Date(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fees_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('gateway', sa.String(length=100), nullable=True),
    sa.Column('transid', sa.String(length=255), nullable=True),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_recorded_payments_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recorded_payments')),
    sa.UniqueConstraint('tenant_id', 'whmcs_txn_id', name=op.f('uq_recorded_payments_tenant_id_whmcs_txn_id'))
    )
    with op.batch_alter_table('recorded_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recorded_payments_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recorded_payments_transid'), ['transid'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('flow_run_id', sa.String(length=36), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('window_from', sa.Date(), nullable=False),
    sa.Column('window_to', sa.Date(), nullable=False),
    sa.Column('sources', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('sums', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_runs_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('source_accounts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('external_id', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('institution_id', sa.String(length=100), nullable=True),
    sa.Column('requisition_id', sa.String(length=100), nullable=True),
    sa.Column('consent_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_source_accounts_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_source_accounts')),
    sa.UniqueConstraint('tenant_id', 'provider', 'external_id', name=op.f('uq_source_accounts_tenant_id_provider_external_id'))
    )
    with op.batch_alter_table('source_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_source_accounts_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('watermarks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('account_ref', sa.String(length=255), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('loaded_through', sa.Date(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_watermarks_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watermarks')),
    sa.UniqueConstraint('tenant_id', 'provider', 'account_ref', 'dataset', name=op.f('uq_watermarks_tenant_id_provider_account_ref_dataset'))
    )
    with op.batch_alter_table('watermarks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_watermarks_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('webhook_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('event_type', sa.String(length=100), nullable=False),
    sa.Column('payload_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_webhook_events_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
    sa.UniqueConstraint('tenant_id', 'provider', 'event_id', name=op.f('uq_webhook_events_tenant_id_provider_event_id'))
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_events_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('applied_payments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('allocation_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('invoice_id', sa.String(length=255), nullable=False),
    sa.Column('transid', sa.String(length=255), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fees_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('gateway', sa.String(length=100), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('applied_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['allocation_id'], ['allocations.id'], name=op.f('fk_applied_payments_allocation_id_allocations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_applied_payments_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_applied_payments')),
    sa.UniqueConstraint('tenant_id', 'invoice_id', 'transid', name=op.f('uq_applied_payments_tenant_id_invoice_id_transid'))
    )
    with op.batch_alter_table('applied_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applied_payments_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('exception_comments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('exception_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['exception_id'], ['exceptions.id'], name=op.f('fk_exception_comments_exception_id_exceptions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_exception_comments_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exception_comments'))
    )
    with op.batch_alter_table('exception_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exception_comments_exception_id'), ['exception_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_exception_comments_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('raw_payloads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('fetch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('page', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('account_ref', sa.String(length=255), nullable=False),
    sa.Column('endpoint', sa.String(length=200), nullable=False),
    sa.Column('request_key', sa.String(length=1000), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['fetch_id'], ['raw_fetches.id'], name=op.f('fk_raw_payloads_fetch_id_raw_fetches')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_raw_payloads_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_raw_payloads')),
    sa.UniqueConstraint('tenant_id', 'fetch_id', 'page', name=op.f('uq_raw_payloads_tenant_id_fetch_id_page'))
    )
    with op.batch_alter_table('raw_payloads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_raw_payloads_fetch_id'), ['fetch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_raw_payloads_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('validation_results',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('suite', sa.String(length=100), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('rows_evaluated', sa.BigInteger(), nullable=False),
    sa.Column('rows_failed', sa.BigInteger(), nullable=False),
    sa.Column('held', sa.Boolean(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_validation_results_run_id_runs')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_validation_results_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_validation_results'))
    )
    with op.batch_alter_table('validation_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_validation_results_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_validation_results_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('quarantined_rows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=36), nullable=True),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('account_ref', sa.String(length=255), nullable=True),
    sa.Column('row_key', sa.String(length=300), nullable=False),
    sa.Column('booked_on', sa.Date(), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.String(length=8), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('record', sa.JSON(), nullable=False),
    sa.Column('raw_payload_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['raw_payload_id'], ['raw_payloads.id'], name=op.f('fk_quarantined_rows_raw_payload_id_raw_payloads')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_quarantined_rows_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantined_rows')),
    sa.UniqueConstraint('tenant_id', 'provider', 'dataset', 'row_key', name=op.f('uq_quarantined_rows_tenant_id_provider_dataset_row_key'))
    )
    with op.batch_alter_table('quarantined_rows', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantined_rows_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('transactions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('account_ref', sa.String(length=255), nullable=False),
    sa.Column('source_id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('booked_on', sa.Date(), nullable=False),
    sa.Column('value_on', sa.Date(), nullable=True),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('counterparty', sa.String(length=500), nullable=True),
    sa.Column('reference', sa.Text(), nullable=True),
    sa.Column('payout_id', sa.String(length=255), nullable=True),
    sa.Column('content_sha256', sa.String(length=64), nullable=True),
    sa.Column('raw_payload_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.ForeignKeyConstraint(['raw_payload_id'], ['raw_payloads.id'], name=op.f('fk_transactions_raw_payload_id_raw_payloads')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_transactions_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transactions')),
    sa.UniqueConstraint('tenant_id', 'source', 'account_ref', 'source_id', name=op.f('uq_transactions_tenant_id_source_account_ref_source_id'))
    )
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transactions_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_transactions_window', ['tenant_id', 'booked_on'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('transactions', schema=None) as batch_op:
        batch_op.drop_index('ix_transactions_window')
        batch_op.drop_index(batch_op.f('ix_transactions_tenant_id'))

    op.drop_table('transactions')
    with op.batch_alter_table('quarantined_rows', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantined_rows_tenant_id'))

    op.drop_table('quarantined_rows')
    with op.batch_alter_table('validation_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_validation_results_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_validation_results_run_id'))

    op.drop_table('validation_results')
    with op.batch_alter_table('raw_payloads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_raw_payloads_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_raw_payloads_fetch_id'))

    op.drop_table('raw_payloads')
    with op.batch_alter_table('exception_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exception_comments_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_exception_comments_exception_id'))

    op.drop_table('exception_comments')
    with op.batch_alter_table('applied_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applied_payments_tenant_id'))

    op.drop_table('applied_payments')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_events_tenant_id'))

    op.drop_table('webhook_events')
    with op.batch_alter_table('watermarks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_watermarks_tenant_id'))

    op.drop_table('watermarks')
    with op.batch_alter_table('source_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_source_accounts_tenant_id'))

    op.drop_table('source_accounts')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_tenant_id'))

    op.drop_table('runs')
    with op.batch_alter_table('recorded_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recorded_payments_transid'))
        batch_op.drop_index(batch_op.f('ix_recorded_payments_tenant_id'))

    op.drop_table('recorded_payments')
    with op.batch_alter_table('raw_fetches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_raw_fetches_tenant_id'))
        batch_op.drop_index('ix_raw_fetches_replay')

    op.drop_table('raw_fetches')
    with op.batch_alter_table('provider_quotas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_quotas_tenant_id'))

    op.drop_table('provider_quotas')
    with op.batch_alter_table('payouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payouts_tenant_id'))

    op.drop_table('payouts')
    with op.batch_alter_table('payout_lines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payout_lines_tenant_id'))

    op.drop_table('payout_lines')
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matches_tenant_id'))

    op.drop_table('matches')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_tenant_id'))

    op.drop_table('invoices')
    with op.batch_alter_table('exceptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exceptions_tenant_id'))
        batch_op.drop_index('ix_exceptions_queue')

    op.drop_table('exceptions')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_tenant_id'))

    op.drop_table('audit_log')
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_index('ix_allocations_transaction')
        batch_op.drop_index(batch_op.f('ix_allocations_tenant_id'))
        batch_op.drop_index('ix_allocations_invoice')

    op.drop_table('allocations')
    op.drop_table('tenants')
