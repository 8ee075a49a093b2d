"""`write_report`: a built report to a signed file (csv zip, xlsx or pdf), written atomically."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from recon.errors import ConfigError
from recon.reports.canonical import SigningKey, resolve_signing_key
from recon.reports.manifest import RENDERINGS, Manifest
from recon.reports.model import Report
from recon.reports.sections import sections


@dataclass(frozen=True)
class WrittenReport:
    """What was written where, and the digest and signature it carries."""

    path: Path
    rendering: str
    digest: str
    signature: str
    key_id: str
    rows: dict[str, int]

    @classmethod
    def of(cls, path: Path, manifest: Manifest) -> WrittenReport:
        """From the manifest the writer produced."""
        return cls(
            path,
            manifest.rendering,
            manifest.digest,
            manifest.signature,
            manifest.key_id,
            {s.name: s.rows for s in manifest.sections},
        )


def write_report(
    report: Report, fmt: str, path: Path, key: SigningKey | None = None
) -> WrittenReport:
    """Render `report` as `fmt` (csv, xlsx, pdf) to `path`, signed with `key` (default: the
    `audit_export_signing_key` secret; missing: SecretUnavailableError). A failure leaves no file."""
    if fmt not in RENDERINGS:
        raise ConfigError(f"--format must be one of {', '.join(RENDERINGS)}, not {fmt!r}")
    signing = key or resolve_signing_key()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    os.close(fd)
    temp = Path(temp_name)
    try:
        manifest = _render(report, fmt, temp, signing)
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)
    return WrittenReport.of(path, manifest)


def _render(report: Report, fmt: str, path: Path, key: SigningKey) -> Manifest:
    parts = sections(report)
    if fmt == "csv":
        from recon.reports.csv_zip import write_csv_zip

        return write_csv_zip(parts, path, key)
    if fmt == "xlsx":
        from recon.reports.xlsx import write_xlsx

        return write_xlsx(parts, path, key)
    from recon.reports.pdf import write_pdf

    return write_pdf(parts, path, key)
