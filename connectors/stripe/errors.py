"""Stripe SDK failures as the typed `ProviderError` family of `connectors.http`.

`classify` says why an SDK call failed and whether another attempt is worth it (every call is
a GET; Stripe's `Stripe-Should-Retry` header has the last word); `provider_error` and
`shape_error` build the error a caller sees. Messages never carry the API key.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import stripe

from connectors.http import (
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderUnavailableError,
    parse_retry_after,
)
from connectors.stripe.wire import PROVIDER, StripePageError
from recon.redaction import redact


@dataclass
class Failure:
    """Why one attempt failed, and whether another is worth it."""

    kind: str  # "status" | "transport" | "body"
    reason: str
    status: int | None = None
    retryable: bool = True
    retry_after: float | None = None
    message: str = ""


@dataclass
class Call:
    """One logical GET (its path, request key and endpoint) and the attempts spent on it."""

    path: str
    request_key: str
    endpoint: str
    attempts: int = field(default=0)

    @property
    def shown(self) -> str:
        """The path and query as logged, secrets redacted."""
        return redact(f"{self.path}?{self.request_key}" if self.request_key else self.path)


_TRANSPORT_REASONS = (
    ("ConnectTimeout", "connect timeout"),
    ("ReadTimeout", "read timeout"),
    ("WriteTimeout", "write timeout"),
    ("PoolTimeout", "connection pool timeout"),
    ("ConnectError", "connection failed"),
    ("RemoteProtocolError", "connection closed mid-response"),
    ("ReadError", "connection dropped while reading"),
)


def classify(exc: stripe.StripeError) -> Failure:
    """Why an SDK call failed and whether it is worth another attempt (every call is a GET)."""
    if isinstance(exc, stripe.APIConnectionError):
        cause = exc.__cause__
        if _tls_failure(exc):
            return Failure("transport", "TLS certificate verification failed", retryable=False)
        name = type(cause).__name__ if cause is not None else ""
        reason = next((text for key, text in _TRANSPORT_REASONS if key == name), name or "network")
        return Failure("transport", reason, retryable=True)
    status = exc.http_status
    if status is None:
        return Failure("body", "unusable answer", retryable=False, message=exc.user_message or "")
    if 200 <= status < 300:  # the SDK could not decode the body of a success
        return Failure("body", "invalid JSON body", status=status, retryable=True)
    advice = _header(exc.headers, "stripe-should-retry")
    retryable = status in (409, 429) or status >= 500
    if advice == "true":
        retryable = True
    elif advice == "false":
        retryable = False
    retry_after = (
        parse_retry_after(_header(exc.headers, "retry-after")) if status in (429, 503) else None
    )
    return Failure(
        "status",
        f"HTTP {status}",
        status=status,
        retryable=retryable,
        retry_after=retry_after,
        message=exc.user_message or "",
    )


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value).strip().lower() if name == "stripe-should-retry" else str(value)
    return None


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def shape_error(call: Call, exc: StripePageError) -> ProviderResponseError:
    """The error for an answer that is not the shape Stripe sends."""
    return ProviderResponseError(
        provider=PROVIDER,
        method="GET",
        path=call.path,
        endpoint=call.endpoint,
        status=200,
        detail=str(exc),
        attempts=max(call.attempts, 1),
    )


def provider_error(call: Call, failure: Failure) -> ProviderError:
    """The typed error a caller sees once a call gives up."""
    common: dict[str, Any] = {
        "provider": PROVIDER,
        "method": "GET",
        "path": call.path,
        "endpoint": call.endpoint,
    }
    if failure.kind == "body":
        return ProviderResponseError(
            **common, status=failure.status, detail=failure.reason, attempts=call.attempts
        )
    if failure.status == 429:
        return ProviderRateLimitedError(
            **common, attempts=call.attempts, retry_after=failure.retry_after
        )
    if failure.status is not None and 400 <= failure.status < 500 and failure.status != 409:
        return ProviderRejectedError(
            **common,
            status=failure.status,
            provider_message=failure.message,
            attempts=call.attempts,
        )
    return ProviderUnavailableError(
        **common, attempts=call.attempts, status=failure.status, reason=failure.reason
    )
