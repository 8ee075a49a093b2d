"""The report as a PDF: a summary page (header, summary, tie-outs, audit chain), then each detail
section as a paginated table with its header repeated, page numbers and the digest on every page.
Detail beyond `DETAIL_ROWS` rows per section is summarised with a pointer to the CSV export.

The canonical content (every row of every section) and the manifest are embedded as PDF file
attachments. The PDF is rendered deterministically (reportlab's invariant mode), so `verify`
checks the attachments and then renders the pages again from them: any change to a page, a
figure or an attachment makes the bytes differ.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.pdfbase import pdfdoc
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from recon.reports.canonical import PREAMBLE, ContentDigest, SigningKey
from recon.reports.cells import currencies, render_text
from recon.reports.manifest import Manifest, SectionEntry
from recon.reports.model import Kind, Row, Section
from recon.reports.verify import Tampered, check_content, load_manifest

DETAIL_ROWS = 500
"""Rows of a detail section printed in the PDF; the rest are in the CSV export."""
SUMMARY_SECTIONS = frozenset(
    {"header", "summary", "tieout_bank", "tieout_payouts", "tieout_recorded",
     "tieout_balances", "audit_chain"}
)  # fmt: skip
CONTENT_NAME, MANIFEST_NAME = "report-content.jsonl", "report-manifest.json"
PAGE = landscape(A4)
MARGIN = 28.0
FONT, BOLD, SIZE = "Helvetica", "Helvetica-Bold", 6.0
_WEIGHTS = {Kind.TEXT: 3.0, Kind.INT: 1.0, Kind.AMOUNT: 1.7, Kind.DATE: 1.5, Kind.DATETIME: 2.4}


@dataclass(frozen=True)
class _Shown:
    entry: SectionEntry
    rows: list[Row]


def _printable(value: str) -> str:
    # the standard PDF fonts cover cp1252; anything else is shown as '?' (the data is embedded)
    return value.encode("cp1252", "replace").decode("cp1252")


def _fit(value: str, width: float, font: str = FONT) -> str:
    value = _printable(value.replace("\n", " "))
    if stringWidth(value, font, SIZE) <= width:
        return value
    while value and stringWidth(value + "...", font, SIZE) > width:
        value = value[:-1]
    return value + "..."


def _table(entry: SectionEntry, rows: list[Row]) -> Table:
    columns = entry.columns
    available = PAGE[0] - 2 * MARGIN
    weights = [_WEIGHTS[c.kind] for c in columns]
    widths = [available * w / sum(weights) for w in weights]
    data: list[list[str]] = [
        [_fit(c.name, w - 4, BOLD) for c, w in zip(columns, widths, strict=True)]
    ]
    for row in rows:
        money = currencies(columns, row)
        data.append(
            [
                _fit(render_text(c, v, m), w - 4)
                for c, v, m, w in zip(columns, row, money, widths, strict=True)
            ]
        )
    table = Table(data, colWidths=widths, repeatRows=1)
    style: list[tuple[Any, ...]] = [
        ("FONT", (0, 0), (-1, -1), FONT, SIZE),
        ("FONT", (0, 0), (-1, 0), BOLD, SIZE),
        ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]
    for index, column in enumerate(columns):
        if column.kind in (Kind.AMOUNT, Kind.INT):
            style.append(("ALIGN", (index, 0), (index, -1), "RIGHT"))
    table.setStyle(TableStyle(style))
    return table


def _story(shown: Sequence[_Shown], manifest: Manifest, detail_rows: int) -> list[Any]:
    styles = getSampleStyleSheet()
    story: list[Any] = [Paragraph("Reconciliation report", styles["Title"])]
    detail = False
    for part in shown:
        entry = part.entry
        if entry.name not in SUMMARY_SECTIONS and not detail:
            story.append(PageBreak())
            detail = True
        story.append(Paragraph(_escape(entry.title), styles["Heading3"]))
        if part.rows:
            story.append(_table(entry, part.rows))
        else:
            story.append(Paragraph("No rows.", styles["Normal"]))
        if entry.rows > len(part.rows):
            story.append(
                Paragraph(
                    f"{entry.rows - len(part.rows):,} more rows of this section (of {entry.rows:,}) "
                    f"are not printed here: past {detail_rows:,} rows a section is summarised. "
                    "Every row is in the CSV export of this report (recon export --format csv), "
                    "which carries the same digest, and in this PDF's attachment "
                    f"{CONTENT_NAME}.",
                    styles["Italic"],
                )
            )
        story.append(Spacer(1, 8))
    story.append(
        Paragraph(
            _escape(
                f"SHA-256 digest {manifest.digest}; HMAC-SHA256 signature {manifest.signature} "
                f"(audit_export_signing_key id {manifest.key_id}). Check with: recon export "
                "verify PATH."
            ),
            styles["Normal"],
        )
    )
    return story


def _escape(value: str) -> str:
    return _printable(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attach(canvas: Any, content: bytes, manifest: Manifest) -> None:
    """Embed the canonical content and the manifest as file attachments (EmbeddedFiles)."""
    doc = canvas._doc
    names: list[Any] = []
    for name, data, mime in (
        (CONTENT_NAME, content, "application/x-ndjson"),
        (MANIFEST_NAME, zlib.compress(manifest.to_json().encode("utf-8"), 9), "application/json"),
    ):
        stream = pdfdoc.PDFStream(
            pdfdoc.PDFDictionary(
                {
                    "Type": pdfdoc.PDFName("EmbeddedFile"),
                    "Subtype": pdfdoc.PDFName(mime),
                    "Filter": pdfdoc.PDFArray([pdfdoc.PDFName("FlateDecode")]),
                    "ReconPart": pdfdoc.PDFString(name),
                }
            ),
            data,
            filters=[],
        )
        spec = pdfdoc.PDFDictionary(
            {
                "Type": pdfdoc.PDFName("Filespec"),
                "F": pdfdoc.PDFString(name),
                "UF": pdfdoc.PDFString(name),
                "EF": pdfdoc.PDFDictionary({"F": doc.Reference(stream)}),
            }
        )
        names += [pdfdoc.PDFString(name), doc.Reference(spec)]
    tree = pdfdoc.PDFDictionary({"Names": pdfdoc.PDFArray(names)})
    doc.Catalog.Names = pdfdoc.PDFDictionary({"EmbeddedFiles": tree})


def render(shown: Sequence[_Shown], manifest: Manifest, content: bytes, detail_rows: int) -> bytes:
    """The PDF's bytes: the same inputs always give the same bytes."""
    out = io.BytesIO()
    tenant = next(
        (r[1] for p in shown if p.entry.name == "header" for r in p.rows if r[0] == "tenant"), ""
    )
    doc = SimpleDocTemplate(
        out, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
        bottomMargin=MARGIN + 10, invariant=1, title=f"Reconciliation report {tenant}",
        author="whmcs-recon", creator="whmcs-recon", subject=f"digest {manifest.digest}",
    )  # fmt: skip

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.drawString(MARGIN, MARGIN - 4, f"Page {document.page}")
        canvas.drawRightString(PAGE[0] - MARGIN, MARGIN - 4, f"SHA-256 digest {manifest.digest}")
        canvas.restoreState()

    def first(canvas: Any, document: Any) -> None:
        _attach(canvas, content, manifest)
        footer(canvas, document)

    doc.build(_story(shown, manifest, detail_rows), onFirstPage=first, onLaterPages=footer)
    return out.getvalue()


