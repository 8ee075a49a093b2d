"""The fast check of one keyed audit entry, for walks over a whole chain (`recon.audit.verify_rows`).

`FastKeyedCheck(key, key_id, details_text)(row)` is True when the row is a keyed entry (format 2) of the configured key
whose stored hash is the HMAC of its stored previous hash and its canonical payload. It writes the
same bytes as `recon.audit.stored_payload` but with the HMAC's padded key states computed once per
walk (not once per entry), the details read from their stored JSON text with the C scanner and
written with one reused C encoder, and no type checks beyond what the fast path needs. Anything
else (another format or key, an odd type, JSON it cannot read, a mismatch) is False, and the
caller then runs the full check, which decides the verdict and its wording: so a True here is only
ever given for an entry the full check also verifies, and every entry is still checked.

On PostgreSQL `postgres_rows` reads the rows with the entry's time already as the text the chain
hashes (`recon.audit._timestamp`: UTC, microseconds, `+00:00`), written by the server, so Python
neither decodes a timestamp nor formats one per entry; a reader thread fetches the next batch
while the caller checks this one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import queue
import threading
from collections.abc import Generator
from json.encoder import encode_basestring
from typing import Any

_HMAC_FORMAT = 2  # recon.audit.CHAIN_HMAC
_BLOCK = 64  # SHA-256's block size: HMAC pads its key to it
_UTC = dt.UTC
_raw_decode = json.JSONDecoder().raw_decode
_quote = encode_basestring  # canonical_json's string encoder (non-ASCII kept)
# canonical_json's settings (sorted keys, compact, non-ASCII kept, default=str), built once; no
# circular-reference markers: parsed JSON cannot hold a cycle, and any error falls back anyway.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # CPython's C encoder
_encode = (
    _c_make_encoder(None, str, encode_basestring, None, ":", ",", True, False, True)
    if _c_make_encoder is not None
    else None
)


class FastKeyedCheck:
    """A per-walk checker of keyed entries given as `recon.audit.CHAIN_COLUMNS` rows: with
    `details_text` their details are the stored JSON text, else the value already parsed (a str
    is then a JSON string, never text to parse); with `time_text` a time given as a str is
    already the hashed text (`postgres_rows`), one given as a datetime is formatted here."""

    def __init__(
        self, chain_key: bytes, key_id: str, *, details_text: bool = False, time_text: bool = False
    ) -> None:
        padded = (
            chain_key if len(chain_key) <= _BLOCK else hashlib.sha256(chain_key).digest()
        ).ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        self._key_id = key_id
        self._text = details_text
        self._time_text = time_text

    def __call__(self, row: Any) -> bool:
        """True when the row is a keyed entry of this key whose HMAC verifies (see the module)."""
        _, tenant, seq, at, actor, action, entity, entity_id, details, prev, stored, v, key_id = row
        if v != _HMAC_FORMAT or key_id != self._key_id or _encode is None:
            return False
        try:
            if self._text:
                if type(details) is not str:
                    return False
                details, end = _raw_decode(details)
                if end != len(row[8]):
                    return False  # surrounding whitespace or more: the full check reads it
            if self._time_text and type(at) is str:
                stamp = at
            else:
                if at.tzinfo is None:  # SQLite gives back naive UTC times
                    at = at.replace(tzinfo=_UTC)
                stamp = at.astimezone(_UTC).isoformat(timespec="microseconds")
            message = (
                f'{prev}{{"action":{_quote(action)},"actor":{_quote(actor)},"chain_version":2,'
                f'"details":{"".join(_encode(details, 0))},"entity":{_quote(entity)},'
                f'"entity_id":{_quote(entity_id)},"key_id":{_quote(key_id)},'
                f'"occurred_at":"{stamp}",'
                f'"seq":{int(seq)},"tenant_id":{_quote(tenant)}}}'
            ).encode()
        except Exception:  # an odd row: the full check decides
            return False
        if not (
            type(tenant) is str and type(actor) is str and type(action) is str
            and type(entity) is str and type(entity_id) is str and type(seq) is int
            and type(prev) is str and type(stored) is str
        ):  # fmt: skip
            return False
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest() == stored


def stored_time(row: Any) -> Any:
    """The row's time as the full check reads it: `postgres_rows`' text parsed back to the aware
    UTC datetime it was written from (`_timestamp` of it gives the same text), else as it is."""
    at = row[3]
    return dt.datetime.fromisoformat(at) if type(at) is str else at


# The entry's time as `recon.audit._timestamp` writes it, by the server: to_char's fields are all
# zero-padded numbers (YYYY is four digits for years below 1000, US six), none depends on the
# locale, and `AT TIME ZONE 'UTC'` makes it independent of the session's time zone. Outside the
# years Python's datetime holds (1..9999 UTC) it is NULL and the time is read as a timestamp.
_ROWS_SQL = (
    "SELECT id, tenant_id, seq, "
    "CASE WHEN occurred_at >= '0001-01-01 00:00:00+00' AND occurred_at < '10000-01-01 00:00:00+00' "
    "THEN to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') END, "
    "actor, action, entity, entity_id, details::text, prev_hash, entry_hash, chain_version, "
    "key_id FROM audit_log WHERE tenant_id = %s ORDER BY id"
)
_TIME_SQL = "SELECT occurred_at FROM audit_log WHERE id = %s"
_END = object()


def postgres_rows(
    connection: Any, tenant_id: str, batch: int
) -> Generator[tuple[Any, ...], None, None]:
    """The tenant's entries as `CHAIN_COLUMNS` rows in id order (details as stored text, time as
    the hashed text), read in the caller's transaction (a SQLAlchemy connection on psycopg, its
    tenant bound) through a server-side cursor by a reader thread that keeps one batch ahead.

    Closing the generator early (a break was found) stops the reader and closes the cursor.
    """
    driver = connection.connection.driver_connection
    batches: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def read() -> None:
        try:
            with driver.cursor(name="recon_audit_chain") as cursor:
                cursor.execute(_ROWS_SQL, (tenant_id,))
                while not stop.is_set():
                    rows = cursor.fetchmany(batch)
                    if not rows:
                        break
                    batches.put(rows)
            batches.put(_END)
        except BaseException as exc:  # handed to the caller's thread, raised there
            batches.put(exc)

    reader = threading.Thread(target=read, name="audit-chain-reader", daemon=True)
    reader.start()
    try:
        while (rows := batches.get()) is not _END:
            if isinstance(rows, BaseException):
                raise rows
            for row in rows:
                if row[3] is None:  # outside datetime's years: decoding it fails as it always did
                    at = driver.execute(_TIME_SQL, (row[0],)).fetchone()[0]
                    row = (*row[:3], at, *row[4:])
                yield row
    finally:
        stop.set()
        while reader.is_alive():  # let a reader blocked on a full queue finish
            with contextlib.suppress(queue.Empty):
                batches.get(timeout=0.05)
        reader.join()
