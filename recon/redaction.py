"""Masking of secret values in any text that leaves the process (logs, errors, exports).

The secrets layer registers every value it resolves; `redact` replaces each registered value, and
the credential shapes that turn up in HTTP logs (Authorization headers, tokens in URLs, passwords in
connection strings), with `***`.
"""

from __future__ import annotations

import re
import threading

MASK = "***"
_MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

_CREDENTIAL_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xyz / Basic xyz, X-Vault-Token: xyz, Stripe-style keys in headers
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization|x-vault-token|api-key|x-api-key)"
            r"(['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic|token)\s+)?[^\s'\",}]+"
        ),
        rf"\1\2\3 {MASK}",
    ),
    # ?token=...&secret=... in URLs and form bodies
    (
        re.compile(
            r"(?i)([?&;](?:access_token|refresh_token|token|secret|secret_id|secret_key|"
            r"api_key|apikey|key|password|passwd|signature|sig|identifier|accesskey)=)[^&\s'\"#]+"
        ),
        rf"\1{MASK}",
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s/]+@"), rf"\1{MASK}@"),
    # Stripe secret and restricted keys, webhook secrets
    (re.compile(r"\b(sk|rk|whsec)_(live|test)?_?[A-Za-z0-9]{8,}\b"), MASK),
)


def register_secret(value: str | None) -> None:
    """Remember a resolved secret so that `redact` masks it from now on."""
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    global _pattern
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def forget_all_secrets() -> None:
    """Drop every registered value (tests only)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def redact(text: str) -> str:
    """Mask registered secret values and credential shapes in `text`."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for shape, replacement in _CREDENTIAL_SHAPES:
        text = shape.sub(replacement, text)
    return text
