"""The schema: every entity of DESIGN §4.4 as a typed SQLAlchemy model.

Money is always an integer amount of minor units (`*_minor`) next to an ISO 4217 `currency`.
Unique constraints carry the idempotency keys that loads upsert on. Every table but `tenants`
carries `tenant_id`; on PostgreSQL row-level security keys on it (see the initial migration).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from recon.db.base import TENANT_ID_LENGTH, Base, IntPK, TenantScoped, Timestamps, utcnow

Currency = String(3)
SourceName = String(32)
ExternalId = String(255)
Sha256Hex = String(64)


class Tenant(Timestamps, Base):
    """A business whose WHMCS billing is reconciled; its settings hold no secrets."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(TENANT_ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class SourceAccount(TenantScoped, Timestamps, Base):
    """A bank account (GoCardless), Stripe account or GoCardless Payments creditor."""

    __tablename__ = "source_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "external_id"),)

    id: Mapped[IntPK]
    provider: Mapped[str] = mapped_column(SourceName)
    external_id: Mapped[str] = mapped_column(ExternalId)
    name: Mapped[str | None] = mapped_column(String(200))
    currency: Mapped[str | None] = mapped_column(Currency)
    institution_id: Mapped[str | None] = mapped_column(String(100))
    requisition_id: Mapped[str | None] = mapped_column(String(100))
    consent_expires_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(32), default="active")


class RawFetch(TenantScoped, Base):
    """One fetch of a dataset of one account for a window; complete once its last page landed.

    A re-run of a window replays the pages of the newest complete fetches that cover it.
    """

    __tablename__ = "raw_fetches"
    __table_args__ = (
        Index(
            "ix_raw_fetches_replay",
            "tenant_id",
            "provider",
            "account_ref",
            "dataset",
            "window_from",
            "window_to",
        ),
    )

    id: Mapped[IntPK]
    provider: Mapped[str] = mapped_column(SourceName)
    account_ref: Mapped[str] = mapped_column(ExternalId)
    dataset: Mapped[str] = mapped_column(String(64))
    window_from: Mapped[dt.date] = mapped_column(Date)
    window_to: Mapped[dt.date] = mapped_column(Date)
    run_id: Mapped[str | None] = mapped_column(String(36))
    pages: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None]
    superseded_at: Mapped[dt.datetime | None]
    """Set on an unfinished fetch once a complete one covers its window: never replayed."""


class RawPayload(TenantScoped, Base):
    """One provider response page, stored verbatim (with its hash) before it is parsed."""

    __tablename__ = "raw_payloads"
    __table_args__ = (UniqueConstraint("tenant_id", "fetch_id", "page"),)

    id: Mapped[IntPK]
    fetch_id: Mapped[int] = mapped_column(ForeignKey("raw_fetches.id"), index=True)
    page: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(SourceName)
    account_ref: Mapped[str] = mapped_column(ExternalId)
    endpoint: Mapped[str] = mapped_column(String(200))
    request_key: Mapped[str] = mapped_column(String(1000))
    status_code: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(Sha256Hex)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    fetched_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProviderQuota(TenantScoped, Base):
    """Calls made against a provider's per-account daily quota, so re-runs never burn it."""

    __tablename__ = "provider_quotas"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "account_ref", "endpoint", "day"),)

    id: Mapped[IntPK]
    provider: Mapped[str] = mapped_column(SourceName)
    account_ref: Mapped[str] = mapped_column(ExternalId)
    endpoint: Mapped[str] = mapped_column(String(200))
    day: Mapped[dt.date] = mapped_column(Date)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    limit: Mapped[int | None] = mapped_column(Integer)
    reset_at: Mapped[dt.datetime | None]


