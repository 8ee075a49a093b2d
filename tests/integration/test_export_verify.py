"""`verify` passes an untouched report of each format and fails after any edit: one amount, one
row, the header, the manifest; and `recon export` / `recon export verify` from the command line."""

from __future__ import annotations

import json
import re
import secrets
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
from reportlab.lib.rl_accel import asciiBase85Decode, asciiBase85Encode
from sqlalchemy import Engine

from apps.cli.main import main
from recon.errors import SecretUnavailableError
from recon.reports import build_report, verify_report, write_report
from recon.reports.canonical import SigningKey
from recon.review.access import Role
from tests.integration.test_export_books import FROM, TENANT, TO, seed_books
from tests.people import make_user


@pytest.fixture
def engine(sqlite_url: str, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A SQLite database with the books; the CLI is pointed at it."""
    from recon.db.tenancy import admin_session
    from recon.tenants import TenantSettings, add_tenant

    monkeypatch.setenv("RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY", secrets.token_hex(32))
    monkeypatch.setenv("RECON_DATABASE_URL", sqlite_url)
    with admin_session(sqlite_engine) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    seed_books(sqlite_engine)
    make_user(sqlite_engine, "aud@acme.test", Role.AUDITOR, (TENANT,))
    return sqlite_engine


def _write(engine: Engine, fmt: str, path: Path) -> Path:
    report = build_report(engine, "aud@acme.test", TENANT, FROM, TO)
    return write_report(report, fmt, path).path


# -- CSV zip ---------------------------------------------------------------------------------------


def _rewrite_zip(path: Path, edit: Callable[[str, bytes], bytes | None]) -> None:
    with zipfile.ZipFile(path) as archive:
        members = [(i.filename, archive.read(i.filename)) for i in archive.infolist()]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            changed = edit(name, data)
            if changed is not None:
                archive.writestr(name, changed)


CSV_EDITS: dict[str, Callable[[str, bytes], bytes | None]] = {
    "amount": lambda n, d: d.replace(b",30.00,", b",31.00,") if "allocations" in n else d,
    "row": lambda n, d: b"\r\n".join([*d.split(b"\r\n")[:-2], b""]) if "allocations" in n else d,
    "header": lambda n, d: (
        d.replace(b"tenant_name,Acme", b"tenant_name,Acne") if "header" in n else d
    ),
    "manifest": lambda n, d: d.replace(b'"rows": 6', b'"rows": 5') if n == "manifest.json" else d,
    "manifest_spacing": lambda n, d: d + b"\n" if n == "manifest.json" else d,
    "file_removed": lambda n, d: None if "quarantined" in n else d,
}


@pytest.mark.parametrize("edit", sorted(CSV_EDITS))
def test_a_csv_zip_verifies_untouched_and_fails_after_an_edit(
    engine: Engine, tmp_path: Path, edit: str
) -> None:
    path = _write(engine, "csv", tmp_path / "r.zip")
    assert verify_report(path).ok
    _rewrite_zip(path, CSV_EDITS[edit])
    result = verify_report(path)
    assert not result.ok and result.problem and "does not verify" in result.problem


def test_a_csv_edit_with_a_matching_manifest_still_fails_without_the_key(
    engine: Engine, tmp_path: Path
) -> None:
    """Someone who edits a figure and rewrites every hash cannot sign the new digest."""
    path = _write(engine, "csv", tmp_path / "r.zip")
    forger = SigningKey.from_secret("x" * 40)
    assert not verify_report(path, forger).ok  # another key: refused by key id
    assert "signed with audit_export_signing_key id" in (verify_report(path, forger).problem or "")


# -- XLSX ------------------------------------------------------------------------------------------


def _edit_xlsx(path: Path, edit: str) -> None:
    book = openpyxl.load_workbook(path)
    if edit == "amount":
        sheet = book["allocations"]
        column = [c.value for c in sheet[1]].index("amount") + 1
        sheet.cell(row=3, column=column).value = 31
    elif edit == "row":
        book["allocations"].delete_rows(2)
    elif edit == "header":
        book["header"]["B3"].value = "Acne"
    elif edit == "manifest":
        book["manifest"]["B1"].value = "0" * 64
    elif edit == "formula":
        book["open_exceptions"]["F2"].value = '=HYPERLINK("x")'
    book.save(path)


@pytest.mark.parametrize("edit", ["amount", "row", "header", "manifest", "formula"])
def test_an_xlsx_verifies_untouched_and_fails_after_an_edit(
    engine: Engine, tmp_path: Path, edit: str
) -> None:
    path = _write(engine, "xlsx", tmp_path / "r.xlsx")
    assert verify_report(path).ok
    _edit_xlsx(path, edit)
    assert not verify_report(path).ok


def test_an_xlsx_section_past_the_sheet_limit_continues_on_more_sheets(
    engine: Engine, tmp_path: Path
) -> None:
    from recon.reports.canonical import resolve_signing_key
    from recon.reports.sections import sections
    from recon.reports.xlsx import write_xlsx

    report = build_report(engine, "aud@acme.test", TENANT, FROM, TO)
    path = tmp_path / "r.xlsx"
    manifest = write_xlsx(sections(report), path, resolve_signing_key(), rows_per_sheet=4)
    book = openpyxl.load_workbook(path, read_only=True)
    assert "allocations (2)" in book.sheetnames
    contents = list(book["contents"].iter_rows(values_only=True))
    note = next(r[4] for r in contents if r[0] == "allocations")
    assert note.startswith("continues on 2 sheets")
    book.close()
    result = verify_report(path)
    assert result.ok and result.digest == manifest.digest


# -- PDF -------------------------------------------------------------------------------------------


def _patch_streams(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace `old` with `new` inside every stream that holds it (as a PDF editor would): page
    streams are ASCII85 over Flate, the attachments Flate alone."""
    out, changed = data, False
    for match in re.finditer(rb"/Length (\d+)([^>]*>>\s*stream\r?\n)", data):
        start = match.end()
        body = data[start : start + int(match.group(1))]
        a85 = b"ASCII85Decode" in data[max(0, match.start() - 200) : start]
        try:
            plain = zlib.decompress(asciiBase85Decode(body) if a85 else body)
        except (zlib.error, ValueError):
            continue
        if old in plain:
            packed = zlib.compress(plain.replace(old, new))
            packed = asciiBase85Encode(packed).encode("latin-1") if a85 else packed
            out = out.replace(body, packed)
            changed = True
    assert changed, f"{old!r} not found in any stream"
    return out


PDF_EDITS = {
    "amount": (b"(30.00)", b"(31.00)"),
    "row": (b"(Alice Example)", b"(Alice Exampel)"),
    "header": (b"(Acme)", b"(Acne)"),
    "content": (b",3000,", b",3100,"),
}


@pytest.mark.parametrize("edit", sorted(PDF_EDITS))
def test_a_pdf_verifies_untouched_and_fails_after_an_edit(
    engine: Engine, tmp_path: Path, edit: str
) -> None:
    path = _write(engine, "pdf", tmp_path / "r.pdf")
    assert verify_report(path).ok
    data = path.read_bytes()
    assert data.count(b"/ReconPart") == 2
    path.write_bytes(_patch_streams(data, *PDF_EDITS[edit]))
    assert not verify_report(path).ok


def _pdf_parts(path: Path) -> tuple[bytes, object]:
    """The PDF's embedded content (inflated) and its manifest."""
    from recon.reports.pdf import CONTENT_NAME, MANIFEST_NAME, _attachments
    from recon.reports.verify import load_manifest

    parts = _attachments(path.read_bytes())
    manifest = load_manifest(zlib.decompress(parts[MANIFEST_NAME]), "pdf")
    return zlib.decompress(parts[CONTENT_NAME]), manifest


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ("extra section", "more than its manifest names"),
        ("sections swapped", "does not hold section"),
        ("cut short", "ends inside section"),
    ],
)
def test_a_pdf_whose_embedded_content_is_out_of_order_or_extra_is_refused(
    engine: Engine, tmp_path: Path, change: str, refusal: str
) -> None:
    """The embedded content is read once, in the manifest's order, never held whole in memory:
    content beyond, before or short of what the manifest names is refused."""
    from recon.reports.canonical import PREAMBLE, resolve_signing_key
    from recon.reports.pdf import _ContentReader
    from recon.reports.verify import Tampered, check_content

    content, manifest = _pdf_parts(_write(engine, "pdf", tmp_path / "r.pdf"))
    blocks = [b for b in re.split(rb"(?m)^(?=\{\"section\")", content[len(PREAMBLE) :]) if b]
    assert len(blocks) == len(manifest.sections)  # type: ignore[attr-defined]
    if change == "extra section":
        blocks.append(b'{"section":"extra","title":"x","columns":[]}\n{"end":"extra","rows":0}\n')
    elif change == "sections swapped":
        blocks[0], blocks[1] = blocks[1], blocks[0]
    else:
        blocks[-1] = blocks[-1][: blocks[-1].rindex(b'{"end"')]
    reader = _ContentReader(zlib.compress(PREAMBLE + b"".join(blocks)), 500)
    with pytest.raises(Tampered, match=refusal):
        check_content(manifest, resolve_signing_key(), reader.rows_of)  # type: ignore[arg-type]
        reader.finish()


