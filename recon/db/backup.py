"""Consistent copies of the database, taken before every upgrade of a non-empty database."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy import Engine

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
    """Write a consistent copy of `engine`'s database to `target` and return it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if engine.dialect.name == "sqlite":
        return _backup_sqlite(engine, target)
    if engine.dialect.name == "postgresql":
        return _backup_postgresql(engine, target)
    raise ConfigError(f"backups are not supported for {engine.dialect.name} databases")


def _backup_sqlite(engine: Engine, target: Path) -> Path:
    source_path = engine.url.database
    if not source_path or source_path == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    with closing(sqlite3.connect(source_path)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)  # the online backup API: consistent while others write
    return target


def _backup_postgresql(engine: Engine, target: Path) -> Path:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(
            "pg_dump is not installed, so no backup can be taken; install the PostgreSQL "
            "client tools or pass --no-backup"
        )
    url = engine.url
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)  # never on the command line
    args = [pg_dump, "--format=custom", f"--file={target}", "--no-password"]
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
        first_line = (result.stderr.strip().splitlines() or ["unknown error"])[0]
        raise BackupError(f"pg_dump failed: {first_line}")
    return target
