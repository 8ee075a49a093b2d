"""The manifest every format carries: digest, signature, key id and each section's hash.

It is written in one canonical JSON form, so `verify` refuses a manifest whose text was changed in
any way, even one that leaves its meaning alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from recon.reports.canonical import SectionDigest
from recon.reports.model import FORMAT, Column

RENDERINGS = ("csv", "xlsx", "pdf")


class ManifestError(ValueError):
    """A manifest that is not one this code writes."""


@dataclass(frozen=True)
class SectionEntry:
    """One section as listed: where it is in the file (`parts`) and its canonical hash."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: int
    sha256: str
    parts: tuple[str, ...]
    part_sha256: tuple[str, ...] = ()
    """SHA-256 of each part's bytes, where a part is a file of its own (CSV)."""

    @classmethod
    def of(
        cls, digest: SectionDigest, parts: tuple[str, ...], part_sha256: tuple[str, ...] = ()
    ) -> SectionEntry:
        """The entry for a section hashed while it was written."""
        return cls(
            digest.name,
            digest.title,
            digest.columns,
            digest.rows,
            digest.sha256,
            parts,
            part_sha256,
        )


@dataclass(frozen=True)
class Manifest:
    """What a report file says about itself."""

    rendering: str
    digest: str
    signature: str
    key_id: str
    sections: tuple[SectionEntry, ...]
    format: str = FORMAT

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "format": self.format,
            "rendering": self.rendering,
            "digest": self.digest,
            "signature": self.signature,
            "key_id": self.key_id,
            "verify_with": "recon export verify PATH",
            "sections": [
                {
                    "name": s.name,
                    "title": s.title,
                    "columns": [c.to_json() for c in s.columns],
                    "rows": s.rows,
                    "sha256": s.sha256,
                    "parts": list(s.parts),
                    "part_sha256": list(s.part_sha256),
                }
                for s in self.sections
            ],
        }

    def to_json(self) -> str:
        """The one text form of the manifest."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, raw: str) -> Manifest:
        """Parse a manifest; ManifestError when it is not exactly what `to_json` writes."""
        try:
            data = json.loads(raw)
            manifest = cls._from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"the manifest is not a report manifest ({exc})") from None
        if manifest.to_json() != raw:
            raise ManifestError("the manifest's text was changed after it was written")
        return manifest

    @classmethod
    def _from_dict(cls, data: Any) -> Manifest:
        if data["format"] != FORMAT:
            raise ValueError(f"format is not {FORMAT}")
        if data["rendering"] not in RENDERINGS:
            raise ValueError("unknown rendering")
        sections = tuple(
            SectionEntry(
                str(s["name"]),
                str(s["title"]),
                tuple(Column.from_json(c) for c in s["columns"]),
                int(s["rows"]),
                str(s["sha256"]),
                tuple(str(p) for p in s["parts"]),
                tuple(str(p) for p in s["part_sha256"]),
            )
            for s in data["sections"]
        )
        return cls(
            str(data["rendering"]),
            str(data["digest"]),
            str(data["signature"]),
            str(data["key_id"]),
            sections,
        )
