"""`recon user`: users, roles, tenant grants and local passwords (admins only).

Each command parses its arguments, calls one function of `recon.review.users` and prints the
result. Passwords are read from stdin (`--password-stdin`) or asked twice on a terminal; they
are never echoed, printed or passed as an argument.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from apps.cli.context import acting_user, console, runtime
from recon.errors import ConfigError, PermissionDeniedError

if TYPE_CHECKING:
    from recon.review.users import UserInfo

app = typer.Typer(
    help="Users with a role (finance, auditor, admin) and their tenant grants.",
    no_args_is_help=True,
)

AsOption = Annotated[
    str | None, typer.Option("--as", help="Act as this user (else RECON_USER); must be an admin.")
]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
]


def _read_password(from_stdin: bool, *, optional: bool = False) -> str | None:
    """One line of stdin, or a password asked twice without echo on a terminal (`optional`:
    an empty answer means none)."""
    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        if not password:
            raise ConfigError("--password-stdin read an empty line; pipe the password in")
        return password
    if not sys.stdin.isatty():
        if optional:
            return None
        raise ConfigError("there is no terminal to ask for the password; use --password-stdin")
    hint = " (empty: sign in through OIDC only)" if optional else ""
    first = getpass.getpass(f"New password{hint}: ")
    if optional and not first:
        return None
    if getpass.getpass("Repeat it: ") != first:
        raise ConfigError("the two passwords differ; nothing was changed")
    return first


def _summary(info: UserInfo) -> str:
    tenants = ", ".join(info.tenants) or "no tenant yet"
    state = "" if info.active else ", disabled"
    return f"{info.email} ({info.role.value}{state}; {tenants})"


def _as_json(info: UserInfo) -> dict[str, object]:
    document = dataclasses.asdict(info)
    document["role"] = info.role.value
    document["tenants"] = list(info.tenants)
    for key in ("created_at", "last_login_at"):
        value = getattr(info, key)
        document[key] = value.isoformat() if value is not None else None
    return document


@app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The user's email (compared without case).")],
    role: Annotated[str, typer.Option(help="finance, auditor or admin.")],
    tenant: Annotated[
        list[str] | None, typer.Option(help="A tenant the user may see; repeat for more.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password_stdin: PasswordStdin = False,
    as_: AsOption = None,
) -> None:
    """Add a user, with a password from stdin or asked on a terminal, or none (then they sign
    in only through OIDC).

    While there is no active admin, the first admin may be added without --as."""
    from recon.review.users import add_user

    try:
        acting: str | None = acting_user(as_)
    except PermissionDeniedError:
        acting = None  # the bootstrap; the service refuses it once an admin exists
    password = _read_password(password_stdin, optional=True)
    info = add_user(
        runtime().checked_engine(),
        acting,
        email,
        role,
        display_name=name or "",
        tenants=tenant or [],
        password=password,
    )
    console.print(f"user {_summary(info)} added", highlight=False)


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, for scripts.")] = False,
    as_: AsOption = None,
) -> None:
    """List the users with their role, state and tenants."""
    from recon.review.users import list_users

    users = list_users(runtime().checked_engine(), acting_user(as_))
    if as_json:
        typer.echo(json.dumps([_as_json(info) for info in users], sort_keys=True))
        return
    if not users:
        console.print("no users yet; add the first admin with `recon user add EMAIL --role admin`")
        return
    table = Table("email", "name", "role", "active", "tenants", "password", "last sign-in")
    for info in users:
        table.add_row(
            info.email,
            info.display_name,
            info.role.value,
            "yes" if info.active else "no",
            ", ".join(info.tenants) or "-",
            "set" if info.password_set else "OIDC only",
            info.last_login_at.strftime("%Y-%m-%d %H:%M") if info.last_login_at else "-",
        )
    console.print(table)


@app.command("disable")
def disable(
    email: Annotated[str, typer.Argument(help="The user to disable.")],
    as_: AsOption = None,
) -> None:
    """Disable a user: they can no longer sign in or act (their history stays)."""
    from recon.review.users import disable_user

    info = disable_user(runtime().checked_engine(), acting_user(as_), email)
    console.print(f"user {_summary(info)}", highlight=False)


@app.command("enable")
def enable(
    email: Annotated[str, typer.Argument(help="The user to enable again.")],
    as_: AsOption = None,
) -> None:
    """Enable a disabled user again, with the role and tenants they had."""
    from recon.review.users import enable_user

    info = enable_user(runtime().checked_engine(), acting_user(as_), email)
    console.print(f"user {_summary(info)}", highlight=False)


@app.command("role")
def role(
    email: Annotated[str, typer.Argument(help="The user.")],
    role: Annotated[str, typer.Option("--role", help="The new role: finance, auditor or admin.")],
    as_: AsOption = None,
) -> None:
    """Give a user another role (the last active admin keeps theirs)."""
    from recon.review.users import set_role

    change = set_role(runtime().checked_engine(), acting_user(as_), email, role)
    info = change.user
    if change.changed:
        said = f"is now {info.role.value} (was {change.before.value})"
    else:
        said = f"is already {info.role.value}"
    console.print(f"user {_summary(info)} {said}", highlight=False)


@app.command("grant")
def grant(
    email: Annotated[str, typer.Argument(help="The user.")],
    tenant: Annotated[str, typer.Option(help="The tenant they may see.")],
    as_: AsOption = None,
) -> None:
    """Let a user see a tenant."""
    from recon.review.users import grant_tenant

    info = grant_tenant(runtime().checked_engine(), acting_user(as_), email, tenant)
    console.print(f"user {_summary(info)}", highlight=False)


@app.command("revoke")
def revoke(
    email: Annotated[str, typer.Argument(help="The user.")],
    tenant: Annotated[str, typer.Option(help="The tenant they may no longer see.")],
    as_: AsOption = None,
) -> None:
    """Take a tenant away from a user."""
    from recon.review.users import revoke_tenant

    info = revoke_tenant(runtime().checked_engine(), acting_user(as_), email, tenant)
    console.print(f"user {_summary(info)}", highlight=False)


@app.command("password")
def password(
    email: Annotated[str, typer.Argument(help="The user (an admin for anyone, else yourself).")],
    password_stdin: PasswordStdin = False,
    as_: AsOption = None,
) -> None:
    """Set a user's local password (asked twice on a terminal, or one line of stdin)."""
    from recon.review.users import set_password

    acting = acting_user(as_)
    secret = _read_password(password_stdin) or ""
    info = set_password(runtime().checked_engine(), acting, email, secret)
    console.print(f"password of {info.email} set", highlight=False)
