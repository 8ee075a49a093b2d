"""Webhook signature checks, written out rather than delegated, so their rules are explicit.

Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, HMAC-SHA256 over `"<t>.<body>"`;
accepted when any `v1` matches and `t` is within the tolerance in BOTH directions (the SDK only
rejects old timestamps). GoCardless: `Webhook-Signature: <hex>`, HMAC-SHA256 over the raw body;
GoCardless sends no timestamp, so replays are stopped by event-id deduplication instead.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Sequence

STRIPE_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not signed by the provider; the message says why (no secret in it)."""


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def stripe_signature_header(body: bytes, secret: str, timestamp: int) -> str:
    """The header Stripe would send for `body` (used by tests and the sandbox)."""
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={_hmac_hex(secret, signed)}"


def verify_stripe(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance: int = STRIPE_TOLERANCE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> int:
    """Check a Stripe signature against any of `secrets`; returns the signed timestamp."""
    if tolerance <= 0:
        raise ValueError("a Stripe signature tolerance must be positive")
    if not secrets:
        raise ValueError("no webhook secret to verify with")
    if not header:
        raise SignatureError("missing Stripe-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("the Stripe-Signature timestamp is not a number") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None:
        raise SignatureError("unable to extract the timestamp from the Stripe-Signature header")
    if not candidates:
        raise SignatureError("no signature with the expected scheme v1")
    signed = f"{timestamp}.".encode() + body
    expected = [_hmac_hex(secret, signed) for secret in secrets]
    if not any(hmac.compare_digest(e, c) for e in expected for c in candidates):
        raise SignatureError("no signature matches the payload")
    skew = clock() - timestamp
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "far in the future"
        raise SignatureError(f"the signed timestamp is too {direction} ({int(skew)} s)")
    return timestamp


def gocardless_signature(body: bytes, secret: str) -> str:
    """The `Webhook-Signature` GoCardless would send for `body`."""
    return _hmac_hex(secret, body)


def verify_gocardless(body: bytes, header: str | None, secrets: Sequence[str]) -> None:
    """Check a GoCardless signature against any of `secrets`."""
    if not secrets:
        raise ValueError("no webhook secret to verify with")
    if not header:
        raise SignatureError("missing Webhook-Signature header")
    given = header.strip().lower()
    if not any(hmac.compare_digest(gocardless_signature(body, s), given) for s in secrets):
        raise SignatureError("the signature does not match the payload")
