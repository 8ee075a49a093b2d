"""Changing and retiring a tenant: audited settings updates, disable and enable.

Every change writes one entry to the tenant's audit chain with the before and after of the
settings it changed (never the whole document, never a secret: secrets are refused as settings
before anything is stored). A disabled tenant keeps its data and history; its runs, applies and
webhooks are refused until it is enabled again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from recon import audit
from recon.db.models import Tenant
from recon.db.tenancy import bind_tenant
from recon.errors import ConfigError, ReconError
from recon.redaction import redact
from recon.tenants import get_tenant, parse_settings

# A settings key whose name says it holds one of these is a secret and belongs in Vault.
SECRET_WORDS = ("secret", "password", "passwd", "token", "api_key", "apikey", "private_key")


class TenantDisabledError(ReconError):
    """The tenant is disabled: no run, apply or webhook for it until it is enabled again."""

    exit_code = 12


@dataclass(frozen=True)
class TenantChange:
    """What an update changed: dotted setting path -> (before, after); the name if renamed."""

    tenant_id: str
    settings: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    name: tuple[str, str] | None = None

    @property
    def changed(self) -> bool:
        """Whether anything changed at all."""
        return bool(self.settings) or self.name is not None


def active_tenant(session: Session, tenant_id: str) -> Tenant:
    """The tenant, refusing a disabled one in one sentence (exit 12)."""
    tenant = get_tenant(session, tenant_id)
    if not tenant.active:
        raise TenantDisabledError(
            f"tenant {tenant_id!r} is disabled; `recon tenant enable {tenant_id}` turns it back on"
        )
    return tenant


def refuse_secret_key(path: str) -> None:
    """Refuse a dotted settings path whose name says it holds a secret (names the path only)."""
    if any(word in path.lower() for word in SECRET_WORDS):
        raise ConfigError(
            f"tenant setting {path} is a secret; secrets belong in Vault at "
            "<prefix>/tenants/<tenant> (README, Secrets), never in tenant settings"
        )


def refuse_secrets(raw: dict[str, Any], where: str = "") -> None:
    """Refuse a settings document that holds a secret (by key name or credential shape).

    The error names the setting, never its value.
    """
    for key, value in raw.items():
        path = f"{where}.{key}" if where else str(key)
        refuse_secret_key(path)
        if isinstance(value, dict):
            refuse_secrets(value, path)
        elif isinstance(value, str) and redact(value) != value:
            raise ConfigError(
                f"tenant setting {path} holds what looks like a credential; secrets belong in "
                "Vault (README, Secrets), never in tenant settings"
            )


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = _merged(current, value)
        else:
            out[key] = value
    return out


def _flat(document: dict[str, Any], where: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            flat.update(_flat(value, path))
        else:
            flat[path] = value
    return flat


def update_tenant(
    session: Session,
    tenant_id: str,
    *,
    changes: dict[str, Any] | None = None,
    name: str | None = None,
    actor: str,
) -> TenantChange:
    """Merge `changes` (a partial settings document) into the tenant's settings, validate the
    result, store it and audit the changed keys with their before and after values.

    Nothing changed: nothing is written and no audit entry is made.
    """
    tenant = get_tenant(session, tenant_id)
    changes = changes or {}
    refuse_secrets(changes)
    # the stored settings may predate RECON_ENV=production (an http URL to fix); the result is
    # checked as this process's environment requires
    before = parse_settings(tenant.settings, production=False).model_dump(mode="json")
    after = parse_settings(_merged(before, changes)).model_dump(mode="json")
    old, new = _flat(before), _flat(after)
    diff = {
        path: (old.get(path), new.get(path))
        for path in sorted(set(old) | set(new))
        if old.get(path) != new.get(path)
    }
    if name is not None and not name.strip():
        raise ConfigError("--name must not be empty")
    renamed = (tenant.name, name) if name is not None and name != tenant.name else None
    change = TenantChange(tenant_id, diff, renamed)
    if not change.changed:
        return change
    tenant.settings = after
    if renamed:
        tenant.name = renamed[1]
    session.flush()
    bind_tenant(session, tenant_id)
    details: dict[str, Any] = {
        "settings": {path: {"before": b, "after": a} for path, (b, a) in diff.items()}
    }
    if renamed:
        details["name"] = {"before": renamed[0], "after": renamed[1]}
    audit.append(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="tenant.updated",
        entity="tenant",
        entity_id=tenant_id,
        details=details,
    )
    return change


def set_active(session: Session, tenant_id: str, active: bool, *, actor: str) -> bool:
    """Disable (or enable) a tenant, audited; returns False when it already was so."""
    tenant = get_tenant(session, tenant_id)
    if tenant.active == active:
        return False
    tenant.active = active
    session.flush()
    bind_tenant(session, tenant_id)
    audit.append(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action="tenant.enabled" if active else "tenant.disabled",
        entity="tenant",
        entity_id=tenant_id,
        details={"active": {"before": not active, "after": active}},
    )
    return True
