"""The fast check of one keyed audit entry, for walks over a whole chain (`recon.audit.verify_rows`).

`FastKeyedCheck(key, key_id, details_text)(row)` is True when the row is a keyed entry (format 2) of the configured key
whose stored hash is the HMAC of its stored previous hash and its canonical payload. It writes the
same bytes as `recon.audit.stored_payload` but with the HMAC's padded key states computed once per
walk (not once per entry), the details read from their stored JSON text with the C scanner and
written with one reused C encoder, and no type checks beyond what the fast path needs. Anything
else (another format or key, an odd type, JSON it cannot read, a mismatch) is False, and the
caller then runs the full check, which decides the verdict and its wording: so a True here is only
ever given for an entry the full check also verifies, and every entry is still checked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
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
    is then a JSON string, never text to parse)."""

    def __init__(self, chain_key: bytes, key_id: str, *, details_text: bool = False) -> None:
        padded = (
            chain_key if len(chain_key) <= _BLOCK else hashlib.sha256(chain_key).digest()
        ).ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
        self._key_id = key_id
        self._text = details_text

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
            if at.tzinfo is None:  # SQLite gives back naive UTC times
                at = at.replace(tzinfo=_UTC)
            message = (
                f'{prev}{{"action":{_quote(action)},"actor":{_quote(actor)},"chain_version":2,'
                f'"details":{"".join(_encode(details, 0))},"entity":{_quote(entity)},'
                f'"entity_id":{_quote(entity_id)},"key_id":{_quote(key_id)},'
                f'"occurred_at":"{at.astimezone(_UTC).isoformat(timespec="microseconds")}",'
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
