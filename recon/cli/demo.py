"""`recon demo`: the whole job on embedded defaults (what `make demo` runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from recon.cli.context import console, runtime


def demo_command(
    no_ui: Annotated[
        bool, typer.Option("--no-ui", help="Do everything but start the UI, then exit.")
    ] = False,
) -> None:
    """Sandbox providers, a migrated SQLite database and the demo tenant, checked end to end."""
    from recon.cli import doctor
    from recon.demo import (
        demo_tenant_settings,
        ensure_demo_tenant,
        prepare_database,
        sandbox_environment,
        store_sandbox_credentials,
    )
    from recon.runtime import Runtime

    base = runtime().settings
    if base.database_url is None:
        demo_dir = base.data_dir / "demo"
        base = base.model_copy(
            update={"database_url": f"sqlite:///{demo_dir / 'recon.db'}", "data_dir": demo_dir}
        )
    with sandbox_environment(base) as env:
        console.rule("[bold]recon demo")
        console.print(f"sandbox providers at {env.server.url}")
        demo_runtime = Runtime(env.settings)
        try:
            console.print(prepare_database(demo_runtime, env.settings.data_dir / "backups"))
            tenant_settings = demo_tenant_settings(env.server.url)
            ensure_demo_tenant(demo_runtime, tenant_settings)
            store_sandbox_credentials(env, tenant_settings)
            console.print("tenant [bold]demo[/bold] registered; its credentials are in Vault")
            doctor.doctor(demo_runtime)
        finally:
            demo_runtime.close()
    if not no_ui:
        console.print("the ops UI is not part of this version yet; nothing more to start")