class Watermark(TenantScoped, Base):
    """How far a dataset of one account has been loaded; moved in the load's transaction."""

    __tablename__ = "watermarks"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "account_ref", "dataset"),)

    id: Mapped[IntPK]
    provider: Mapped[str] = mapped_column(SourceName)
    account_ref: Mapped[str] = mapped_column(ExternalId)
    dataset: Mapped[str] = mapped_column(String(64))
    loaded_through: Mapped[dt.date] = mapped_column(Date)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Transaction(TenantScoped, Timestamps, Base):
    """A money movement: bank line, Stripe balance transaction or GoCardless payment."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "source", "account_ref", "source_id"),
        Index("ix_transactions_window", "tenant_id", "booked_on"),
        Index("ix_transactions_charge", "tenant_id", "charge_id"),
        # the Overview's period figures read this index alone on PostgreSQL (0013)
        Index(
            "ix_transactions_period",
            "tenant_id",
            "booked_on",
            postgresql_include=[
                "kind",
                "amount_minor",
                "currency",
                "source",
                "account_ref",
                "source_id",
            ],
        ),
    )

    id: Mapped[IntPK]
    source: Mapped[str] = mapped_column(SourceName)
    account_ref: Mapped[str] = mapped_column(ExternalId)
    source_id: Mapped[str] = mapped_column(ExternalId)
    kind: Mapped[str] = mapped_column(String(32), default="payment")
    status: Mapped[str] = mapped_column(String(16), default="booked")
    booked_on: Mapped[dt.date] = mapped_column(Date)
    value_on: Mapped[dt.date | None] = mapped_column(Date)
    amount_minor: Mapped[int]
    fee_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(Currency)
    counterparty: Mapped[str | None] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(Text)
    payout_id: Mapped[str | None] = mapped_column(ExternalId)
    charge_id: Mapped[str | None] = mapped_column(ExternalId)
    """Stripe: the charge a balance transaction belongs to (its WHMCS `transid`)."""
    payment_intent: Mapped[str | None] = mapped_column(ExternalId)
    content_sha256: Mapped[str | None] = mapped_column(Sha256Hex)
    raw_payload_id: Mapped[int | None] = mapped_column(ForeignKey("raw_payloads.id"))


class Invoice(TenantScoped, Timestamps, Base):
    """A WHMCS invoice as last read; `balance_minor` is what was still due."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "invoice_id"),
        CheckConstraint("balance_minor >= 0", name="balance_not_negative"),
    )

    id: Mapped[IntPK]
    invoice_id: Mapped[str] = mapped_column(ExternalId)
    invoice_num: Mapped[str | None] = mapped_column(ExternalId)
    client_id: Mapped[str] = mapped_column(ExternalId)
    client_name: Mapped[str | None] = mapped_column(String(300))
    company_name: Mapped[str | None] = mapped_column(String(300))
    issued_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    total_minor: Mapped[int]
    balance_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(Currency)
    status: Mapped[str] = mapped_column(String(32))
    content_sha256: Mapped[str | None] = mapped_column(Sha256Hex)


class RecordedPayment(TenantScoped, Timestamps, Base):
    """A payment WHMCS itself recorded against an invoice (its transactions table)."""

    __tablename__ = "recorded_payments"
    __table_args__ = (UniqueConstraint("tenant_id", "whmcs_txn_id"),)

    id: Mapped[IntPK]
    whmcs_txn_id: Mapped[str] = mapped_column(ExternalId)
    invoice_id: Mapped[str | None] = mapped_column(ExternalId)
    recorded_on: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int]
    fees_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(Currency)
    gateway: Mapped[str | None] = mapped_column(String(100))
    transid: Mapped[str | None] = mapped_column(ExternalId, index=True)
    content_sha256: Mapped[str | None] = mapped_column(Sha256Hex)


class Payout(TenantScoped, Timestamps, Base):
    """A Stripe or GoCardless payout that should arrive in the bank."""

    __tablename__ = "payouts"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "payout_id"),)

    id: Mapped[IntPK]
    source: Mapped[str] = mapped_column(SourceName)
    payout_id: Mapped[str] = mapped_column(ExternalId)
    arrival_on: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(Currency)
    status: Mapped[str] = mapped_column(String(32))
    content_sha256: Mapped[str | None] = mapped_column(Sha256Hex)


class PayoutLine(TenantScoped, Timestamps, Base):
    """Links a payout to a transaction it settles."""

    __tablename__ = "payout_lines"
    __table_args__ = (UniqueConstraint("tenant_id", "source", "payout_id", "transaction_id"),)

    id: Mapped[IntPK]
    source: Mapped[str] = mapped_column(SourceName)
    payout_id: Mapped[str] = mapped_column(ExternalId)
    transaction_id: Mapped[str] = mapped_column(ExternalId)
    content_sha256: Mapped[str | None] = mapped_column(Sha256Hex)


