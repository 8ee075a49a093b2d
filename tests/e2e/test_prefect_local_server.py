"""The guarded temporary Prefect server that local runs start (`flows.prefect_server`).

* The first start on a machine keeps Prefect's migrated database as a template in
  `PREFECT_HOME`; the next start boots from a copy of it and serves flow runs as before.
* The server is launched before Prefect's settings are read; when a profile names a Prefect
  server after all, the launched one is stopped unused and flow runs go to the named server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import base_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter each time: the server is one per process.
START_AND_RUN = """
import json, os, sys
from prefect import flow
from flows.launch import run_flow, start_local_api
from flows import prefect_server

@flow
def probe() -> str:
    from prefect.settings import PREFECT_API_URL
    return str(PREFECT_API_URL.value())

start_local_api()
server = prefect_server._server
api = run_flow(probe)
print(json.dumps({
    "api": api,
    "server_api": server.api_url if server else None,
    "pid": server.process.pid if server else None,
    "state_dir": server.state_dir if server else None,
}))
"""

BEGIN_ONLY = """
import json
from flows import prefect_server
server = prefect_server.begin_local_prefect_api()
print(json.dumps({"server": server is not None}))
"""


def _python(code: str, env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text(
        errors="replace"
    )


def test_second_start_boots_from_the_kept_template(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    env = base_env() | {"PREFECT_HOME": str(home), "PREFECT_PROFILES_PATH": str(home / "p.toml")}

    first = _python(START_AND_RUN, env)
    templates = sorted(home.glob("recon-server-*.db"))
    assert len(templates) == 1, list(home.iterdir())
    assert templates[0].stat().st_size > 0
    kept = templates[0].read_bytes()
    # The flow ran on this process's own server, and the server went with the process.
    assert first["api"] == first["server_api"]
    assert isinstance(first["pid"], int) and not _alive(first["pid"])
    assert first["state_dir"] and not Path(str(first["state_dir"])).exists()

    second = _python(START_AND_RUN, env)
    assert second["api"] == second["server_api"]
    assert second["server_api"] != first["server_api"] or second["pid"] != first["pid"]
    # The template is only written once: what the second start copied is what the first kept.
    assert templates[0].read_bytes() == kept
    assert not list(home.glob("*.partial"))


def test_a_profile_naming_a_server_stops_the_early_launch(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    home.mkdir()
    profiles = home / "profiles.toml"
    profiles.write_text(
        'active = "remote"\n\n[profiles.remote]\nPREFECT_API_URL = "http://127.0.0.1:9/api"\n'
    )
    env = base_env() | {"PREFECT_HOME": str(home), "PREFECT_PROFILES_PATH": str(profiles)}

    assert _python(BEGIN_ONLY, env) == {"server": False}
    # Stopped before it could migrate anything: no template was kept.
    assert not list(home.glob("recon-server-*.db"))


def test_an_unusable_template_is_dropped_and_the_server_migrates_anew(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = base_env() | {"PREFECT_HOME": str(home), "PREFECT_PROFILES_PATH": str(home / "p.toml")}
    version = subprocess.run(
        [sys.executable, "-c", "from importlib.metadata import version; print(version('prefect'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    template = home / f"recon-server-{version}.db"
    template.write_bytes(b"not a database, as a copy cut short by a full disk would be" * 100)

    ran = _python(START_AND_RUN, env)

    assert ran["api"] == ran["server_api"]
    assert template.read_bytes()[:16] == b"SQLite format 3\x00"  # kept anew, migrated
