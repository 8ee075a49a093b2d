"""Tenants and their non-secret settings (provider base URLs, account ids, thresholds)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from recon import audit
from recon.db.models import Tenant
from recon.db.tenancy import bind_tenant
from recon.errors import ConfigError, NotFoundError
from recon.settings import get_settings, url_transport_problem

TENANT_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$")


def _production(info: ValidationInfo) -> bool:
    return bool((info.context or {}).get("production", False))


def _checked_url(value: HttpUrl | None, info: ValidationInfo) -> HttpUrl | None:
    """A provider base URL: no user info anywhere; https in production (see parse_settings)."""
    if value is None:
        return None
    problem = url_transport_problem(str(value), production=_production(info))
    if problem:
        raise PydanticCustomError("insecure_url", problem)
    return value


class WhmcsSettings(BaseModel):
    """How to reach the tenant's WHMCS."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["api", "mysql"] = "api"
    base_url: HttpUrl | None = None
    mysql_host: str | None = None
    mysql_port: int = 3306
    mysql_database: str | None = None
    mysql_user: str | None = None
    mysql_ssl_ca: str | None = Field(
        default=None,
        validate_default=True,
        description="CA bundle (PEM file) that verifies the WHMCS database's TLS certificate; "
        "MySQL mode in production connects only over verified TLS.",
    )
    gateway: str = "banktransfer"
    invoice_number_format: str | None = Field(
        default=None,
        description="The tenant's WHMCS custom invoice numbering, e.g. INV-{YEAR}-{NUMBER}.",
    )

    _base_url = field_validator("base_url")(_checked_url)

    @field_validator("mysql_ssl_ca")
    @classmethod
    def _mysql_over_tls(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("mode") == "mysql" and _production(info) and not value:
            raise PydanticCustomError(
                "tls_required",
                "WHMCS MySQL mode needs TLS in production; set it to the CA bundle (PEM file) "
                "that signs the database server's certificate",
            )
        return value


class StripeSettings(BaseModel):
    """The tenant's Stripe account, when it takes cards."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    api_base: HttpUrl | None = None
    account_id: str | None = None

    _api_base = field_validator("api_base")(_checked_url)


class GoCardlessSettings(BaseModel):
    """GoCardless Bank Account Data: the bank accounts to read."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    base_url: HttpUrl | None = None
    account_ids: list[str] = Field(default_factory=list)
    stable_id_accounts: list[str] = Field(
        default_factory=list,
        description="Accounts whose bank keeps transactionId from pending to booked; the others "
        "are keyed by content so that a pending line that books is an update.",
    )

    _base_url = field_validator("base_url")(_checked_url)


class GoCardlessPaymentsSettings(BaseModel):
    """GoCardless Payments (direct debit), when the tenant takes it."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    base_url: HttpUrl | None = None
    creditor_id: str | None = None

    _base_url = field_validator("base_url")(_checked_url)


class TenantSettings(BaseModel):
    """Everything about a tenant that is not a secret."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    whmcs: WhmcsSettings = Field(default_factory=WhmcsSettings)
    stripe: StripeSettings = Field(default_factory=StripeSettings)
    gocardless: GoCardlessSettings = Field(default_factory=GoCardlessSettings)
    gocardless_payments: GoCardlessPaymentsSettings = Field(
        default_factory=GoCardlessPaymentsSettings
    )
    webhooks_enabled: bool = False
    auto_apply: bool = False
    auto_threshold: int = Field(default=90, ge=0, le=100)
    review_threshold: int = Field(default=50, ge=0, le=100)


def validate_tenant_id(tenant_id: str) -> str:
    """Check the slug form: lower-case letters, digits and hyphens, 3 to 64 characters."""
    if not TENANT_ID_PATTERN.match(tenant_id):
        raise ConfigError(
            f"tenant id {tenant_id!r} is not valid; use 3-64 lower-case letters, digits or "
            "hyphens, starting with a letter"
        )
    return tenant_id


def parse_settings(raw: dict[str, Any], *, production: bool | None = None) -> TenantSettings:
    """Validate stored or user-given settings into a `TenantSettings`.

    Provider URLs with a user name or password are refused always. `production` (default: this
    process's RECON_ENV, which may differ from when the tenant was added) also requires https for
    every provider URL and TLS for WHMCS MySQL mode; without it plain http is allowed only to a
    loopback sandbox. Runs, `tenant add` and `tenant update` use the default; reading stored
    settings to display or merge them passes False.
    """
    if production is None:
        production = _process_is_production()
    try:
        return TenantSettings.model_validate(raw, context={"production": production})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(f"tenant setting {where} is invalid: {first['msg']}") from None


def _process_is_production() -> bool:
    """This process's RECON_ENV (its settings are read once; cheap on every webhook request)."""
    try:
        return get_settings().is_production
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"setting RECON_{field.upper()} is invalid: {first['msg']}") from None


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    """The tenant, or a NotFoundError that says how to list them."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFoundError(f"no tenant {tenant_id!r}; `recon tenant list` shows the tenants")
    return tenant


def list_tenants(session: Session) -> list[Tenant]:
    """All tenants, by id."""
    return list(session.scalars(select(Tenant).order_by(Tenant.id)))


def add_tenant(
    session: Session, tenant_id: str, name: str, settings: TenantSettings, *, actor: str
) -> Tenant:
    """Register a tenant and write the first entry of its audit chain.

    The settings are checked again as this process's RECON_ENV requires (https in production).
    """
    validate_tenant_id(tenant_id)
    settings = parse_settings(settings.model_dump(mode="json"))
    if session.get(Tenant, tenant_id) is not None:
        raise ConfigError(f"tenant {tenant_id!r} already exists")
    tenant = Tenant(id=tenant_id, name=name, settings=settings.model_dump(mode="json"))
    session.add(tenant)
    session.flush()
    bind_tenant(session, tenant_id)
    audit.append(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="tenant.added",
        entity="tenant",
        entity_id=tenant_id,
        details={"name": name, "settings": tenant.settings},
    )
    return tenant
