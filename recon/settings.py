"""Process-wide settings, read from `RECON_*` environment variables (and an optional `.env`).

Only non-secret configuration lives here. Secrets are resolved by `recon.secrets` (Vault, or
environment variables in development); no setting holds a secret and none has a secret default.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("var")


class Environment(StrEnum):
    """Where the process runs; production turns every fallback off."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """All `RECON_*` settings. See the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="RECON_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    env: Environment = Environment.DEVELOPMENT
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to a SQLite file under data_dir.",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="URL of the schema owner for migrations; defaults to database_url.",
    )
    log_level: str = "INFO"
    log_format: Literal["human", "json"] = "human"

    vault_addr: str | None = None
    vault_mount: str = "secret"
    vault_path_prefix: str = "recon"
    vault_ca_cert: Path | None = None
    vault_token: SecretStr | None = None
    vault_role_id: SecretStr | None = None
    vault_secret_id: SecretStr | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def is_production(self) -> bool:
        """True when every development fallback must be off."""
        return self.env is Environment.PRODUCTION

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to `sqlite:///<data_dir>/recon.db`."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'recon.db'}"

    @property
    def resolved_migration_url(self) -> str:
        """The URL migrations run with: the schema owner, or the application URL."""
        return self.migration_database_url or self.resolved_database_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
