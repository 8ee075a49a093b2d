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
    Column,
    Row,
    Section,
)

if TYPE_CHECKING:
    from recon.secrets import SecretResolver

MIN_KEY_LENGTH = 32
PREAMBLE = (json.dumps({"format": FORMAT}, separators=(",", ":")) + "\n").encode("utf-8")

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
