"""`recon db`: migrations, status and backups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apps.cli.context import console, err_console, runtime
from recon.errors import SchemaNotAtHeadError

app = typer.Typer(help="Database migrations, status and backups.", no_args_is_help=True)


def _backup_dir() -> Path:
    return runtime().settings.data_dir / "backups"


@app.command()
def status() -> None:
    """Print current and head revisions; exit non-zero when they differ."""
    from recon.db import migrate

    state = migrate.schema_status(runtime().admin_engine)
    console.print(f"database: {state.url}")
    console.print(f"current:  {state.current or '(empty)'}")
    console.print(f"head:     {state.head}")
    if state.unversioned:
        raise state.unversioned_error()
    if not state.at_head:
        raise SchemaNotAtHeadError("the schema is not at head; run `recon db upgrade`")
    console.print("[green]at head[/green]")


@app.command()
def backup(
    out: Annotated[Path | None, typer.Option(help="Where to write the copy.")] = None,
) -> None:
    """Write a consistent copy of the database (SQLite online backup, or pg_dump)."""
    from recon.db.backup import backup_database, default_backup_path

    engine = runtime().admin_engine
    target = backup_database(engine, out or default_backup_path(engine, _backup_dir()))
    console.print(f"backup written to {target}")


@app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    no_backup: Annotated[
        bool, typer.Option("--no-backup", help="Skip the backup of a non-empty database.")
    ] = False,
) -> None:
    """Migrate the schema up, taking a backup first when the database holds anything."""
    from recon.db import migrate
    from recon.db.backup import backup_database, default_backup_path

    engine = runtime().admin_engine
    state = migrate.schema_status(engine)
    before = state.current
    if state.at_head and revision == "head":
        console.print(f"already at head ({before})")
        return
    if state.unversioned:  # migrating over such tables would fail half-way; say what they are
        raise state.unversioned_error()
    if not no_backup and migrate.has_data(engine):
        target = backup_database(engine, default_backup_path(engine, _backup_dir()))
        err_console.print(f"backup written to {target}")
    migrate.upgrade(engine, revision)
    console.print(f"upgraded {before or '(empty)'} -> {migrate.current_revision(engine)}")


@app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, or `base`.")],
    no_backup: Annotated[bool, typer.Option("--no-backup", help="Skip the backup.")] = False,
) -> None:
    """Migrate the schema down to REVISION, taking a backup first."""
    from recon.db import migrate
    from recon.db.backup import backup_database, default_backup_path

    engine = runtime().admin_engine
    before = migrate.current_revision(engine)
    if not no_backup and migrate.has_data(engine):
        target = backup_database(engine, default_backup_path(engine, _backup_dir()))
        err_console.print(f"backup written to {target}")
    migrate.downgrade(engine, revision)
    console.print(
        f"downgraded {before or '(empty)'} -> {migrate.current_revision(engine) or '(empty)'}"
    )
