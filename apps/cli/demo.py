"""`recon demo`: the whole job on embedded defaults (what `make demo` runs)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from apps.cli.context import console, runtime
from recon.settings import Settings


def demo_command(
    no_ui: Annotated[
        bool, typer.Option("--no-ui", help="Do everything but start the UI, then exit.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port the ops UI serves the demo on.")] = 8501,
) -> None:
    """Sandbox providers, a migrated SQLite database, the demo tenant and a 90-day run."""
    from flows.launch import start_local_api

    # Prefect's temporary server boots on the other core while the demo builds its world; the
    # flow call waits for it (and the server stops with this process).
    start_local_api()
    from apps.cli import doctor
    from apps.cli.run import print_summary, run_flow
    from apps.demo import (
        DEMO_DAYS,
        DEMO_TENANT,
        ensure_demo_tenant,
        follow_up_exports,
        prepare_database,
        sandbox_environment,
    )
    from connectors.runtime import Runtime
    from flows.reconcile import reconcile
    from recon.tenants import TenantSettings

    base = runtime().settings
    demo_dir = base.data_dir / "demo"
    own_url = f"sqlite:///{demo_dir / 'recon.db'}"
    # The demo's own database, not one the user named (RECON_DATABASE_URL as the demo's
    # follow-up exports set it still names the demo's own: its chain key stays the same).
    disposable = base.database_url in (None, own_url)
    if disposable:
        base = base.model_copy(update={"database_url": own_url, "data_dir": demo_dir})
    today = dt.datetime.now(dt.UTC).date()
    console.rule("[bold]recon demo")
    console.print("building the synthetic world and starting the sandbox providers")
    with sandbox_environment(base, today) as env:
        console.print(f"sandbox providers at {env.server.url} ({_describe(env.sandbox.summary())})")
        demo_runtime = Runtime(env.settings)
        try:
            console.print(prepare_database(demo_runtime, disposable=disposable))
            tenant_settings = TenantSettings.model_validate(
                env.sandbox.tenant_settings(env.server.url)
            )
            ensure_demo_tenant(demo_runtime, tenant_settings)
            console.print(
                f"tenant [bold]{DEMO_TENANT}[/bold] points at the sandbox; its credentials are in Vault"
            )
            doctor.doctor(demo_runtime)
        finally:
            demo_runtime.close()
        start = today - dt.timedelta(days=DEMO_DAYS - 1)
        with console.status(f"reconciling {DEMO_TENANT} {start}..{today}"):
            result = run_flow(reconcile, tenant=DEMO_TENANT, date_from=start, date_to=today)
        print_summary(result)
        logins = [] if no_ui else _demo_logins(env.settings)
    console.print(
        "to run `recon` on the demo's database afterwards (e.g. `recon run --tenant demo` inside "
        "its window, which replays what the demo stored), first:",
        soft_wrap=True,
    )
    for line in follow_up_exports(base):
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    if not no_ui:
        _serve_ui(base, logins, port)


def _demo_logins(settings: Settings) -> list[tuple[str, str, str]]:
    """The demo's users with new random passwords, made while the sandbox Vault (and with it the
    audit chain key their audit entries need) still serves."""
    from apps.cli.ui import demo_logins
    from apps.demo import DEMO_TENANT
    from connectors.runtime import Runtime

    demo_runtime = Runtime(settings)
    try:
        return demo_logins(demo_runtime.checked_engine(), DEMO_TENANT)
    finally:
        demo_runtime.close()


def _serve_ui(settings: Settings, logins: list[tuple[str, str, str]], port: int) -> None:
    """Print the demo logins and serve the UI on the demo's database (the chain key, read from
    the file the demo keeps it in, goes to the UI's environment, never to the terminal)."""
    import sys

    from apps.cli.ui import serve_demo_ui

    for email, role, password in logins:
        console.print(
            f"demo login ({role}): {email}  password: {password}", markup=False, highlight=False
        )
    keys = settings.data_dir / "sandbox"
    env = {
        "RECON_DATABASE_URL": settings.resolved_database_url,
        "RECON_DATA_DIR": str(settings.data_dir),
        "RECON_SECRET_AUDIT_CHAIN_KEY": (keys / "audit-chain-key").read_text("utf-8").strip(),
    }
    export_key = keys / "export-signing-key"
    if export_key.exists():
        env["RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY"] = export_key.read_text("utf-8").strip()
    serve_demo_ui(env, port, interactive=sys.stdin.isatty())


def _describe(summary: dict[str, int]) -> str:
    return ", ".join(f"{count} {what}" for what, count in summary.items())
