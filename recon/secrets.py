"""The secrets the system needs, and the one place they are resolved.

Secrets come from Vault KV v2 (`<mount>/data/<prefix>/global` and `<prefix>/tenants/<tenant>`,
one key per secret). In development only, an environment variable may stand in:
`RECON_SECRET_<NAME>` for global secrets, `RECON_SECRET_<TENANT>__<NAME>` for a tenant's (tenant
id upper-cased, hyphens as underscores). In production a secret that cannot be resolved is an
error that names it; there is no default for any secret, anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from connectors.vault import (
    AppRoleAuth,
    TokenAuth,
    VaultClient,
    VaultError,
    VaultSecretNotFoundError,
)
from recon.errors import SecretUnavailableError
from recon.redaction import register_secret
from recon.settings import Settings
from recon.tenants import TenantSettings


class Scope(StrEnum):
    """Whether a secret belongs to the whole installation or to one tenant."""

    GLOBAL = "global"
    TENANT = "tenant"


@dataclass(frozen=True)
class SecretSpec:
    """One secret the system needs: its name, scope and what it is for."""

    name: str
    scope: Scope
    purpose: str


WHMCS_API_IDENTIFIER = SecretSpec("whmcs_api_identifier", Scope.TENANT, "WHMCS API credential id")
WHMCS_API_SECRET = SecretSpec("whmcs_api_secret", Scope.TENANT, "WHMCS API credential secret")
WHMCS_DB_PASSWORD = SecretSpec("whmcs_db_password", Scope.TENANT, "WHMCS MySQL read-only password")
GOCARDLESS_SECRET_ID = SecretSpec(
    "gocardless_secret_id", Scope.TENANT, "GoCardless Bank Account Data secret id"
)
GOCARDLESS_SECRET_KEY = SecretSpec(
    "gocardless_secret_key", Scope.TENANT, "GoCardless Bank Account Data secret key"
)
GOCARDLESS_PAYMENTS_TOKEN = SecretSpec(
    "gocardless_payments_access_token", Scope.TENANT, "GoCardless Payments access token"
)
GOCARDLESS_WEBHOOK_SECRET = SecretSpec(
    "gocardless_webhook_secret", Scope.TENANT, "GoCardless webhook endpoint secret"
)
STRIPE_SECRET_KEY = SecretSpec("stripe_secret_key", Scope.TENANT, "Stripe secret API key")
STRIPE_WEBHOOK_SECRET = SecretSpec(
    "stripe_webhook_secret", Scope.TENANT, "Stripe webhook signing secret (whsec_...)"
)
UI_COOKIE_SECRET = SecretSpec("ui_cookie_secret", Scope.GLOBAL, "Streamlit login cookie secret")
AUDIT_EXPORT_SIGNING_KEY = SecretSpec(
    "audit_export_signing_key", Scope.GLOBAL, "HMAC key that signs auditor exports"
)
AUDIT_CHAIN_KEY = SecretSpec(
    "audit_chain_key", Scope.GLOBAL, "HMAC key of the audit log's hash chain and its anchors"
)

REGISTRY: tuple[SecretSpec, ...] = (
    WHMCS_API_IDENTIFIER,
    WHMCS_API_SECRET,
    WHMCS_DB_PASSWORD,
    GOCARDLESS_SECRET_ID,
    GOCARDLESS_SECRET_KEY,
    GOCARDLESS_PAYMENTS_TOKEN,
    GOCARDLESS_WEBHOOK_SECRET,
    STRIPE_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET,
    UI_COOKIE_SECRET,
    AUDIT_EXPORT_SIGNING_KEY,
    AUDIT_CHAIN_KEY,
)
GLOBAL_SECRETS: tuple[SecretSpec, ...] = tuple(s for s in REGISTRY if s.scope is Scope.GLOBAL)


def required_for_tenant(settings: TenantSettings) -> tuple[SecretSpec, ...]:
    """The secrets a tenant's configuration needs, in registry order."""
    needed: list[SecretSpec] = []
    if settings.whmcs.mode == "api":
        needed += [WHMCS_API_IDENTIFIER, WHMCS_API_SECRET]
    else:
        needed.append(WHMCS_DB_PASSWORD)
    if settings.gocardless.enabled:
        needed += [GOCARDLESS_SECRET_ID, GOCARDLESS_SECRET_KEY]
    if settings.gocardless_payments.enabled:
        needed.append(GOCARDLESS_PAYMENTS_TOKEN)
        if settings.webhooks_enabled:
            needed.append(GOCARDLESS_WEBHOOK_SECRET)
    if settings.stripe.enabled:
        needed.append(STRIPE_SECRET_KEY)
        if settings.webhooks_enabled:
            needed.append(STRIPE_WEBHOOK_SECRET)
    return tuple(needed)


