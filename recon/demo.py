"""The demo behind `make demo`: everything on embedded defaults, nothing to configure.

It starts the sandbox providers in this process, migrates a SQLite database under
`var/demo/`, registers the `demo` tenant against the sandbox, stores the tenant's sandbox
credentials in the sandbox Vault (as an operator would in the real one) and checks the
installation with the same code `recon doctor` runs.
"""

from __future__ import annotations

import secrets as token_source
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from connectors.sandbox.app import build_app
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.vault import VaultState
from recon import audit
from recon.db import migrate
from recon.db.backup import backup_database, default_backup_path
from recon.db.models import Tenant
from recon.db.tenancy import admin_session, bind_tenant
from recon.runtime import Runtime
from recon.secrets import required_for_tenant
from recon.settings import Settings
from recon.tenants import TenantSettings, add_tenant

DEMO_TENANT = "demo"


@dataclass(frozen=True)
class DemoEnvironment:
    """The running sandbox and the settings that point the engine at it."""

    server: RunningServer
    vault: VaultState
    settings: Settings


def demo_tenant_settings(sandbox_url: str) -> TenantSettings:
    """The demo tenant: WHMCS, a bank feed and Stripe, all at the sandbox."""
    return TenantSettings.model_validate(
        {
            "whmcs": {"mode": "api", "base_url": sandbox_url},
            "stripe": {"enabled": True, "api_base": sandbox_url},
            "gocardless": {"enabled": True, "base_url": sandbox_url, "account_ids": []},
        }
    )


@contextmanager
def sandbox_environment(base: Settings) -> Iterator[DemoEnvironment]:
    """Start the sandbox and yield settings that use its Vault through AppRole."""
    vault = VaultState()
    with run_in_thread(build_app(vault=vault)) as server:
        # The sandbox is a stand-in for external services: it issues its own credentials, the
        # way a provider's dashboard would. None of them is an application default.
        credentials = vault.add_approle("recon-demo")
        settings = base.model_copy(
            update={
                "vault_addr": server.url,
                "vault_role_id": SecretStr(credentials.role_id),
                "vault_secret_id": SecretStr(credentials.secret_id),
            }
        )
        yield DemoEnvironment(server, vault, settings)


def store_sandbox_credentials(env: DemoEnvironment, tenant_settings: TenantSettings) -> None:
    """Put the tenant's sandbox provider credentials into the sandbox Vault."""
    document = {
        spec.name: f"sandbox-{token_source.token_urlsafe(18)}"
        for spec in required_for_tenant(tenant_settings)
    }
    prefix = env.settings.vault_path_prefix.strip("/")
    env.vault.put_secret(f"{prefix}/tenants/{DEMO_TENANT}", document)


def prepare_database(runtime: Runtime, backup_dir: Path) -> str:
    """Migrate the demo database to head (backing up a non-empty one); returns a summary."""
    engine = runtime.admin_engine
    before = migrate.current_revision(engine)
    if before == migrate.head_revision():
        return f"database at head ({before})"
    if migrate.has_data(engine):
        backup_database(engine, default_backup_path(engine, backup_dir))
    migrate.upgrade(engine)
    return f"database migrated {before or '(empty)'} -> {migrate.head_revision()}"


def ensure_demo_tenant(runtime: Runtime, tenant_settings: TenantSettings) -> None:
    """Register (or refresh the sandbox URLs of) the demo tenant."""
    with admin_session(runtime.checked_admin_engine()) as session:
        tenant = session.get(Tenant, DEMO_TENANT)
        if tenant is None:
            add_tenant(session, DEMO_TENANT, "Demo Hosting Ltd", tenant_settings, actor="demo")
            return
        # The sandbox listens on a new port each time; the tenant's settings follow it.
        new_settings = tenant_settings.model_dump(mode="json")
        if tenant.settings != new_settings:
            tenant.settings = new_settings
            bind_tenant(session, DEMO_TENANT)
            audit.append(
                session,
                actor="demo",
                action="tenant.settings_changed",
                entity="tenant",
                entity_id=DEMO_TENANT,
                details={"settings": new_settings},
            )
