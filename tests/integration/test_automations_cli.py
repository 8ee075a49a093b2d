"""`recon automations apply`: the project's automation file is valid for the installed Prefect,
fits the heartbeat frequency prefect.yaml sets, and a bad file or a missing server is one
sentence and a documented exit code. (Applying on a real server: tests/e2e.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

from apps.cli.automations import load_automations
from apps.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
ZOMBIES = ROOT / "automations" / "zombie-flow-runs.yaml"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_zombie_automation_allows_three_missed_heartbeats() -> None:
    (automation,) = load_automations(ZOMBIES)
    project = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    env = project["definitions"]["work_pools"]["process"]["job_variables"]["env"]
    frequency = int(env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"])
    trigger = automation.trigger
    assert trigger.within.total_seconds() >= 3 * frequency
    assert trigger.posture == "Proactive"
    # every flow a deployment runs (and the reconcile subflow they call) is watched
    watched = set(trigger.match_related.root["prefect.resource.name"])
    assert {"reconcile", "daily", "backfill", "on-provider-event"} <= watched


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("name: x\ntrigger: {type: event, posture: Sideways}\nactions: []\n", "is not valid"),
        ("automations: [{name: a", "is not YAML or JSON"),
    ],
)
def test_a_bad_file_is_one_sentence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, needle: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    code, _, err = run(capsys, "automations", "apply", str(path))
    assert code == 6
    assert needle in err and len(err.strip().splitlines()) == 1


def test_without_a_server_it_says_where_to_point(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    code, _, err = run(capsys, "automations", "apply", str(ZOMBIES))
    assert code == 2
    assert "PREFECT_API_URL is not set" in err and len(err.strip().splitlines()) == 1


def test_an_unreachable_server_is_one_sentence(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        code, _, err = run(capsys, "automations", "apply", str(ZOMBIES))
    assert code == 2
    assert "did not accept the automations" in err and len(err.strip().splitlines()) == 1
