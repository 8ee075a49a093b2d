"""`verify_report`: re-derive a report file's canonical content from its own cells and check the
digest, every section's hash and the HMAC signature; any change fails.

* CSV zip: every member's bytes against the manifest's hashes, each CSV parsed back to canonical
  rows, no member missing or added;
* XLSX: every sheet parsed back (headers, every cell, no cell outside the tables), the manifest
  sheet in its one canonical form;
* PDF: the embedded canonical content checked, then the pages rendered again from it and
  compared byte for byte with the file (so an edited figure on a page fails too).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from recon.errors import InputFileError, NotFoundError, ReconError
from recon.reports.canonical import ContentDigest, SigningKey, resolve_signing_key
from recon.reports.manifest import Manifest, ManifestError, SectionEntry
from recon.reports.model import Row


class ReportVerificationError(ReconError):
    """A report file does not verify: changed after it was signed, or signed with another key."""

    exit_code = 16


class Tampered(ValueError):
    """Why a file does not verify (one sentence)."""


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of checking one report file."""

    path: Path
    rendering: str
    ok: bool
    problem: str | None
    digest: str
    key_id: str
    rows: dict[str, int] = field(default_factory=dict)


def verify_report(path: Path, key: SigningKey | None = None) -> VerifyResult:
    """Check `path` against its own manifest and `key` (default: the configured secret)."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"report file {path} does not exist")
    signing = key or resolve_signing_key()
    try:
        with path.open("rb") as handle:
            magic = handle.read(5)
    except OSError as exc:
        raise InputFileError(f"report file {path} cannot be read: {exc.strerror}") from None
    rendering, manifest = "unknown", None
    try:
        if magic.startswith(b"%PDF-"):
            rendering = "pdf"
            from recon.reports.pdf import verify_pdf

            manifest = verify_pdf(path, signing)
        elif magic.startswith(b"PK"):
            manifest, rendering = _verify_zip(path, signing)
        else:
            raise Tampered("it is not a report this software writes (not a zip or a PDF)")
    except Tampered as exc:
        return VerifyResult(path, rendering, False, f"report {path.name} does not verify: {exc}",
                            manifest.digest if manifest else "", signing.key_id)  # fmt: skip
    return VerifyResult(
        path, rendering, True, None, manifest.digest, manifest.key_id,
        {s.name: s.rows for s in manifest.sections},
    )  # fmt: skip


def _verify_zip(path: Path, key: SigningKey) -> tuple[Manifest, str]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise Tampered(f"it is not a readable zip ({exc})") from None
    with archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" in names:
            from recon.reports.xlsx import verify_xlsx

            return verify_xlsx(path, key), "xlsx"
        return _verify_csv(archive, names, key), "csv"


def _verify_csv(archive: zipfile.ZipFile, names: set[str], key: SigningKey) -> Manifest:
    from recon.reports.csv_zip import MANIFEST, file_sha256, read_rows

    if MANIFEST not in names:
        raise Tampered(f"it has no {MANIFEST}")
    manifest = load_manifest(archive.read(MANIFEST), "csv")
    listed = {p for s in manifest.sections for p in s.parts}
    if names != listed | {MANIFEST}:
        extra = sorted(names - listed - {MANIFEST}) or sorted(listed - names)
        raise Tampered(f"its files are not those the manifest lists ({', '.join(extra)})")
    for entry in manifest.sections:
        for part, expected in zip(entry.parts, entry.part_sha256, strict=True):
            if file_sha256(archive, part) != expected:
                raise Tampered(f"{part} was changed after the report was signed")
    check_content(manifest, key, lambda entry: read_rows(archive, entry))
    return manifest


def load_manifest(raw: bytes | str, rendering: str) -> Manifest:
    """The manifest from its text; Tampered when it is not exactly as written."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        manifest = Manifest.from_json(text)
    except (ManifestError, UnicodeDecodeError) as exc:
        raise Tampered(str(exc)) from None
    if manifest.rendering != rendering:
        raise Tampered(f"its manifest says it is a {manifest.rendering} report, not {rendering}")
    return manifest


def check_content(
    manifest: Manifest, key: SigningKey, rows_of: Callable[[SectionEntry], Iterator[Row]]
) -> None:
    """Recompute the digest from each section's parsed rows and check it, the sections' hashes
    and the signature against the manifest; Tampered naming the first difference."""
    digest = ContentDigest()
    for entry in manifest.sections:
        try:
            for _row in digest.add(entry.name, entry.title, entry.columns, rows_of(entry)):
                pass
        except (ValueError, KeyError) as exc:
            raise Tampered(f"section {entry.name} cannot be read back: {exc}") from None
        got = digest.sections[-1]
        if got.rows != entry.rows or got.sha256 != entry.sha256:
            raise Tampered(
                f"section {entry.name} was changed after the report was signed "
                f"({got.rows} rows read, {entry.rows} signed)"
            )
    if digest.digest != manifest.digest:
        raise Tampered("its content does not match the signed digest")
    if manifest.key_id != key.key_id:
        raise Tampered(
            f"it was signed with audit_export_signing_key id {manifest.key_id}, not with the "
            f"configured key (id {key.key_id})"
        )
    if not key.verifies(manifest.digest, manifest.signature):
        raise Tampered("its signature does not verify: the manifest was changed after signing")