def env_var_name(spec: SecretSpec, tenant_id: str | None = None) -> str:
    """The development-only environment variable that may hold `spec`."""
    if spec.scope is Scope.GLOBAL:
        return f"RECON_SECRET_{spec.name.upper()}"
    if tenant_id is None:
        raise ValueError(f"{spec.name} is a tenant secret; a tenant is needed")
    return f"RECON_SECRET_{tenant_id.upper().replace('-', '_')}__{spec.name.upper()}"


def _describe(spec: SecretSpec, tenant_id: str | None) -> str:
    return spec.name if spec.scope is Scope.GLOBAL else f"{spec.name} of tenant {tenant_id!r}"


def vault_client_from_settings(settings: Settings) -> VaultClient | None:
    """A Vault client when RECON_VAULT_ADDR is set, authenticated by token or AppRole."""
    if not settings.vault_addr:
        return None
    ca_cert = str(settings.vault_ca_cert) if settings.vault_ca_cert else None
    if settings.vault_role_id and settings.vault_secret_id:
        role_id = settings.vault_role_id.get_secret_value()
        secret_id = settings.vault_secret_id.get_secret_value()
        register_secret(role_id)
        register_secret(secret_id)
        auth: TokenAuth | AppRoleAuth = AppRoleAuth(role_id=role_id, secret_id=secret_id)
    elif settings.vault_token:
        token = settings.vault_token.get_secret_value()
        register_secret(token)
        auth = TokenAuth(token=token)
    else:
        raise SecretUnavailableError(
            "RECON_VAULT_ADDR is set but no Vault credentials are: set RECON_VAULT_TOKEN, or "
            "RECON_VAULT_ROLE_ID and RECON_VAULT_SECRET_ID"
        )
    return VaultClient(settings.vault_addr, auth, mount=settings.vault_mount, ca_cert=ca_cert)


class SecretResolver:
    """Resolves secrets from Vault (or, in development, the environment), caching per path."""

    def __init__(self, settings: Settings, vault: VaultClient | None = None) -> None:
        self._settings = settings
        self._vault = vault
        self._vault_built = vault is not None
        self._documents: dict[str, dict[str, str]] = {}

    @property
    def vault(self) -> VaultClient | None:
        """The Vault client, built on first use; None when Vault is not configured."""
        if not self._vault_built:
            self._vault = vault_client_from_settings(self._settings)
            self._vault_built = True
        return self._vault

    def _vault_path(self, spec: SecretSpec, tenant_id: str | None) -> str:
        prefix = self._settings.vault_path_prefix.strip("/")
        if spec.scope is Scope.GLOBAL:
            return f"{prefix}/global"
        return f"{prefix}/tenants/{tenant_id}"

    def _from_vault(self, spec: SecretSpec, tenant_id: str | None) -> str | None:
        vault = self.vault
        if vault is None:
            return None
        path = self._vault_path(spec, tenant_id)
        if path not in self._documents:
            try:
                vault.ensure_token_fresh()
                document = vault.read(path)
            except VaultSecretNotFoundError:
                document = {}
            except VaultError as exc:
                raise SecretUnavailableError(
                    f"secret {_describe(spec, tenant_id)} could not be read from Vault: {exc}"
                ) from None
            for secret_value in document.values():
                register_secret(secret_value)
            self._documents[path] = document
        return self._documents[path].get(spec.name) or None

    def get(self, spec: SecretSpec, tenant_id: str | None = None) -> str:
        """The secret's value; SecretUnavailableError (naming it, never a value) when missing."""
        if spec.scope is Scope.TENANT and not tenant_id:
            raise ValueError(f"{spec.name} is a tenant secret; a tenant is needed")
        value = self._from_vault(spec, tenant_id)
        if value is None and not self._settings.is_production:
            value = os.environ.get(env_var_name(spec, tenant_id)) or None
        if value is None:
            raise SecretUnavailableError(self._missing_message(spec, tenant_id))
        register_secret(value)
        return value

    def _missing_message(self, spec: SecretSpec, tenant_id: str | None) -> str:
        name = _describe(spec, tenant_id)
        where = f"Vault path {self._vault_path(spec, tenant_id)!r} (key {spec.name!r})"
        if self._settings.is_production:
            if self._settings.vault_addr is None:
                return (
                    f"secret {name} is not available: production reads secrets only from Vault "
                    "and RECON_VAULT_ADDR is not set"
                )
            return f"secret {name} is not available: it is missing from {where}"
        return (
            f"secret {name} is not available: put it in {where} or, in development, in "
            f"{env_var_name(spec, tenant_id)}"
        )

    def check(self, specs: Iterable[SecretSpec], tenant_id: str | None = None) -> list[str]:
        """Try each secret and return the messages of those that cannot be resolved."""
        problems: list[str] = []
        for spec in specs:
            try:
                self.get(spec, tenant_id)
            except SecretUnavailableError as exc:
                problems.append(str(exc))
        return problems
