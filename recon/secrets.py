"""The secrets the system needs, and the one place they are resolved.

Secrets come from Vault KV v2 (`<mount>/data/<prefix>/global` and `<prefix>/tenants/<tenant>`,
one key per secret), read through a `SecretStore` that the layer above injects: `connectors.vault`
provides the Vault one and `connectors.runtime` installs it as the process default. In development
only, an environment variable may stand in: `RECON_SECRET_<NAME>` for global secrets,
`RECON_SECRET_<TENANT>__<NAME>` for a tenant's (tenant id upper-cased, hyphens as underscores). In
production a secret that cannot be resolved is an error that names it; there is no default for any
secret, anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from recon.errors import SecretUnavailableError
from recon.redaction import register_secret
from recon.settings import Settings

if TYPE_CHECKING:  # the tenant model loads the storage layer; only its type is needed here
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
UI_OIDC_CLIENT_SECRET = SecretSpec(
    "ui_oidc_client_secret", Scope.GLOBAL, "OIDC client secret of the ops UI (production sign-in)"
)
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
    UI_OIDC_CLIENT_SECRET,
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


class SecretNotFoundError(SecretUnavailableError):
    """The store holds no document at the path (its secrets are then simply missing)."""


class SecretStore(Protocol):
    """Where secrets live: KV documents by path (Vault KV v2 in production).

    `read` raises SecretNotFoundError when there is no document at the path and
    SecretUnavailableError when the store cannot answer.
    """

    def read(self, path: str) -> dict[str, str]:
        """The document at `path`: secret name -> value."""
        ...

    def ensure_token_fresh(self) -> None:
        """Renew or re-acquire the store's credentials when they are close to expiry."""
        ...

    def is_reachable(self) -> bool:
        """Whether the store answers at all."""
        ...


StoreFactory = Callable[[Settings], SecretStore | None]
"""Opens the store the settings configure (None when they configure none)."""

_default_store_factory: StoreFactory | None = None


def use_store_factory(factory: StoreFactory) -> None:
    """Install how a resolver built without a store opens one (`connectors.runtime` installs
    Vault), so core code that resolves a secret itself (the audit chain key) reads the same store."""
    global _default_store_factory
    _default_store_factory = factory


def _open_default_store(settings: Settings) -> SecretStore | None:
    if not settings.vault_addr:
        return None
    if _default_store_factory is None:
        raise SecretUnavailableError(
            "RECON_VAULT_ADDR is set but this process has no secret store installed: build the "
            "resolver with connectors.vault.secret_resolver"
        )
    return _default_store_factory(settings)


class SecretResolver:
    """Resolves secrets from the store (or, in development, the environment), caching per path.

    Without `store` (and `open_store`), the store is opened on first use by the factory installed
    with `use_store_factory`; none is opened when RECON_VAULT_ADDR is not set.
    """

    def __init__(
        self,
        settings: Settings,
        store: SecretStore | None = None,
        *,
        open_store: StoreFactory | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._store_opened = store is not None
        self._open_store = open_store
        self._documents: dict[str, dict[str, str]] = {}

    @property
    def store(self) -> SecretStore | None:
        """The secret store, opened on first use; None when none is configured."""
        if not self._store_opened:
            if self._open_store is not None:
                self._store = (
                    self._open_store(self._settings) if self._settings.vault_addr else None
                )
            else:
                self._store = _open_default_store(self._settings)
            self._store_opened = True
        return self._store

    def _vault_path(self, spec: SecretSpec, tenant_id: str | None) -> str:
        prefix = self._settings.vault_path_prefix.strip("/")
        if spec.scope is Scope.GLOBAL:
            return f"{prefix}/global"
        return f"{prefix}/tenants/{tenant_id}"

    def _from_vault(self, spec: SecretSpec, tenant_id: str | None) -> str | None:
        store = self.store
        if store is None:
            return None
        path = self._vault_path(spec, tenant_id)
        if path not in self._documents:
            try:
                store.ensure_token_fresh()
                document = store.read(path)
            except SecretNotFoundError:
                document = {}
            except SecretUnavailableError as exc:
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