class Run(TenantScoped, Base):
    """One reconciliation run of a tenant over a date range."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(32), default="reconcile")
    window_from: Mapped[dt.date] = mapped_column(Date)
    window_to: Mapped[dt.date] = mapped_column(Date)
    sources: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sums: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class ValidationResult(TenantScoped, Base):
    """The outcome of one expectation suite on one batch of one run."""

    __tablename__ = "validation_results"

    id: Mapped[IntPK]
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(64))
    suite: Mapped[str] = mapped_column(String(100))
    success: Mapped[bool] = mapped_column(Boolean)
    rows_evaluated: Mapped[int] = mapped_column(default=0)
    rows_failed: Mapped[int] = mapped_column(default=0)
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class QuarantinedRow(TenantScoped, Base):
    """A provider record that could not be loaded, with the reasons, kept whole."""

    __tablename__ = "quarantined_rows"
    __table_args__ = (UniqueConstraint("tenant_id", "provider", "dataset", "row_key"),)

    id: Mapped[IntPK]
    run_id: Mapped[str | None] = mapped_column(String(36))
    provider: Mapped[str] = mapped_column(SourceName)
    dataset: Mapped[str] = mapped_column(String(64))
    account_ref: Mapped[str | None] = mapped_column(ExternalId)
    row_key: Mapped[str] = mapped_column(String(300))
    booked_on: Mapped[dt.date | None] = mapped_column(Date)
    amount_minor: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(8))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    record: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raw_payload_id: Mapped[int | None] = mapped_column(ForeignKey("raw_payloads.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Match(TenantScoped, Base):
    """A link the engine or a person made between two records (payout ↔ bank credit,
    charge ↔ recorded payment); append-only, undone by a reversal row."""

    __tablename__ = "matches"
    __table_args__ = (UniqueConstraint("tenant_id", "match_key"),)

    id: Mapped[IntPK]
    match_key: Mapped[str] = mapped_column(Sha256Hex)
    run_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(32))
    left_ref: Mapped[str] = mapped_column(ExternalId)
    right_ref: Mapped[str] = mapped_column(ExternalId)
    rule: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(Currency)
    origin: Mapped[str] = mapped_column(String(16), default="engine")
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id"))
    created_by: Mapped[str] = mapped_column(String(200), default="engine")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Allocation(TenantScoped, Base):
    """The part of one payment applied to one invoice; append-only, undone by reversal."""

    __tablename__ = "allocations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "allocation_key"),
        CheckConstraint("decision IN ('auto', 'review', 'manual')", name="decision_known"),
        Index("ix_allocations_invoice", "tenant_id", "invoice_id"),
        Index("ix_allocations_transaction", "tenant_id", "transaction_ref"),
        # the reversal rows only: "no reversal points at it" reads these, not every row (0013)
        Index(
            "ix_allocations_reversal",
            "tenant_id",
            "reverses_id",
            postgresql_where=text("reverses_id IS NOT NULL"),
            sqlite_where=text("reverses_id IS NOT NULL"),
        ),
    )

    id: Mapped[IntPK]
    allocation_key: Mapped[str] = mapped_column(Sha256Hex)
    run_id: Mapped[str | None] = mapped_column(String(36))
    transaction_ref: Mapped[str] = mapped_column(ExternalId)
    invoice_id: Mapped[str] = mapped_column(ExternalId)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(Currency)
    rule: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(16), default="engine")
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("allocations.id"))
    created_by: Mapped[str] = mapped_column(String(200), default="engine")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # why a person allocated or reversed (free text, shown in the report)
    note: Mapped[str | None] = mapped_column(Text)


class ReconException(TenantScoped, Timestamps, Base):
    """Something a person must look at; `version` guards concurrent edits."""

    __tablename__ = "exceptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "exception_key"),
        Index("ix_exceptions_queue", "tenant_id", "status", "kind"),
        # the work queue's default order: open exceptions, oldest first, keyset on (created, id)
        Index("ix_exceptions_age", "tenant_id", "status", "created_at", "id"),
        Index("ix_exceptions_transaction", "tenant_id", "transaction_ref"),
        # counts and sums by status, kind, currency and age read this index alone (0013)
        Index(
            "ix_exceptions_overview",
            "tenant_id",
            "status",
            "kind",
            "currency",
            postgresql_include=["created_at", "amount_minor"],
        ),
    )

    id: Mapped[IntPK]
    exception_key: Mapped[str] = mapped_column(Sha256Hex)
    run_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(32))
    transaction_ref: Mapped[str | None] = mapped_column(ExternalId)
    invoice_id: Mapped[str | None] = mapped_column(ExternalId)
    # what it is about when that is neither a payment nor an invoice alone (payout id, WHMCS
    # payment id); part of the key of rows opened since revision 0008
    subject_ref: Mapped[str | None] = mapped_column(ExternalId)
    amount_minor: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(Currency)
    # the payment's payer and reference, kept here (revision 0011) so the queue's free-text
    # search reads only exception rows, not the transactions join; `search_text` is both in
    # lower case, which a plain LIKE scans several times faster than ILIKE over two columns
    payer: Mapped[str | None] = mapped_column(String(500))
    reference: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text, default="")
    # the rule and confidence of the candidate a runner-up (`ambiguous`) names, as data (0014);
    # none on other rows
    rule: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(Text)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[dt.datetime | None]
    # set when the engine finds the exception no longer applies (never deleted)
    closed_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[dt.datetime | None]
    closed_by_run: Mapped[str | None] = mapped_column(String(36))
    # how a person resolved it (matched, not_customer, refunded, duplicate, written_off, other);
    # `resolution` holds their note
    resolution_kind: Mapped[str | None] = mapped_column(String(32))
    # who made the last change (a user's email, or "engine"): what a ConflictError names
    updated_by: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class ExceptionComment(TenantScoped, Base):
    """A note a person left on an exception."""

    __tablename__ = "exception_comments"

    id: Mapped[IntPK]
    exception_id: Mapped[int] = mapped_column(ForeignKey("exceptions.id"), index=True)
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AppliedPayment(TenantScoped, Timestamps, Base):
    """The WHMCS write-back ledger: one row per payment applied (or being applied)."""

    __tablename__ = "applied_payments"
    __table_args__ = (UniqueConstraint("tenant_id", "invoice_id", "transid"),)

    id: Mapped[IntPK]
    allocation_id: Mapped[int | None] = mapped_column(ForeignKey("allocations.id"))
    invoice_id: Mapped[str] = mapped_column(ExternalId)
    transid: Mapped[str] = mapped_column(ExternalId)
    amount_minor: Mapped[int]
    fees_minor: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(Currency)
    gateway: Mapped[str] = mapped_column(String(100))
    paid_on: Mapped[dt.date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    response: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    applied_at: Mapped[dt.datetime | None]


class WebhookEvent(TenantScoped, Base):
    """A provider event received once; the unique key makes redelivery a no-op (ids are kept
    forever). It is the receiver's outbox: `processed_at` is set once Prefect took the event."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "provider", "event_id"),
        Index("ix_webhook_events_pending", "tenant_id", "processed_at"),
    )

    id: Mapped[IntPK]
    provider: Mapped[str] = mapped_column(SourceName)
    event_id: Mapped[str] = mapped_column(ExternalId)
    event_type: Mapped[str] = mapped_column(String(100))
    payload_sha256: Mapped[str] = mapped_column(Sha256Hex)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[dt.datetime | None]
    window_from: Mapped[dt.date | None] = mapped_column(Date)
    window_to: Mapped[dt.date | None] = mapped_column(Date)
    emit_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_emit_at: Mapped[dt.datetime | None]
    last_emit_error: Mapped[str | None] = mapped_column(String(200))


