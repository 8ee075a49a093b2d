"""`recon automations apply FILE`: create or update the project's Prefect automations.

The file holds automations in the format `prefect automation create --from-file` reads (one
automation, a list, or `{automations: [...]}`). Unlike that command, applying is idempotent: an
automation is found by its name and updated in place, so running it on every deploy never makes
two automations that act on the same runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from apps.cli.context import console
from recon.errors import ConfigError, InputFileError

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

app = typer.Typer(help="Prefect automations declared beside prefect.yaml.", no_args_is_help=True)


@dataclass(frozen=True)
class Applied:
    """What applying one automation did: `created` or `updated`, and duplicates removed."""

    name: str
    automation_id: str
    action: str
    removed_duplicates: int


def load_automations(path: Path) -> list[AutomationCore]:
    """The automations a YAML or JSON file declares, validated by Prefect's own schema."""
    import yaml  # type: ignore[import-untyped]  # PyYAML (a Prefect dependency) has no stubs here
    from prefect.events.schemas.automations import AutomationCore
    from pydantic import ValidationError

    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError:
        raise InputFileError(f"{path} is not YAML or JSON") from None
    if isinstance(data, dict) and "automations" in data:
        data = data["automations"]
    items = data if isinstance(data, list) else [data]
    automations = []
    for index, item in enumerate(items):
        try:
            automations.append(AutomationCore.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InputFileError(
                f"automation #{index + 1} of {path} is not valid: {where}: {first['msg']}"
            ) from None
    names = [a.name for a in automations]
    if len(set(names)) != len(names):
        raise InputFileError(f"{path} names an automation twice; names identify them")
    return automations


def apply_automations(
    client: SyncPrefectClient, automations: list[AutomationCore]
) -> list[Applied]:
    """Create each automation, or update the one of the same name (removing any duplicates)."""
    done = []
    for automation in automations:
        existing = sorted(client.read_automations_by_name(automation.name), key=lambda a: a.id)
        if not existing:
            created = client.create_automation(automation)
            done.append(Applied(automation.name, str(created), "created", 0))
            continue
        keep, *duplicates = existing
        client.update_automation(keep.id, automation)
        for duplicate in duplicates:
            client.delete_automation(duplicate.id)
        done.append(Applied(automation.name, str(keep.id), "updated", len(duplicates)))
    return done


@app.command("apply")
def apply_command(
    file: Annotated[Path, typer.Argument(help="YAML or JSON file of automations.")],
) -> None:
    """Create or update (by name) the automations of FILE on the server PREFECT_API_URL names."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    automations = load_automations(file)
    url = PREFECT_API_URL.value()
    if not url:
        raise ConfigError(
            "PREFECT_API_URL is not set: automations live on the Prefect server that runs the "
            "deployments, so point it there"
        )
    try:
        with get_client(sync_client=True) as client:
            applied = apply_automations(client, automations)
    except (httpx.HTTPError, RuntimeError) as exc:
        raise ConfigError(
            f"the Prefect API at {url} did not accept the automations ({type(exc).__name__})"
        ) from None
    for item in applied:
        extra = (
            f", {item.removed_duplicates} duplicate(s) removed" if item.removed_duplicates else ""
        )
        console.print(f"{item.action} automation {item.name!r} ({item.automation_id}){extra}")
