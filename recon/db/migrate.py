"""Migrations and the schema gate: the only way the schema is made or changed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, inspect

from recon.db.engine import describe_url
from recon.errors import NotFoundError, SchemaNotAtHeadError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config() -> Config:
    """Alembic configuration pointing at the project's migrations folder."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the project always ships migrations
        raise RuntimeError("no migrations found")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database stands against the code's migrations."""

    url: str
    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        """True when the database needs no migration."""
        return self.current == self.head


def schema_status(engine: Engine) -> SchemaStatus:
    """Current and head revisions of `engine`'s database."""
    return SchemaStatus(
        url=describe_url(engine.url.render_as_string(hide_password=False)),
        current=current_revision(engine),
        head=head_revision(),
    )


def ensure_at_head(engine: Engine) -> None:
    """Refuse to go on unless the schema is at head (every command that touches data calls it)."""
    status = schema_status(engine)
    if not status.at_head:
        where = status.current or "empty (no migrations applied)"
        raise SchemaNotAtHeadError(
            f"the database {status.url} is at revision {where} but this version needs "
            f"{status.head}; run `recon db upgrade` first"
        )


def has_data(engine: Engine) -> bool:
    """True when the database holds any table at all (and so is worth a backup)."""
    return bool(inspect(engine).get_table_names())


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to `revision` on `engine`'s database."""
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to `revision` (`base` empties the schema)."""
    _run(engine, "downgrade", revision)


def _run(engine: Engine, direction: str, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        try:
            if direction == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
        except CommandError as exc:
            raise NotFoundError(
                f"cannot {direction} to {revision!r}: {exc}; `recon db status` lists the revisions"
            ) from None
