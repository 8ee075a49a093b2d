"""Write the suites' JSON under `expectations/json/` (run after changing a suite)."""

from __future__ import annotations

import json
from pathlib import Path

from expectations.suites import SUITES, suite_document

JSON_DIR = Path(__file__).resolve().parent / "json"


def rendered(name: str) -> str:
    """The exact text committed for suite `name`."""
    return json.dumps(suite_document(name), indent=2, sort_keys=True) + "\n"


def main() -> None:
    """Rewrite every suite's JSON file."""
    JSON_DIR.mkdir(exist_ok=True)
    for name in SUITES:
        (JSON_DIR / f"{name}.json").write_text(rendered(name), encoding="utf-8")


if __name__ == "__main__":
    main()
