"""What a command needs from the environment: settings, engines, the secrets resolver.

Built lazily, so a command that never touches the database never opens it, and a bad setting is
reported as one sentence instead of a validation dump. It sits at connector level because it
composes the core (settings, engines) with the Vault-backed secret store; importing it installs
Vault as the process's default store, so core code that resolves a secret itself (the audit chain
key) reads the same Vault.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from recon.secrets import SecretStore, use_store_factory
from recon.settings import Settings, load_settings

if TYPE_CHECKING:  # the heavy modules load only when a command touches data or secrets
    from sqlalchemy import Engine

    from recon.secrets import SecretResolver

__all__ = ["Runtime"]


def _vault_store(settings: Settings) -> SecretStore | None:
    from connectors.vault import vault_client_from_settings  # hvac loads only when Vault is used

    return vault_client_from_settings(settings)


use_store_factory(_vault_store)


class Runtime:
    """Lazily built settings, engines and secrets for one process."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @cached_property
    def settings(self) -> Settings:
        """The process settings."""
        return self._settings or load_settings()

    @cached_property
    def engine(self) -> Engine:
        """The application engine (on PostgreSQL: the non-owner role RLS applies to)."""
        from recon.db.engine import make_engine

        return make_engine(self.settings.resolved_database_url)

    @cached_property
    def admin_engine(self) -> Engine:
        """The schema owner's engine, for migrations, backups and the tenant registry."""
        from recon.db.engine import make_engine

        if self.settings.resolved_migration_url == self.settings.resolved_database_url:
            return self.engine
        return make_engine(self.settings.resolved_migration_url)

    @cached_property
    def secrets(self) -> SecretResolver:
        """The secrets resolver (Vault, or environment variables in development)."""
        from connectors.vault import secret_resolver

        return secret_resolver(self.settings)

    def checked_engine(self) -> Engine:
        """The application engine, after refusing a schema that is not at head and (in
        production) a role that row-level security does not apply to."""
        from recon.db.migrate import ensure_at_head
        from recon.db.roles import check_application_role

        ensure_at_head(self.engine)
        if not self.__dict__.get("_role_checked"):
            check_application_role(self.engine, self.settings.is_production)
            self._role_checked = True
        return self.engine

    def checked_admin_engine(self) -> Engine:
        """The owner's engine, after refusing a schema that is not at head."""
        from recon.db.migrate import ensure_at_head

        ensure_at_head(self.admin_engine)
        return self.admin_engine

    def close(self) -> None:
        """Dispose of any engine that was opened."""
        for name in ("engine", "admin_engine"):
            engine = self.__dict__.get(name)
            if engine is not None:
                engine.dispose()