class AuditEntry(TenantScoped, Base):
    """One decision, hash-chained to the tenant's previous entry; never updated or deleted."""

    __tablename__ = "audit_log"
    __table_args__ = (
        UniqueConstraint("tenant_id", "seq"),
        # one exception's (or allocation's) history without reading the whole chain
        Index("ix_audit_log_entity", "tenant_id", "entity", "entity_id"),
    )

    id: Mapped[IntPK]
    seq: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(100))
    entity_id: Mapped[str] = mapped_column(ExternalId)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(Sha256Hex)
    entry_hash: Mapped[str] = mapped_column(Sha256Hex)
    # 1: plain SHA-256 (written before the chain was keyed); 2: HMAC-SHA256 with audit_chain_key.
    chain_version: Mapped[int] = mapped_column(Integer, server_default="1")
    key_id: Mapped[str | None] = mapped_column(String(16))


class User(Timestamps, Base):
    """A person who signs in: finance staff, an auditor or an admin. Not tenant-scoped; what
    tenants a user may see is in `tenant_grants`."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("email"),
        CheckConstraint("role IN ('finance', 'auditor', 'admin')", name="role_known"),
    )

    id: Mapped[IntPK]
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Argon2id (PHC string); None for users who sign in only through OIDC
    password_hash: Mapped[str | None] = mapped_column(String(255))
    last_login_at: Mapped[dt.datetime | None]


class TenantGrant(TenantScoped, Base):
    """One user's access to one tenant (under row-level security like every tenant row)."""

    __tablename__ = "tenant_grants"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    id: Mapped[IntPK]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class BalanceSnapshot(TenantScoped, Base):
    """A bank balance as the bank reported it, kept per run for the report's tie-out
    (opening + movements = closing)."""

    __tablename__ = "balance_snapshots"
    __table_args__ = (
        UniqueConstraint("tenant_id", "account_ref", "balance_type", "reference_date", "currency"),
    )

    id: Mapped[IntPK]
    run_id: Mapped[str | None] = mapped_column(String(36))
    provider: Mapped[str] = mapped_column(SourceName)
    account_ref: Mapped[str] = mapped_column(ExternalId)
    balance_type: Mapped[str] = mapped_column(String(32))
    reference_date: Mapped[dt.date] = mapped_column(Date)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(Currency)
    raw_payload_id: Mapped[int | None] = mapped_column(ForeignKey("raw_payloads.id"))
    fetched_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


TENANT_TABLES: tuple[str, ...] = tuple(
    sorted(
        table.name
        for table in Base.metadata.sorted_tables
        if "tenant_id" in table.columns and table.name != "tenants"
    )
)
APPEND_ONLY_TABLES: tuple[str, ...] = ("allocations", "audit_log")
