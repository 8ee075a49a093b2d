"""The report as a zip of one CSV per section plus `manifest.json`, written as rows stream.

Rows go straight from the database cursor through the digest into the zip entry, so memory
stays bounded whatever the number of allocations. Text cells are formula-safe (the canonical
content already is); amounts are decimals in major units.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from recon.reports.canonical import ContentDigest, SigningKey
from recon.reports.cells import currencies, parse_text, render_text
from recon.reports.manifest import Manifest, SectionEntry
from recon.reports.model import Column, Row, Section

MANIFEST = "manifest.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip entries carry no wall-clock time: same content, same bytes


class _HashingWriter(io.RawIOBase):
    """Passes bytes to `target`, hashing them."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha256 = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self.sha256.update(view)
        self.target.write(view)
        return len(view)


def part_name(index: int, section: str) -> str:
    """The file of the `index`th section."""
    return f"{index:02d}_{section}.csv"


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def render_row(columns: tuple[Column, ...], row: Row) -> list[str]:
    """A canonical row as CSV cells."""
    money = currencies(columns, row)
    return [render_text(c, v, m) for c, v, m in zip(columns, row, money, strict=True)]


def parse_row(columns: tuple[Column, ...], cells: list[str]) -> Row:
    """CSV cells back to a canonical row (text first: amounts need their currency)."""
    texts: Row = tuple(parse_text(c, v, None) if c.kind.value == "text" else None
                       for c, v in zip(columns, cells, strict=True))  # fmt: skip
    money = currencies(columns, texts)
    return tuple(parse_text(c, v, m) for c, v, m in zip(columns, cells, money, strict=True))


def write_csv_zip(sections: Sequence[Section], path: Path, key: SigningKey) -> Manifest:
    """Write the zip to `path` (an open file name the caller renames into place)."""
    digest = ContentDigest()
    entries = []
    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        for index, section in enumerate(sections, start=1):
            name = part_name(index, section.name)
            with archive.open(_entry(name), "w", force_zip64=True) as raw:
                hashing = _HashingWriter(raw)
                stream = io.TextIOWrapper(
                    io.BufferedWriter(hashing, 1 << 16), encoding="utf-8", newline=""
                )
                writer = csv.writer(stream)
                writer.writerow([c.name for c in section.columns])
                for row in digest.section(section):
                    writer.writerow(render_row(section.columns, row))
                stream.flush()
                stream.detach().flush()
            entries.append(
                SectionEntry.of(digest.sections[-1], (name,), (hashing.sha256.hexdigest(),))
            )
        manifest = Manifest(
            "csv", digest.digest, key.sign(digest.digest), key.key_id, tuple(entries)
        )
        archive.writestr(_entry(MANIFEST), manifest.to_json())
    return manifest


def read_rows(archive: zipfile.ZipFile, entry: SectionEntry) -> Iterator[Row]:
    """A section's rows back from its CSV; ValueError (or CellError) when it is not as written."""
    (name,) = entry.parts
    with archive.open(name) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        header = next(reader, None)
        if header != [c.name for c in entry.columns]:
            raise ValueError(f"the header of {name} is not the section's columns")
        for cells in reader:
            if len(cells) != len(entry.columns):
                raise ValueError(
                    f"a row of {name} has {len(cells)} cells, not {len(entry.columns)}"
                )
            yield parse_row(entry.columns, cells)


def file_sha256(archive: zipfile.ZipFile, name: str) -> str:
    """SHA-256 of one member's bytes, streamed."""
    sha = hashlib.sha256()
    with archive.open(name) as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
