"""`recon doctor`: is this installation able to run? Database, Vault, secrets."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from apps.cli.context import console
from connectors.runtime import Runtime
from recon.db import migrate
from recon.db.backup import backup_role_problem
from recon.db.engine import describe_url
from recon.db.roles import application_role_problem
from recon.db.tenancy import admin_session
from recon.errors import ReconError
from recon.secrets import AUDIT_CHAIN_KEY, GLOBAL_SECRETS, SecretSpec, required_for_tenant
from recon.tenants import list_tenants, parse_settings

REQUIRED_EVERYWHERE: frozenset[SecretSpec] = frozenset({AUDIT_CHAIN_KEY})
"""Global secrets needed in development too: every audit write (tenant add, a run) keys the
chain with `audit_chain_key`, so without it nothing that records a decision can work."""


class Level(StrEnum):
    """How a check came out."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    level: Level
    detail: str


class DoctorFailedError(ReconError):
    """At least one check failed."""

    exit_code = 8


def _database(rt: Runtime) -> tuple[Check, bool]:
    url = describe_url(rt.settings.resolved_database_url)
    try:
        status = migrate.schema_status(rt.engine)
    except SQLAlchemyError as exc:
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or ["unknown error"])[0]
        return Check("database", Level.FAIL, f"{url} is not reachable: {reason}"), False
    if not status.at_head:
        return (
            Check(
                "database schema",
                Level.FAIL,
                f"{url} is at {status.current or '(empty)'}, head is {status.head}; "
                "run `recon db upgrade`",
            ),
            False,
        )
    return Check("database schema", Level.OK, f"{url} at head {status.head}"), True


def _database_role(rt: Runtime) -> Check:
    try:
        problem = application_role_problem(rt.engine)
    except SQLAlchemyError as exc:
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or ["unknown error"])[0]
        return Check("database role", Level.FAIL, f"the role could not be checked: {reason}")
    if problem is None:
        return Check("database role", Level.OK, "row-level security applies to it")
    if rt.settings.is_production:
        return Check("database role", Level.FAIL, problem.sentence())
    return Check("database role", Level.WARN, f"{problem.sentence()} (development only)")


def _backup_role(rt: Runtime) -> Check:
    """`db upgrade` backs up first: warn when the owner's role could not (never a failure, as
    `--no-backup` or another role can take the backup)."""
    try:
        problem = backup_role_problem(rt.admin_engine)
    except SQLAlchemyError as exc:
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or ["unknown error"])[0]
        return Check("database backups", Level.WARN, f"the role could not be checked: {reason}")
    if problem is None:
        return Check("database backups", Level.OK, "the migration role can copy every row")
    return Check("database backups", Level.WARN, problem)


def _vault(rt: Runtime) -> Check:
    settings = rt.settings
    if not settings.vault_addr:
        if settings.is_production:
            return Check(
                "vault", Level.FAIL, "RECON_VAULT_ADDR is not set (required in production)"
            )
        return Check(
            "vault", Level.WARN, "not configured; development reads RECON_SECRET_* variables"
        )
    try:
        client = rt.secrets.store
    except ReconError as exc:
        return Check("vault", Level.FAIL, str(exc))
    if client is None or not client.is_reachable():
        return Check("vault", Level.FAIL, f"{settings.vault_addr} is not reachable")
    return Check("vault", Level.OK, f"{settings.vault_addr} reachable")


def run_checks(rt: Runtime) -> list[Check]:
    """Every check, in the order a person would fix them."""
    checks: list[Check] = []
    db_check, db_ok = _database(rt)
    checks.append(db_check)
    if db_ok:
        checks.append(_database_role(rt))
        checks.append(_backup_role(rt))
    checks.append(_vault(rt))
    production = rt.settings.is_production
    for spec in GLOBAL_SECRETS:
        problems = rt.secrets.check([spec])
        if not problems:
            checks.append(Check(f"secret {spec.name}", Level.OK, "resolvable"))
        elif production or spec in REQUIRED_EVERYWHERE:
            checks.append(Check(f"secret {spec.name}", Level.FAIL, problems[0]))
        else:
            checks.append(
                Check(f"secret {spec.name}", Level.WARN, "not set (required in production)")
            )
    if not db_ok:
        return checks
    with admin_session(rt.engine) as session:
        tenants = [(t.id, parse_settings(t.settings)) for t in list_tenants(session)]
    for tenant_id, settings in tenants:
        problems = rt.secrets.check(required_for_tenant(settings), tenant_id)
        if problems:
            checks.extend(Check(f"tenant {tenant_id}", Level.FAIL, p) for p in problems)
        else:
            checks.append(Check(f"tenant {tenant_id}", Level.OK, "all required secrets resolvable"))
    return checks


def doctor(rt: Runtime) -> list[Check]:
    """Print the report; raise DoctorFailedError naming the first failure."""
    checks = run_checks(rt)
    table = Table("check", "result", "detail")
    colour = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "red"}
    for check in checks:
        table.add_row(check.name, f"[{colour[check.level]}]{check.level}[/]", check.detail)
    console.print(table)
    failures = [c for c in checks if c.level is Level.FAIL]
    if failures:
        # A missing secret is what a person must act on first; name it in the one-line error.
        secret_failures = [c for c in failures if c.name.startswith(("secret", "tenant"))]
        first = (secret_failures or failures)[0]
        more = (
            f" ({len(failures) - 1} more problems in the table above)" if len(failures) > 1 else ""
        )
        raise DoctorFailedError(f"{first.detail}{more}")
    console.print("[green]all checks passed[/green]")
    return checks