def write_pdf(
    sections: Sequence[Section], path: Path, key: SigningKey, *, detail_rows: int = DETAIL_ROWS
) -> Manifest:
    """Write the PDF to `path`."""
    compressor = zlib.compressobj(9)
    chunks: list[bytes] = []
    digest = ContentDigest(sink=lambda line: chunks.append(compressor.compress(line)))
    shown: list[tuple[Section, list[Row]]] = []
    for section in sections:
        limit = None if section.name in SUMMARY_SECTIONS else detail_rows
        rows = digest.section(section)
        kept = list(islice(rows, limit))
        for _row in rows:  # the rest is only hashed and embedded
            pass
        shown.append((section, kept))
    chunks.append(compressor.flush())
    entries = tuple(SectionEntry.of(d, ()) for d in digest.sections)
    manifest = Manifest("pdf", digest.digest, key.sign(digest.digest), key.key_id, entries)
    parts = [_Shown(e, rows) for e, (_s, rows) in zip(entries, shown, strict=True)]
    path.write_bytes(render(parts, manifest, b"".join(chunks), detail_rows))
    return manifest


# -- reading back ----------------------------------------------------------------------------------

_PART = re.compile(rb"/ReconPart \(([^)]*)\)")


def _attachments(data: bytes) -> dict[str, bytes]:
    """The embedded files this module writes, by name (compressed bytes)."""
    found: dict[str, bytes] = {}
    for match in _PART.finditer(data):
        start = data.rfind(b"<<", 0, match.start())
        head_end = data.find(b"stream\n", match.end())
        length = re.search(rb"/Length (\d+)", data[start:head_end])
        if start < 0 or head_end < 0 or length is None:
            raise Tampered("its embedded report content cannot be found")
        begin = head_end + len(b"stream\n")
        found[match.group(1).decode("latin-1")] = data[begin : begin + int(length.group(1))]
    return found


