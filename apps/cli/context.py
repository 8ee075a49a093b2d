"""The shared runtime of one CLI invocation and the console helpers commands print with."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from connectors.runtime import Runtime

console = Console()
err_console = Console(stderr=True, soft_wrap=True)

_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The runtime of this invocation, built on first use."""
    global _runtime
    if _runtime is None:
        from connectors.runtime import (
            Runtime,
        )  # heavy (SQLAlchemy, Alembic): only when a command needs it

        _runtime = Runtime()
    return _runtime


def reset_runtime() -> None:
    """Close and forget the runtime (end of an invocation; tests call main() repeatedly)."""
    global _runtime
    if _runtime is not None:
        _runtime.close()
    _runtime = None


def current_actor() -> str:
    """Who is acting, for the audit log: RECON_ACTOR, else the OS user."""
    explicit = os.environ.get("RECON_ACTOR")
    if explicit:
        return explicit
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def acting_user(explicit: str | None) -> str:
    """The email of the person a people-command acts as: `--as EMAIL`, else RECON_USER.

    The service layer checks that this user exists, is active, and may do the command."""
    from recon.errors import PermissionDeniedError

    email = (explicit or os.environ.get("RECON_USER") or "").strip()
    if not email:
        raise PermissionDeniedError(
            "this command acts as a person: pass --as EMAIL or set RECON_USER"
        )
    return email
