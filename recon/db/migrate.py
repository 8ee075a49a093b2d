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

from recon.db.engine import describe_url, schema_transaction
from recon.errors import NotFoundError, SchemaNotAtHeadError, UnversionedSchemaError

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


def is_known_revision(revision: str) -> bool:
    """True when `revision` is one of the code's migrations."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_tables(engine: Engine) -> list[str]:
    """The tables of this project's schema that exist in the database (others are ignored)."""
    import recon.db.models  # noqa: F401 - registers every table; loaded only when needed
    from recon.db.base import Base

    return sorted(set(inspect(engine).get_table_names()) & set(Base.metadata.tables))


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database stands against the code's migrations."""

    url: str
    current: str | None
    head: str
    unversioned_tables: tuple[str, ...] = ()

    @property
    def at_head(self) -> bool:
        """True when the database needs no migration."""
        return self.current == self.head

    @property
    def unversioned(self) -> bool:
        """True when tables of the schema exist but no revision is recorded."""
        return self.current is None and bool(self.unversioned_tables)

    def unversioned_error(self) -> UnversionedSchemaError:
        """The one-sentence error for a database in the unversioned state."""
        shown = ", ".join(self.unversioned_tables[:3])
        more = len(self.unversioned_tables) - 3
        return UnversionedSchemaError(
            f"the database {self.url} holds {len(self.unversioned_tables)} tables of this "
            f"schema ({shown}{f' and {more} more' if more > 0 else ''}) but no migration "
            "revision, as an upgrade interrupted by an older version leaves it; restore it from "
            "a backup, or empty it, and run `recon db upgrade` again"
        )


def schema_status(engine: Engine) -> SchemaStatus:
    """Current and head revisions of `engine`'s database."""
    current = current_revision(engine)
    return SchemaStatus(
        url=describe_url(engine.url.render_as_string(hide_password=False)),
        current=current,
        head=head_revision(),
        unversioned_tables=tuple(schema_tables(engine)) if current is None else (),
    )


def ensure_at_head(engine: Engine) -> None:
    """Refuse to go on unless the schema is at head (every command that touches data calls it)."""
    status = schema_status(engine)
    if status.unversioned:
        raise status.unversioned_error()
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
    """Apply migrations up to `revision` on `engine`'s database, all of them or none.

    A database holding the schema's tables without a revision is refused with
    `UnversionedSchemaError` rather than migrated over.
    """
    status = schema_status(engine)
    if status.unversioned:
        raise status.unversioned_error()
    _run(engine, "upgrade", revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to `revision` (`base` empties the schema)."""
    _run(engine, "downgrade", revision)


def _run(engine: Engine, direction: str, revision: str) -> None:
    """Every step of the migration in one transaction (see `schema_transaction`)."""
    config = alembic_config()
    with engine.connect() as connection, schema_transaction(connection):
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