_INFLATE_CHUNK = 1 << 20


def _content_lines(compressed: bytes) -> Iterator[bytes]:
    """The embedded content's lines without their newlines, inflated a megabyte at a time, so
    a million-row report is never held decompressed or split in memory."""
    inflate = zlib.decompressobj()
    pending = b""
    try:
        for start in range(0, len(compressed), _INFLATE_CHUNK):
            pending += inflate.decompress(compressed[start : start + _INFLATE_CHUNK])
            *complete, pending = pending.split(b"\n")
            yield from complete
        pending += inflate.flush()
    except zlib.error:
        raise Tampered("its embedded content cannot be read") from None
    *complete, pending = pending.split(b"\n")
    yield from complete
    if pending or not inflate.eof:  # canonical content ends with a newline and a whole stream
        raise Tampered("its embedded content is not a report's canonical content")


class _ContentReader:
    """The embedded content read once, section after section in the manifest's order, keeping
    the first rows of each section that the pages print."""

    def __init__(self, compressed: bytes, detail_rows: int) -> None:
        self._lines = _content_lines(compressed)
        if next(self._lines, b"") + b"\n" != PREAMBLE:
            raise Tampered("its embedded content is not a report's canonical content")
        self._detail_rows = detail_rows
        self.kept: dict[str, list[Row]] = {}

    def rows_of(self, entry: SectionEntry) -> Iterator[Row]:
        """The rows of `entry`, which must be the next section of the content."""
        import json

        head = json.loads(next(self._lines, b"null"))
        if not (isinstance(head, dict) and head.get("section") == entry.name):
            raise Tampered(f"its embedded content does not hold section {entry.name} next")
        limit = None if entry.name in SUMMARY_SECTIONS else self._detail_rows
        kept = self.kept.setdefault(entry.name, [])
        for raw in self._lines:
            value = json.loads(raw)
            if isinstance(value, list):
                if limit is None or len(kept) < limit:
                    kept.append(tuple(value))
                yield tuple(value)
            elif isinstance(value, dict) and "end" in value:
                return
            else:
                raise Tampered("its embedded content is not a report's canonical content")
        raise Tampered(f"its embedded content ends inside section {entry.name}")

    def finish(self) -> None:
        """Refuse content after the last section the manifest names."""
        if next(self._lines, None) is not None:
            raise Tampered("its embedded content holds more than its manifest names")


def verify_pdf(path: Path, key: SigningKey, *, detail_rows: int = DETAIL_ROWS) -> Manifest:
    """Check a PDF written by `write_pdf`; Tampered naming the first difference."""
    data = path.read_bytes()
    parts = _attachments(data)
    if set(parts) != {CONTENT_NAME, MANIFEST_NAME}:
        raise Tampered("it does not carry the report's embedded content and manifest")
    try:
        manifest_text = zlib.decompress(parts[MANIFEST_NAME])
    except zlib.error:
        raise Tampered("its embedded content cannot be read") from None
    manifest = load_manifest(manifest_text, "pdf")
    reader = _ContentReader(parts[CONTENT_NAME], detail_rows)
    check_content(manifest, key, reader.rows_of)
    reader.finish()
    shown = [_Shown(e, reader.kept.get(e.name, [])) for e in manifest.sections]
    if render(shown, manifest, parts[CONTENT_NAME], detail_rows) != data:
        raise Tampered("its pages differ from its signed content (a page was changed)")
    return manifest
