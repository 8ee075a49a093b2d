"""`recon tenant`: register tenants and read their non-secret settings."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from apps.cli.context import console, current_actor, runtime
from recon.errors import ConfigError, InputFileError

app = typer.Typer(help="Tenants and their non-secret settings.", no_args_is_help=True)


def _read_settings_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(f"cannot read settings file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"settings file {path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise InputFileError(f"settings file {path} must hold an object at the top level")
    return data


def _apply_assignment(settings: dict[str, Any], assignment: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r} is not of the form key.path=value")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    node = settings
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {assignment!r}: {part} is not a group of settings")
        node = child
    node[parts[-1]] = value


@app.command("add")
def add(
    tenant_id: Annotated[str, typer.Argument(help="Slug: lower-case letters, digits, hyphens.")],
    name: Annotated[str, typer.Option(help="Display name.")],
    settings_file: Annotated[
        Path | None, typer.Option(help="JSON or TOML file with the tenant's settings.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="A setting as key.path=value (JSON values allowed); repeat."),
    ] = None,
) -> None:
    """Register a tenant with its non-secret settings (secrets go to Vault)."""
    from recon.db.tenancy import admin_session
    from recon.tenants import add_tenant, parse_settings

    raw = _read_settings_file(settings_file) if settings_file else {}
    for assignment in set_ or []:
        _apply_assignment(raw, assignment)
    settings = parse_settings(raw)
    with admin_session(runtime().checked_admin_engine()) as session:
        add_tenant(session, tenant_id, name, settings, actor=current_actor())
    console.print(f"tenant {tenant_id} added")


@app.command("list")
def list_() -> None:
    """List the tenants."""
    from recon.db.tenancy import admin_session
    from recon.tenants import list_tenants, parse_settings

    with admin_session(runtime().checked_engine()) as session:
        tenants = list_tenants(session)
        table = Table("id", "name", "active", "sources", "auto-apply")
        for tenant in tenants:
            settings = parse_settings(tenant.settings, production=False)  # display only
            sources = [
                label
                for label, on in (
                    ("whmcs", True),
                    ("bank", settings.gocardless.enabled),
                    ("stripe", settings.stripe.enabled),
                    ("gocardless", settings.gocardless_payments.enabled),
                )
                if on
            ]
            table.add_row(
                tenant.id,
                tenant.name,
                "yes" if tenant.active else "no",
                ", ".join(sources),
                "on" if settings.auto_apply else "off",
            )
    if not tenants:
        console.print("no tenants yet; add one with `recon tenant add`")
        return
    console.print(table)


@app.command("show")
def show(tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")]) -> None:
    """Show one tenant's settings as JSON (they hold no secrets)."""
    from recon.db.tenancy import admin_session
    from recon.tenants import get_tenant, parse_settings

    with admin_session(runtime().checked_engine()) as session:
        tenant = get_tenant(session, tenant_id)
        document = {
            "id": tenant.id,
            "name": tenant.name,
            "active": tenant.active,
            # display only: a run checks https again; user info is refused everywhere
            "settings": parse_settings(tenant.settings, production=False).model_dump(mode="json"),
        }
    console.print_json(json.dumps(document))


@app.command("update")
def update(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="A setting as key.path=value (JSON values allowed); repeat."),
    ] = None,
    settings_file: Annotated[
        Path | None,
        typer.Option(help="JSON or TOML file with settings to change (merged into the current)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A new display name.")] = None,
) -> None:
    """Change a tenant's settings or name; audited with the before and after of each change."""
    from recon.db.tenancy import admin_session
    from recon.tenant_admin import refuse_secret_key, update_tenant

    changes = _read_settings_file(settings_file) if settings_file else {}
    for assignment in set_ or []:
        refuse_secret_key(assignment.partition("=")[0].strip())  # before the value is echoed
        _apply_assignment(changes, assignment)
    if not changes and name is None:
        raise ConfigError("nothing to change; give --set, --settings-file or --name")
    with admin_session(runtime().checked_admin_engine()) as session:
        change = update_tenant(
            session, tenant_id, changes=changes, name=name, actor=current_actor()
        )
    if not change.changed:
        console.print(f"tenant {tenant_id} unchanged")
        return
    table = Table("setting", "before", "after", title=f"tenant {tenant_id} updated")
    if change.name:
        table.add_row("name", change.name[0], change.name[1])
    for path, (before, after) in change.settings.items():
        table.add_row(path, json.dumps(before), json.dumps(after))
    console.print(table)


@app.command("disable")
def disable(tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")]) -> None:
    """Retire a tenant (audited): its data stays, its runs, applies and webhooks are refused."""
    from recon.db.tenancy import admin_session
    from recon.tenant_admin import set_active

    with admin_session(runtime().checked_admin_engine()) as session:
        changed = set_active(session, tenant_id, False, actor=current_actor())
    console.print(f"tenant {tenant_id} {'disabled' if changed else 'was already disabled'}")


@app.command("enable")
def enable(tenant_id: Annotated[str, typer.Argument(help="The tenant's id.")]) -> None:
    """Turn a disabled tenant back on (audited)."""
    from recon.db.tenancy import admin_session
    from recon.tenant_admin import set_active

    with admin_session(runtime().checked_admin_engine()) as session:
        changed = set_active(session, tenant_id, True, actor=current_actor())
    console.print(f"tenant {tenant_id} {'enabled' if changed else 'was already enabled'}")
