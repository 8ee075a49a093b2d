"""The report's canonical content, its SHA-256 digest and its HMAC signature.

The canonical content is independent of the output format: a first line naming the format, then
for every section (in report order) a start line with its name, title and columns, one compact
JSON array per row (text formula-safe, amounts as integer minor units, ISO dates) and an end line
with its row count; every line ends in a newline and is UTF-8. The digest is SHA-256 over those
lines in order, so it is computed as rows stream past; each section also has its own SHA-256.
The signature is HMAC-SHA256 over the digest with a key derived from `audit_export_signing_key`,
so the same report has the same digest and signature in CSV, XLSX and PDF.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recon.errors import ConfigError
from recon.reports.model import (
    FORMAT,
    NO_BALANCE,
    AllocationLine,
    Column,
    Kind,
    Report,
    Row,
    Section,
    day,
    fixed,
    stamp,
    text,
)

if TYPE_CHECKING:
    from recon.secrets import SecretResolver

MIN_KEY_LENGTH = 32
PREAMBLE = (json.dumps({"format": FORMAT}, separators=(",", ":")) + "\n").encode("utf-8")

T, N, A, D, S = Kind.TEXT, Kind.INT, Kind.AMOUNT, Kind.DATE, Kind.DATETIME


def _cols(*spec: tuple[str, Kind] | str) -> tuple[Column, ...]:
    out = []
    for item in spec:
        name, kind = (item, T) if isinstance(item, str) else item
        out.append(Column(name, kind, "currency" if kind is A else None))
    return tuple(out)


HEADER = _cols("field", "value")
SUMMARY = _cols("source", "currency", ("transactions", N), ("received", A), ("allocated_auto", A),
                ("allocated_people", A), ("suggested_not_allocated", A), ("unallocated", A),
                ("refunded", A), ("disputed", A), ("fees", A))  # fmt: skip
BANK = _cols("account_ref", "currency", ("credit_lines", N), ("credits", A), ("allocated", A),
             ("payouts", A), ("unallocated", A), ("non_customer", A), ("difference", A),
             "status")  # fmt: skip
PAYOUTS = _cols("source", "payout_id", ("arrival_on", D), "currency", "payout_status",
                ("amount", A), ("lines", N), ("lines_total", A), ("lines_difference", A),
                "bank_ref", ("bank_credit", A), ("bank_difference", A), "status")  # fmt: skip
RECORDED = _cols("currency", ("recorded_count", N), ("recorded", A), ("backed_count", N),
                 ("backed", A), ("unbacked_count", N), ("unbacked", A), ("unchecked_count", N),
                 ("unchecked", A), ("difference", A), "status")  # fmt: skip
BALANCES = _cols("account_ref", "currency", ("opening_on", D), ("opening", A), ("movements", A),
                 ("closing_on", D), ("closing", A), ("difference", A), "status")  # fmt: skip
AUDIT = _cols(("entries", N), ("head_seq", N), "head_hash", "key_id", "verdict")
ALLOCATIONS = _cols(("id", N), ("created_at", S), ("booked_on", D), "source", "transaction_ref",
                    "payer", "reference", "invoice_id", ("amount", A), "currency", "rule",
                    ("confidence", N), "decision", "origin", "created_by", "state",
                    ("reverses_id", N), ("reversed_by", N), "note")  # fmt: skip
EXCEPTIONS = _cols(("id", N), "kind", ("created_at", S), ("age_days", N), "transaction_ref",
                   "payer", "invoice_id", "subject_ref", ("amount", A), "currency", "assignee",
                   "detail")  # fmt: skip
DECISIONS = _cols(("at", S), "who", "what", ("ref_id", N), "transaction_ref", "invoice_id",
                  ("amount", A), "currency", "detail", "note")  # fmt: skip
QUARANTINED = _cols(("id", N), "provider", "dataset", "account_ref", "row_key", ("booked_on", D),
                    ("amount", A), "currency", "reasons", ("created_at", S))  # fmt: skip
VALIDATIONS = _cols("run_id", "dataset", "suite", ("rows_evaluated", N), ("rows_failed", N),
                    "held", ("created_at", S))  # fmt: skip


def _status(difference: int | None) -> str:
    if difference is None:
        return "incomplete"
    return "balanced" if difference == 0 else "DIFFERENCE"


def _allocation_row(a: AllocationLine) -> Row:
    return (a.id, stamp(a.created_at), day(a.booked_on), text(a.source), text(a.transaction_ref),
            text(a.payer), text(a.reference), text(a.invoice_id), a.amount, text(a.currency),
            text(a.rule), a.confidence, text(a.decision), text(a.origin), text(a.created_by),
            text(a.state), a.reverses_id, a.reversed_by, text(a.note))  # fmt: skip


def sections(report: Report) -> list[Section]:
    """The report as canonical sections, in the order every format writes them."""
    h = report.header
    header = [
        ("format", FORMAT),
        ("tenant", h.tenant_id),
        ("tenant_name", h.tenant_name),
        ("period_from", day(h.date_from)),
        ("period_to", day(h.date_to)),
        ("generated_at", stamp(h.generated_at)),
        ("generated_by", h.generated_by),
        ("software_version", h.software_version),
        ("schema_revision", h.schema_revision),
    ]
    a = report.audit
    allocations = report.allocations
    return [
        fixed("header", "Report", HEADER, [(text(k), text(v)) for k, v in header]),
        fixed(
            "summary",
            "Summary per source and currency",
            SUMMARY,
            [
                (
                    text(s.source),
                    text(s.currency),
                    s.transactions,
                    s.received,
                    s.allocated_auto,
                    s.allocated_people,
                    s.suggested,
                    s.unallocated,
                    s.refunded,
                    s.disputed,
                    s.fees,
                )
                for s in report.summary
            ],
        ),
        fixed(
            "tieout_bank",
            "Tie-out per bank account: credits = allocated + payouts + unallocated + non-customer",
            BANK,
            [
                (
                    text(b.account_ref),
                    text(b.currency),
                    b.credit_lines,
                    b.credits,
                    b.allocated,
                    b.payouts,
                    b.unallocated,
                    b.non_customer,
                    b.difference,
                    _status(b.difference),
                )
                for b in report.bank
            ],
        ),
        fixed(
            "tieout_payouts",
            "Tie-out per payout: lines = amount = bank credit",
            PAYOUTS,
            [
                (
                    text(p.source),
                    text(p.payout_id),
                    day(p.arrival_on),
                    text(p.currency),
                    text(p.status),
                    p.amount,
                    p.lines,
                    p.lines_total,
                    p.lines_difference,
                    text(p.bank_ref),
                    p.bank_credit,
                    p.bank_difference,
                    "no bank credit matched"
                    if p.bank_credit is None
                    else _status(p.lines_difference or p.bank_difference),
                )
                for p in report.payouts
            ],
        ),
        fixed(
            "tieout_recorded",
            "WHMCS recorded payments backed by money",
            RECORDED,
            [
                (
                    text(r.currency),
                    r.recorded_count,
                    r.recorded,
                    r.backed_count,
                    r.backed,
                    r.unbacked_count,
                    r.unbacked,
                    r.unchecked_count,
                    r.unchecked,
                    r.difference,
                    _status(r.difference) if not r.unbacked_count else "UNBACKED PAYMENTS",
                )
                for r in report.recorded
            ],
        ),
        fixed(
            "tieout_balances",
            "Bank balances: opening + movements = closing",
            BALANCES,
            [
                (
                    text(b.account_ref),
                    text(b.currency),
                    day(b.opening_on),
                    b.opening,
                    b.movements,
                    day(b.closing_on),
                    b.closing,
                    b.difference,
                    NO_BALANCE if b.opening is None or b.closing is None else _status(b.difference),
                )
                for b in report.balances
            ],
        ),
        fixed(
            "audit_chain",
            "Audit chain",
            AUDIT,
            [(a.entries, a.head_seq, text(a.head_hash), text(a.key_id), text(a.verdict))],
        ),
        Section(
            "allocations",
            "Allocations (reversals included)",
            ALLOCATIONS,
            lambda: (_allocation_row(line) for line in allocations()),
            report.allocation_count,
        ),
        fixed(
            "open_exceptions",
            "Open exceptions",
            EXCEPTIONS,
            [
                (
                    e.id,
                    text(e.kind),
                    stamp(e.created_at),
                    e.age_days,
                    text(e.transaction_ref),
                    text(e.payer),
                    text(e.invoice_id),
                    text(e.subject_ref),
                    e.amount,
                    text(e.currency),
                    text(e.assignee),
                    text(e.detail),
                )
                for e in report.open_exceptions
            ],
        ),
        fixed(
            "decisions",
            "Manual decisions and reversals",
            DECISIONS,
            [
                (
                    stamp(d.at),
                    text(d.who),
                    text(d.what),
                    d.ref_id,
                    text(d.transaction_ref),
                    text(d.invoice_id),
                    d.amount,
                    text(d.currency),
                    text(d.detail),
                    text(d.note),
                )
                for d in report.decisions
            ],
        ),
        fixed(
            "quarantined",
            "Quarantined rows",
            QUARANTINED,
            [
                (
                    q.id,
                    text(q.provider),
                    text(q.dataset),
                    text(q.account_ref),
                    text(q.row_key),
                    day(q.booked_on),
                    q.amount,
                    text(q.currency),
                    text(q.reasons),
                    stamp(q.created_at),
                )
                for q in report.quarantined
            ],
        ),
        fixed(
            "failed_validations",
            "Failed validations",
            VALIDATIONS,
            [
                (
                    text(v.run_id),
                    text(v.dataset),
                    text(v.suite),
                    v.rows_evaluated,
                    v.rows_failed,
                    "yes" if v.held else "no",
                    stamp(v.created_at),
                )
                for v in report.failed_validations
            ],
        ),
    ]


# -- lines and digests -----------------------------------------------------------------------------


def _line(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def start_line(name: str, title: str, columns: tuple[Column, ...]) -> bytes:
    """The canonical line that opens a section."""
    return _line({"section": name, "title": title, "columns": [c.to_json() for c in columns]})


def row_line(row: Row) -> bytes:
    """The canonical line of one row."""
    return _line(list(row))


def end_line(name: str, rows: int) -> bytes:
    """The canonical line that closes a section."""
    return _line({"end": name, "rows": rows})


@dataclass(frozen=True)
class SectionDigest:
    """A section as the manifest lists it."""

    name: str
    title: str
    columns: tuple[Column, ...]
    rows: int
    sha256: str


@dataclass
class ContentDigest:
    """The running digest of the canonical content; `sink` receives every line (PDF embeds them)."""

    sink: Callable[[bytes], None] | None = None
    sections: list[SectionDigest] = field(default_factory=list)
    _all: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._all = hashlib.sha256()
        self._emit(PREAMBLE, None)

    def _emit(self, line: bytes, section: Any) -> None:
        self._all.update(line)
        if section is not None:
            section.update(line)
        if self.sink is not None:
            self.sink(line)

    def add(
        self, name: str, title: str, columns: tuple[Column, ...], rows: Iterator[Row]
    ) -> Iterator[Row]:
        """Pass `rows` through, hashing each; the section's digest is recorded at the end."""
        own = hashlib.sha256()
        self._emit(start_line(name, title, columns), own)
        count = 0
        for row in rows:
            if len(row) != len(columns):
                raise ValueError(f"section {name}: a row has {len(row)} cells, not {len(columns)}")
            self._emit(row_line(row), own)
            count += 1
            yield row
        self._emit(end_line(name, count), own)
        self.sections.append(SectionDigest(name, title, columns, count, own.hexdigest()))

    def section(self, section: Section) -> Iterator[Row]:
        """`add` for a report section."""
        return self.add(section.name, section.title, section.columns, section.rows())

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of everything added so far."""
        return str(self._all.hexdigest())


# -- the signing key -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """The export signing key, derived from the secret; `key_id` names it without revealing it."""

    key: bytes = field(repr=False)
    key_id: str

    @classmethod
    def from_secret(cls, value: str) -> SigningKey:
        """Derive the signing key and its id from `audit_export_signing_key`."""
        if len(value) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"secret audit_export_signing_key is too short ({len(value)} characters): use at "
                f"least {MIN_KEY_LENGTH} random characters, e.g. from `openssl rand -hex 32`"
            )
        secret = value.encode("utf-8")
        sign = hmac.new(secret, b"recon export signature v1", hashlib.sha256).digest()
        key_id = hmac.new(secret, b"recon export key id", hashlib.sha256).hexdigest()[:16]
        return cls(sign, key_id)

    def sign(self, digest: str) -> str:
        """HMAC-SHA256 of the report's digest."""
        message = f"{FORMAT}\n{digest}".encode("ascii")
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def verifies(self, digest: str, signature: str) -> bool:
        """Whether `signature` is this key's signature of `digest`."""
        return hmac.compare_digest(self.sign(digest), signature)


def resolve_signing_key(resolver: SecretResolver | None = None) -> SigningKey:
    """The signing key from the secrets registry (Vault; in development
    RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY). Missing: SecretUnavailableError; never generated."""
    from recon.secrets import AUDIT_EXPORT_SIGNING_KEY, SecretResolver
    from recon.settings import load_settings

    source = resolver or SecretResolver(load_settings())
    return SigningKey.from_secret(source.get(AUDIT_EXPORT_SIGNING_KEY))
