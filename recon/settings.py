"""Process-wide settings, read from `RECON_*` environment variables (and an optional `.env`).

Only non-secret configuration lives here. Secrets are resolved by `recon.secrets` (Vault, or
environment variables in development); no setting holds a secret and none has a secret default.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from recon.errors import ConfigError

DEFAULT_DATA_DIR = Path("var")
LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback_host(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`: where a development sandbox listens."""
    if not host:
        return False
    name = host.strip("[]").lower().rstrip(".")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def url_transport_problem(url: str, *, production: bool) -> str | None:
    """Why `url` may not be used to reach a service (None when it may). Never echoes the URL.

    A user name or password in the URL is refused everywhere (it would be printed and audited);
    production needs https; development allows http only to a loopback sandbox.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry a user name or password; keep credentials in Vault"
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None if host else "is not a valid URL"
    if scheme != "http":
        return "must be an https:// URL"
    if production:
        return "must use https in production"
    if not is_loopback_host(host):
        return (
            "must use https; http is allowed only to a loopback sandbox (127.0.0.1, localhost, "
            "::1) in development"
        )
    return None


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

    # None means off; a secret-sounding setting never carries a default value (tests/unit/test_code_gates.py)
    local_passwords: bool | None = Field(
        default=None,
        description="Allow local passwords in production (production signs in through OIDC).",
    )
    oidc_mapping: Path | None = Field(
        default=None,
        description="TOML or JSON file that maps OIDC identities (issuer + email or group) to roles.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @field_validator("vault_addr")
    @classmethod
    def _vault_over_tls(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        production = info.data.get("env") is Environment.PRODUCTION
        problem = url_transport_problem(value, production=production)
        if problem:
            raise PydanticCustomError("insecure_url", f"Vault's address {problem}")
        return value

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


def load_settings() -> Settings:
    """Read the `RECON_*` settings, turning a validation error into one clear sentence."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"setting RECON_{field.upper()} is invalid: {first['msg']}") from None
