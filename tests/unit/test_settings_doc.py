"""The README's tenant settings table is the one generated from the settings model."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from recon.tenants import TenantSettings
from tools import settings_doc


def test_the_readme_table_is_the_generated_one() -> None:
    readme = settings_doc.README.read_text(encoding="utf-8")
    assert settings_doc.current(readme) == settings_doc.table(), (
        "README's tenant settings table is stale; run python -m tools.settings_doc"
    )


def test_every_setting_of_the_model_is_a_row() -> None:
    def leaves(model: type[BaseModel], prefix: str = "") -> list[str]:
        out: list[str] = []
        for name, info in model.model_fields.items():
            kind = info.annotation
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                out += leaves(kind, f"{prefix}{name}.")
            else:
                out.append(f"{prefix}{name}")
        return out

    assert [row[0].strip("`") for row in settings_doc.rows()] == leaves(TenantSettings)


def test_a_setting_without_a_meaning_is_an_error() -> None:
    class Extended(BaseModel):
        brand_new: int = 1

    with pytest.raises(LookupError, match="brand_new"):
        settings_doc.rows(Extended)


def test_check_fails_on_a_stale_table_and_the_rewrite_fixes_it(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    stale = settings_doc.table().replace("`3306`", "`3307`")
    readme.write_text(f"# x\n\n{stale}\n\nmore\n", encoding="utf-8")
    assert settings_doc.main(["--check", "--readme", str(readme)]) == 1
    assert settings_doc.main(["--readme", str(readme)]) == 0
    assert settings_doc.main(["--check", "--readme", str(readme)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "`3306`" in text and text.startswith("# x\n") and text.endswith("\nmore\n")
