"""Declarative base with the constraint naming convention Alembic relies on."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, MetaData, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TENANT_ID_LENGTH = 64

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL gets a BIGINT identity.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
IntPK = Annotated[int, mapped_column(BigIntPK, primary_key=True, autoincrement=True)]


def utcnow() -> dt.datetime:
    """Aware UTC now, the only clock the models use."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """All models; `metadata` carries the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: DateTime(timezone=True),
        int: BigInteger,
    }


class TenantScoped:
    """Mixin for every business table: a `tenant_id` that row-level security and the
    data-access layer both key on."""

    @declared_attr
    def tenant_id(cls) -> Mapped[str]:
        return mapped_column(
            String(TENANT_ID_LENGTH),
            ForeignKey("tenants.id", ondelete="RESTRICT"),
            index=True,
            nullable=False,
        )


class Timestamps:
    """Creation and last-change times, set by the application clock and the server."""

    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )
