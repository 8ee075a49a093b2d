"""The one HTTP policy every connector uses: timeouts, bounded jittered retries, redacted logs.

`PolicyClient.request` sends a request and retries what is worth retrying, within `HttpPolicy`'s
attempt limit and retry-time budget:

* connect failures, connect/pool timeouts and 429 always (the provider did not act on them);
* read/write timeouts, dropped connections, 500/502/503/504 and a 2xx whose JSON body is cut or
  invalid only when the call is idempotent (by default GET/HEAD/OPTIONS/PUT/DELETE are, POST is not;
  callers say `idempotent=True` for read-only POSTs such as WHMCS API reads);
* never any other 4xx, and never a TLS certificate failure.

Waits are exponential with full jitter, or the provider's `Retry-After` (seconds or HTTP-date) when
it sends one. Every loop ends in a `ProviderError` subclass whose message is one sentence naming the
provider, the method and the redacted path, never a credential. Every attempt is logged on
`recon.http` with method, redacted URL, status and duration; never headers or bodies.
TLS verification is always on: `ca_cert` only chooses which CA to trust.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random as _random
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import httpx

from connectors.closing import Closing
from recon.errors import ReconError
from recon.redaction import MASK, redact

logger = logging.getLogger("recon.http")

MAX_ATTEMPTS_LIMIT = 5
"""No policy may try one call more often than this (reliability goal G4)."""

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
SECRET_QUERY_PARAMS = frozenset(
    {
        "access_token",
        "accesskey",
        "api_key",
        "apikey",
        "client_secret",
        "code",
        "identifier",
        "key",
        "passwd",
        "password",
        "refresh_token",
        "secret",
        "secret_id",
        "secret_key",
        "secret_token",
        "sig",
        "signature",
        "token",
        "username",
    }
)
"""Query parameters whose values are masked in every logged or raised URL."""

_MESSAGE_LIMIT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


# -- errors ----------------------------------------------------------------------------------------


class ProviderError(ReconError):
    """A provider call failed; the message names provider, method and path, never a credential."""

    exit_code = 9

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        method: str,
        path: str,
        endpoint: str | None = None,
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(redact(message))
        self.provider = provider
        self.method = method
        self.path = path
        self.endpoint = endpoint
        self.status = status
        self.attempts = attempts


def _what(method: str, path: str, endpoint: str | None) -> str:
    return f"{method} {path}" + (f" ({endpoint})" if endpoint and endpoint != path else "")


def _plural(attempts: int) -> str:
    return f"{attempts} attempt" + ("" if attempts == 1 else "s")


class ProviderUnavailableError(ProviderError):
    """The provider did not answer usefully within the policy's attempts and budget."""

    def __init__(
        self,
        *,
        provider: str,
        method: str,
        path: str,
        endpoint: str | None = None,
        attempts: int,
        status: int | None,
        reason: str,
        outcome_unknown: bool = False,
    ) -> None:
        last = f"HTTP {status}" if status is not None else reason
        advice = (
            "the request may have been applied, so check its effect before sending it again"
            if outcome_unknown
            else f"try again later or check that {provider} is reachable"
        )
        super().__init__(
            f"{provider} did not answer {_what(method, path, endpoint)} successfully after "
            f"{_plural(attempts)} (last: {last}); {advice}.",
            provider=provider,
            method=method,
            path=path,
            endpoint=endpoint,
            status=status,
            attempts=attempts,
        )
        self.reason = reason
        self.outcome_unknown = outcome_unknown


class ProviderRejectedError(ProviderError):
    """The provider refused the request (a 4xx other than 429, or an error body); never retried."""

    def __init__(
        self,
        *,
        provider: str,
        method: str,
        path: str,
        endpoint: str | None = None,
        status: int,
        provider_message: str,
        attempts: int = 1,
    ) -> None:
        self.provider_message = clean_message(provider_message) or "no message"
        super().__init__(
            f"{provider} rejected {_what(method, path, endpoint)} with HTTP {status}: "
            f"{self.provider_message}; fix the request, credentials or access and try again.",
            provider=provider,
            method=method,
            path=path,
            endpoint=endpoint,
            status=status,
            attempts=attempts,
        )


class ProviderRateLimitedError(ProviderError):
    """The provider kept answering 429, or asked to wait longer than the retry budget allows."""

    def __init__(
        self,
        *,
        provider: str,
        method: str,
        path: str,
        endpoint: str | None = None,
        attempts: int,
        retry_after: float | None,
    ) -> None:
        wait = f"; it asked to wait {retry_after:.0f} s" if retry_after is not None else ""
        super().__init__(
            f"{provider} rate-limited {_what(method, path, endpoint)} after "
            f"{_plural(attempts)}{wait}; try again later.",
            provider=provider,
            method=method,
            path=path,
            endpoint=endpoint,
            status=429,
            attempts=attempts,
        )
        self.retry_after = retry_after


class ProviderResponseError(ProviderError):
    """The provider answered with a body that cannot be parsed or has an unexpected shape."""

    def __init__(
        self,
        *,
        provider: str,
        method: str,
        path: str,
        endpoint: str | None = None,
        status: int | None,
        detail: str,
        attempts: int = 1,
    ) -> None:
        super().__init__(
            f"{provider} sent an unusable response to {_what(method, path, endpoint)} "
            f"(HTTP {status}) after {_plural(attempts)}: {clean_message(detail)}.",
            provider=provider,
            method=method,
            path=path,
            endpoint=endpoint,
            status=status,
            attempts=attempts,
        )


def clean_message(text: str) -> str:
    """A provider's message made safe to show: redacted, one line, at most 300 characters."""
    one_line = _CONTROL.sub(" ", redact(str(text))).strip()
    return one_line if len(one_line) <= _MESSAGE_LIMIT else one_line[: _MESSAGE_LIMIT - 1] + "…"


# -- policy ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retry limits of one provider's calls; `sleep`/`random`/`clock` for tests.

    The retry budget bounds the time from the first attempt until the last retry starts: a wait
    (backoff or `Retry-After`) that would cross it is not taken and the call fails instead.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    retry_budget: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= MAX_ATTEMPTS_LIMIT:
            raise ValueError(f"max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.backoff_base <= 0 or self.backoff_cap < self.backoff_base:
            raise ValueError("backoff needs 0 < backoff_base <= backoff_cap")
        if self.retry_budget < 0:
            raise ValueError("retry_budget must not be negative")

    def backoff(self, retry: int) -> float:
        """Full-jitter wait before retry number `retry` (1 = the first retry)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** (retry - 1))
        return ceiling * min(max(self.random(), 0.0), 1.0)

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout: connect and pool use `connect_timeout`, read and write `read_timeout`."""
        return httpx.Timeout(
            connect=self.connect_timeout,
            read=self.read_timeout,
            write=self.read_timeout,
            pool=self.connect_timeout,
        )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def redact_url(url: str | httpx.URL) -> str:
    """The URL with user-info dropped, secret query values masked and registered secrets redacted."""
    parts = urlsplit(str(url))
    netloc = parts.netloc.rpartition("@")[2]
    query = "&".join(
        f"{quote(k, safe='')}={MASK if k.lower() in SECRET_QUERY_PARAMS else quote(v, safe='')}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, "")))


class _HttpxUrlFilter(logging.Filter):
    """httpx logs every request's full URL at INFO; mask it the way `redact_url` does."""

    _URL = re.compile(r"https?://[^\s\"'<>]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = self._URL.sub(lambda m: redact_url(m.group(0)), message)
        record.args = None
        return True


def _guard_httpx_logger() -> None:
    httpx_logger = logging.getLogger("httpx")
    if not any(isinstance(f, _HttpxUrlFilter) for f in httpx_logger.filters):
        httpx_logger.addFilter(_HttpxUrlFilter())


_guard_httpx_logger()


# -- client ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallInfo:
    """What hooks learn about one attempt: no headers, no body, a redacted URL."""

    provider: str
    endpoint: str
    method: str
    url: str
    attempt: int


BeforeRequest = Callable[[CallInfo], None]
"""Called before every attempt; raising stops the call (e.g. a per-account daily quota)."""

AfterResponse = Callable[[CallInfo, int], None]
"""Called with the HTTP status after every attempt that got an answer."""


@dataclass
class _Failure:
    """Why the last attempt did not succeed."""

    kind: str  # "status" | "transport" | "body"
    reason: str
    status: int | None = None
    retry_after: float | None = None
    retryable: bool = True
    outcome_unknown: bool = False
    response: httpx.Response | None = None


class PolicyClient(Closing):
    """An `httpx.Client` that applies an `HttpPolicy` to every call; a context manager."""

    def __init__(
        self,
        provider: str,
        policy: HttpPolicy | None = None,
        *,
        base_url: str = "",
        headers: Mapping[str, str] | None = None,
        ca_cert: str | None = None,
        before_request: BeforeRequest | None = None,
        after_response: AfterResponse | None = None,
    ) -> None:
        self.provider = provider
        self.policy = policy or HttpPolicy()
        self.before_request = before_request
        self.after_response = after_response
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=ca_cert) if ca_cert else True
        )
        self._client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            timeout=self.policy.timeout(),
            verify=verify,
            follow_redirects=False,
        )
        self._lock = threading.Lock()
        self._calls: Counter[tuple[str, str]] = Counter()

    # -- counters ------------------------------------------------------------------------------

    def call_counts(self) -> dict[tuple[str, str], int]:
        """Attempts sent so far per (provider, endpoint)."""
        with self._lock:
            return dict(self._calls)

    # -- the call ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        expect_json: bool = False,
        endpoint: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; return a 2xx/3xx response or raise a `ProviderError` subclass.

        `expect_json` makes an unparseable 2xx body a failure (retried only when idempotent).
        `endpoint` labels the call in logs, counters and errors (default: the URL path).
        Extra keyword arguments (`params`, `data`, `json`, `headers`, ...) go to httpx.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        request = self._client.build_request(method, url, **kwargs)
        shown_url = redact_url(request.url)
        path = redact(request.url.path) or "/"
        label = endpoint or path
        policy = self.policy
        started = policy.clock()
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            info = CallInfo(self.provider, label, method, shown_url, attempt)
            if self.before_request is not None:
                self.before_request(info)
            with self._lock:
                self._calls[(self.provider, label)] += 1
            response, failure = self._attempt(
                request, info, idempotent=idempotent, expect_json=expect_json
            )
            if failure is None:
                assert response is not None
                return response
            if not failure.retryable or attempt >= policy.max_attempts:
                raise self._error(failure, info, path)
            delay = (
                failure.retry_after if failure.retry_after is not None else policy.backoff(attempt)
            )
            spent = max(policy.clock() - started, waited)
            if spent + delay > policy.retry_budget:
                logger.warning(
                    "%s %s %s: giving up after %s, the next wait of %.2f s would exceed the "
                    "retry budget of %.1f s",
                    self.provider,
                    method,
                    shown_url,
                    _plural(attempt),
                    delay,
                    policy.retry_budget,
                )
                raise self._error(failure, info, path)
            logger.warning(
                "%s %s %s: %s; retry %d/%d in %.2f s",
                self.provider,
                method,
                shown_url,
                failure.reason,
                attempt,
                policy.max_attempts - 1,
                delay,
            )
            policy.sleep(delay)
            waited += delay

    def _attempt(
        self, request: httpx.Request, info: CallInfo, *, idempotent: bool, expect_json: bool
    ) -> tuple[httpx.Response | None, _Failure | None]:
        """Send once: the response, and why it is not a success (None when it is)."""
        began = time.perf_counter()
        try:
            response = self._client.send(request)
        except httpx.HTTPError as exc:
            failure = _transport_failure(exc, idempotent=idempotent)
            self._log(info, failure.reason, began)
            return None, failure
        return response, self._judge(response, info, began, idempotent, expect_json)

    def _judge(
        self,
        response: httpx.Response,
        info: CallInfo,
        began: float,
        idempotent: bool,
        expect_json: bool,
    ) -> _Failure | None:
        self._log(info, str(response.status_code), began)
        if self.after_response is not None:
            self.after_response(info, response.status_code)
        status = response.status_code
        if status in RETRYABLE_STATUSES:
            retry_after = (
                parse_retry_after(response.headers.get("retry-after"))
                if status in (429, 503)
                else None
            )
            return _Failure(
                kind="status",
                reason=f"HTTP {status}",
                status=status,
                retry_after=retry_after,
                retryable=status == 429 or idempotent,
                outcome_unknown=status != 429 and not idempotent,
                response=response,
            )
        if status >= 400:
            return _Failure(
                kind="status",
                reason=f"HTTP {status}",
                status=status,
                retryable=False,
                response=response,
            )
        if expect_json and 200 <= status < 300:
            try:
                json.loads(response.content)
            except ValueError as exc:
                return _Failure(
                    kind="body",
                    reason=f"invalid JSON body ({type(exc).__name__} at byte "
                    f"{getattr(exc, 'pos', '?')} of {len(response.content)})",
                    status=status,
                    retryable=idempotent,
                    outcome_unknown=not idempotent,
                    response=response,
                )
        return None

    def _log(self, info: CallInfo, outcome: str, began: float) -> None:
        logger.info(
            "%s %s %s -> %s in %d ms (%s, attempt %d/%d)",
            info.provider,
            info.method,
            info.url,
            outcome,
            round((time.perf_counter() - began) * 1000),
            info.endpoint,
            info.attempt,
            self.policy.max_attempts,
        )

    def _error(self, failure: _Failure, info: CallInfo, path: str) -> ProviderError:
        common: dict[str, Any] = {
            "provider": self.provider,
            "method": info.method,
            "path": path,
            "endpoint": info.endpoint,
        }
        if failure.kind == "body":
            return ProviderResponseError(
                **common, status=failure.status, detail=failure.reason, attempts=info.attempt
            )
        if failure.status == 429:
            return ProviderRateLimitedError(
                **common, attempts=info.attempt, retry_after=failure.retry_after
            )
        if failure.status is not None and failure.status not in RETRYABLE_STATUSES:
            assert failure.response is not None
            return ProviderRejectedError(
                **common,
                status=failure.status,
                provider_message=provider_message(failure.response),
                attempts=info.attempt,
            )
        return ProviderUnavailableError(
            **common,
            attempts=info.attempt,
            status=failure.status,
            reason=failure.reason,
            outcome_unknown=failure.outcome_unknown,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


# -- helpers ---------------------------------------------------------------------------------------

_NOT_SENT = (httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ConnectError)
_MAYBE_SENT = (
    httpx.ReadTimeout,
    httpx.WriteTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.CloseError,
)
_REASONS: dict[type[httpx.HTTPError], str] = {
    httpx.ConnectTimeout: "connect timeout",
    httpx.PoolTimeout: "connection pool timeout",
    httpx.ConnectError: "connection failed",
    httpx.ReadTimeout: "read timeout",
    httpx.WriteTimeout: "write timeout",
    httpx.ReadError: "connection dropped while reading",
    httpx.WriteError: "connection dropped while writing",
    httpx.RemoteProtocolError: "connection closed mid-response",
    httpx.CloseError: "connection close failed",
    httpx.DecodingError: "undecodable body",
}


def _transport_failure(exc: httpx.HTTPError, *, idempotent: bool) -> _Failure:
    reason = next((r for t, r in _REASONS.items() if isinstance(exc, t)), type(exc).__name__)
    if _tls_verification_failed(exc):
        return _Failure("transport", "TLS certificate verification failed", retryable=False)
    if isinstance(exc, _NOT_SENT):
        return _Failure("transport", reason)
    if isinstance(exc, _MAYBE_SENT):
        return _Failure("transport", reason, retryable=idempotent, outcome_unknown=not idempotent)
    if isinstance(exc, httpx.DecodingError):
        return _Failure("body", reason, retryable=idempotent, outcome_unknown=not idempotent)
    return _Failure("transport", reason, retryable=False)


def _tls_verification_failed(exc: BaseException) -> bool:
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


def provider_message(response: httpx.Response) -> str:
    """The provider's own error text from a JSON error body (or a short text body), cleaned."""
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        text = response.content[:_MESSAGE_LIMIT].decode("utf-8", "replace")
        return clean_message(text) or response.reason_phrase
    return clean_message(_message_from(body)) or response.reason_phrase


def _message_from(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        return "; ".join(_message_from(item) for item in body[:3])
    if not isinstance(body, dict):
        return ""
    for key in ("message", "detail", "summary", "error_description", "error", "errors"):
        value = body.get(key)
        if value:
            return _message_from(value)
    return ""
