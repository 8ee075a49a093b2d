"""The import-linter contracts in pyproject.toml (run by `make lint`) can fail, and the matching
engine's contract forbids every module of the core but money and errors."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import recon

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        config: dict[str, Any] = tomllib.load(handle)["tool"]["importlinter"]
    return config


def _contract(contract_id: str) -> dict[str, Any]:
    return next(c for c in _config()["contracts"] if c["id"] == contract_id)


def test_the_matching_contract_forbids_every_other_module_of_the_core() -> None:
    forbidden = set(_contract("matching-independent")["forbidden_modules"])
    core = {f"recon.{m.name}" for m in pkgutil.iter_modules(recon.__path__)} - {"recon.__main__"}
    allowed = {"recon.matching", "recon.money", "recon.errors"}
    assert core - allowed == {name for name in forbidden if name.startswith("recon.")}
    assert {"sqlalchemy", "prefect", "httpx"} <= forbidden
    assert _config()["include_external_packages"] is True


def test_a_wrong_arrow_breaks_the_contracts(tmp_path: Path) -> None:
    for package in _config()["root_packages"]:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "connectors" / "pages.py").open("a") as handle:
        handle.write("\nfrom tasks import land  # noqa: E402\n")
    with (tmp_path / "recon" / "matching" / "__init__.py").open("a") as handle:
        handle.write("\nimport sqlalchemy  # noqa: E402\n")
    result = subprocess.run(  # the copy comes first on the path: lint-imports runs in its folder
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "connectors.pages -> tasks.land" in result.stdout
    assert "recon.matching is not allowed to import sqlalchemy" in result.stdout


def test_the_provider_clients_load_no_database_library() -> None:
    # A connector parses and fetches; counting quotas and loading rows happen a floor above or
    # behind a guard the caller hands in, so importing one must not pull in SQLAlchemy.
    code = (
        "import sys\n"
        "import connectors.stripe, connectors.gocardless, connectors.whmcs\n"
        "import connectors.gocardless_payments, recon.canonical\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
