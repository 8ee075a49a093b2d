"""The demo behind `make demo`: the whole job on embedded defaults, nothing to configure.

It builds a synthetic hosting company (WHMCS invoices, bank lines, Stripe and GoCardless
payments and payouts), serves it from the sandbox providers in this process, migrates a SQLite
database under `var/demo/`, registers the `demo` tenant against the sandbox (its credentials sit
in the sandbox Vault, as an operator would keep them in the real one), checks the installation
with the same code as `recon doctor`, and runs the reconciliation flow over the last 90 days.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import Engine

from connectors.runtime import Runtime
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.world import SandboxCredentials, SandboxWorld, world_ending
from recon import audit
from recon.db import migrate
from recon.db.backup import backup_database, default_backup_path
from recon.db.engine import create_private_sqlite_file
from recon.db.models import Tenant
from recon.db.tenancy import admin_session, bind_tenant
from recon.settings import Settings, get_settings
from recon.tenants import TenantSettings, add_tenant

DEMO_TENANT = "demo"
DEMO_DAYS = 90
DEMO_INVOICES = 3000
DEMO_SEED = 7


@dataclass(frozen=True)
class DemoEnvironment:
    """The running sandbox and the settings that point the engine at it."""

    server: RunningServer
    sandbox: SandboxWorld
    settings: Settings


def demo_chain_key(data_dir: Path) -> str:
    """The audit chain key the demo's sandbox Vault serves: made by the sandbox on the first demo
    and kept beside the demo database (`<data dir>/sandbox/audit-chain-key`, mode 0600), so that
    later demos extend, and `recon audit verify` checks, the same keyed chain."""
    return _kept_key(data_dir / "sandbox" / "audit-chain-key")


def demo_export_key(data_dir: Path) -> str:
    """The export signing key the demo's sandbox Vault serves, kept like the chain key
    (`<data dir>/sandbox/export-signing-key`, mode 0600), so a report exported after the demo
    verifies with the same key."""
    return _kept_key(data_dir / "sandbox" / "export-signing-key")


def _kept_key(path: Path) -> str:
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if stored:
        return stored
    key = SandboxCredentials.generate().audit_chain_key  # 32 random bytes, hex
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def follow_up_exports(settings: Settings) -> list[str]:
    """The shell lines that point later `recon` commands at the demo's database and chain key.

    The demo's sandbox (and its Vault) stops with the demo; a later `recon run` inside its window
    replays what the demo stored, so it needs no provider secret, only the audit chain key every
    audit write needs. The key is read from its file by the shell, never printed.
    """
    key_file = settings.data_dir / "sandbox" / "audit-chain-key"
    export_key_file = settings.data_dir / "sandbox" / "export-signing-key"
    return [
        f"export RECON_DATABASE_URL={shlex.quote(settings.resolved_database_url)}",
        f"export RECON_SECRET_AUDIT_CHAIN_KEY=$(cat {shlex.quote(str(key_file))})",
        f"export RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY=$(cat {shlex.quote(str(export_key_file))})",
    ]


@contextmanager
def sandbox_environment(base: Settings, today: dt.date) -> Iterator[DemoEnvironment]:
    """Serve a synthetic world as of `today`; yield settings that use its Vault via AppRole.

    The settings are also put in this process's environment for the duration, because the
    Prefect flow reads its settings from there like any deployment would.
    """
    world = world_ending(today, n_invoices=DEMO_INVOICES, days=DEMO_DAYS, seed=DEMO_SEED)
    credentials = replace(
        SandboxCredentials.generate(),
        audit_chain_key=demo_chain_key(base.data_dir),
        audit_export_signing_key=demo_export_key(base.data_dir),
    )
    sandbox = SandboxWorld(world, tenant=DEMO_TENANT, as_of=today, credentials=credentials)
    with run_in_thread(sandbox.build_app()) as server:
        # The sandbox stands in for external services and issues its own credentials, the
        # way a provider's dashboard would. None of them is an application default.
        credentials = sandbox.credentials
        settings = base.model_copy(
            update={
                "vault_addr": server.url,
                "vault_role_id": SecretStr(credentials.vault_role_id),
                "vault_secret_id": SecretStr(credentials.vault_secret_id),
            }
        )
        environment = {
            "RECON_DATABASE_URL": settings.resolved_database_url,
            "RECON_DATA_DIR": str(settings.data_dir),
            "RECON_VAULT_ADDR": server.url,
            "RECON_VAULT_ROLE_ID": credentials.vault_role_id,
            "RECON_VAULT_SECRET_ID": credentials.vault_secret_id,
        }
        saved = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        get_settings.cache_clear()
        try:
            yield DemoEnvironment(server, sandbox, settings)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            get_settings.cache_clear()


def prepare_database(runtime: Runtime, *, disposable: bool = False) -> str:
    """Migrate the demo database to head (backing up a non-empty one); returns a summary.

    With `disposable` (the demo's own SQLite file under `var/demo/`, not a database the user
    named), a database no migration can continue from is copied to the backups and rebuilt: one
    holding tables without a revision (a first run interrupted by an older version) or one at a
    revision this code does not know.
    """
    engine = runtime.admin_engine
    status = migrate.schema_status(engine)
    if status.at_head:
        return f"database at head ({status.current})"
    backups = runtime.settings.data_dir / "backups"
    reason = _why_rebuild(status) if disposable and engine.dialect.name == "sqlite" else None
    if reason is not None:
        copy = backup_database(engine, default_backup_path(engine, backups))
        _remove_sqlite_database(engine)
        migrate.upgrade(engine)
        return (
            f"rebuilt the demo database: it {reason} (a copy is at {copy}); "
            f"migrated to {migrate.head_revision()}"
        )
    if status.unversioned:
        raise status.unversioned_error()
    if migrate.has_data(engine):
        backup_database(engine, default_backup_path(engine, backups))
    migrate.upgrade(engine)
    return f"database migrated {status.current or '(empty)'} -> {migrate.head_revision()}"


def _why_rebuild(status: migrate.SchemaStatus) -> str | None:
    if status.unversioned:
        return "held tables without a migration revision"
    if status.current is not None and not migrate.is_known_revision(status.current):
        return f"was at revision {status.current}, which this version does not know"
    return None


def _remove_sqlite_database(engine: Engine) -> None:
    """Delete a SQLite database file with its journal, WAL and shared-memory files."""
    engine.dispose()  # no pooled connection keeps the old file open
    database = Path(engine.url.database or "")
    for suffix in ("", "-journal", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    create_private_sqlite_file(database)  # as make_engine does: the new file is 0600 too


def ensure_demo_tenant(runtime: Runtime, tenant_settings: TenantSettings) -> None:
    """Register (or point at this sandbox again) the demo tenant."""
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
