"""Consistent copies of the database, taken before every upgrade of a non-empty database.

A copy is written to a private (0600) temporary file next to the target, flushed to disk and
renamed over it only when complete: a failed backup leaves no file behind, a finished one is whole.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine, text

from recon.errors import ConfigError, ReconError


class BackupError(ReconError):
    """The backup could not be written."""


def default_backup_path(engine: Engine, backup_dir: Path) -> Path:
    """`<backup_dir>/<database>-<UTC timestamp>.<ext>`."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = Path(engine.url.database or "database").stem
    ext = "sqlite3" if engine.dialect.name == "sqlite" else "dump"
    return backup_dir / f"{name}-{stamp}.{ext}"


def backup_database(engine: Engine, target: Path) -> Path:
    """Write a consistent copy of `engine`'s database to `target` (mode 0600) and return it."""
    if engine.dialect.name == "sqlite":
        write = _sqlite_writer(engine)
    elif engine.dialect.name == "postgresql":
        write = _postgresql_writer(engine)
    else:
        raise ConfigError(f"backups are not supported for {engine.dialect.name} databases")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return _write_atomically(target, write)


def _write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """Have `write` fill a private temporary file beside `target`, then rename it into place."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)  # mkstemp created it 0600; the writers reopen it by name
    partial = Path(name)
    try:
        write(partial)
        with partial.open("rb") as written:
            os.fsync(written.fileno())
        partial.chmod(0o600)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)
    return target


def _sqlite_writer(engine: Engine) -> Callable[[Path], None]:
    source_path = engine.url.database
    if not source_path or source_path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")

    def write(partial: Path) -> None:
        with (
            closing(sqlite3.connect(source_path)) as source,
            closing(sqlite3.connect(partial)) as copy,
        ):
            source.backup(copy)  # the online backup API: consistent while others write

    return write


# Tables whose rows row-level security would hide from (or refuse to) the connected role: pg_dump
# runs with row_security off and fails on them part-way, or, with --enable-row-security, silently
# dumps only the rows visible without a tenant, which is none.
_RLS_BLOCKED_TABLES = text(
    """
    SELECT c.relname
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND (c.relforcerowsecurity OR NOT pg_has_role(current_user, c.relowner, 'USAGE'))
       AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user)
     ORDER BY c.relname
    """
)


def backup_role_problem(engine: Engine) -> str | None:
    """Why pg_dump as `engine`'s role cannot copy every row (None when it can, or off PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        blocked = connection.execute(_RLS_BLOCKED_TABLES).scalars().all()
    if not blocked:
        return None
    return (
        f"role {engine.url.username or '(default)'!r} cannot back up the database: row-level "
        f"security binds it on {len(blocked)} tables ({blocked[0]}, ...), and is forced on their "
        "owner too; run backups as a superuser or a role with BYPASSRLS that can read every "
        "table (RECON_MIGRATION_DATABASE_URL)"
    )


def _postgresql_writer(engine: Engine) -> Callable[[Path], None]:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(
            "pg_dump is not installed, so no backup can be taken; install the PostgreSQL "
            "client tools or pass --no-backup"
        )
    url = engine.url
    problem = backup_role_problem(engine)
    if problem is not None:
        raise BackupError(f"{problem}, or skip it with `recon db upgrade --no-backup`")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # never on the command line

    def write(partial: Path) -> None:
        args = [pg_dump, "--format=custom", f"--file={partial}", "--no-password"]
        if url.host:
            args.append(f"--host={url.host}")
        if url.port:
            args.append(f"--port={url.port}")
        if url.username:
            args.append(f"--username={url.username}")
        args.append(url.database or "postgres")
        # The argument list is built here from the parsed URL; no shell is involved.
        result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            raise BackupError(f"pg_dump failed: {(lines or ['unknown error'])[0]}")

    return write
