"""Options the people-commands share (the tenant, who acts, JSON for scripts)."""

from __future__ import annotations

from typing import Annotated

import typer

TenantOption = Annotated[str, typer.Option("--tenant", help="The tenant's id.")]
AsOption = Annotated[str | None, typer.Option("--as", help="Act as this user (else RECON_USER).")]
JsonOption = Annotated[bool, typer.Option("--json", help="JSON for scripts.")]