# -- the command line ------------------------------------------------------------------------------


def test_recon_export_and_verify_from_the_command_line(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "acme-october.pdf"
    code = main(["export", "--tenant", TENANT, "--from", "2026-10-01", "--to", "2026-10-31",
                 "--format", "pdf", "--out", str(out), "--as", "aud@acme.test", "--json"])  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["rows"]["allocations"] == 6
    assert printed["tie_out_differences"]["recorded"] == 1
    assert main(["export", "verify", str(out)]) == 0
    assert "verified" in capsys.readouterr().out
    out.write_bytes(_patch_streams(out.read_bytes(), b"(Page 1)", b"(Page 9)"))
    assert main(["export", "verify", str(out)]) == 16
    err = capsys.readouterr().err
    assert "does not verify" in err and "Traceback" not in err


def test_recon_export_refuses_a_user_without_a_grant_and_a_missing_key(
    engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    make_user(engine, "nobody@acme.test", Role.AUDITOR)
    args = ["export", "--tenant", TENANT, "--from", "2026-10-01", "--to", "2026-10-31",
            "--out", str(tmp_path / "r.zip")]  # fmt: skip
    assert main([*args, "--as", "nobody@acme.test"]) == 13
    assert "no access to tenant 'acme'" in capsys.readouterr().err
    assert not (tmp_path / "r.zip").exists()
    monkeypatch.delenv("RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY")
    assert main([*args, "--as", "aud@acme.test"]) == SecretUnavailableError.exit_code
    assert "audit_export_signing_key" in capsys.readouterr().err
