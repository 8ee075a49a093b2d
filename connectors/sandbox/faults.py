"""Fault injection for sandbox route groups, and the request log tests read.

A `FaultPlan` holds rules, each matching requests by path pattern (`fnmatch` style), method and
optionally request parameters (query string and form fields, e.g. WHMCS's `action`), and firing for
a number of requests (`count`), with a probability (`rate`, from a seeded generator) or both, after
skipping the first `skip` matches. A rule answers with one fault:

* `status(code)`: an error status (500, 502, 503, 4xx ...) with a JSON body; with `after=True` the
  request is processed first, so the client cannot know whether it took effect;
* `rate_limit(retry_after)`: 429 with a `Retry-After` header (seconds or an HTTP-date);
* `slow(delay)` / `timeout(delay)`: wait, then answer normally (a timeout is a delay longer than
  the client's read timeout; the request is still processed, as a real server would);
* `truncate(keep)`: the real answer with its JSON body cut to a fraction of its bytes;
* `reset()`: the real answer's headers, then half the body and a closed connection;
* `malform(mutate, records=...)`: the real answer with `mutate` applied to records of its JSON body.

Route groups use it by wrapping their endpoints: `plan.wrap(endpoint, label=...)` or
`plan.wrap_routes(routes)`. Every request is logged (method, path, label, status, fault, time),
never headers or bodies. Thread-safe.
"""

from __future__ import annotations

import asyncio
import fnmatch
import inspect
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Labeller = Callable[[Request], Awaitable[str]]
Mutator = Callable[[dict[str, Any]], None]

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class FaultKind(StrEnum):
    """What a rule does to the requests it matches."""

    STATUS = "status"
    RATE_LIMIT = "rate_limit"
    SLOW = "slow"
    TIMEOUT = "timeout"
    TRUNCATE = "truncate"
    RESET = "reset"
    MALFORM = "malform"


@dataclass
class FaultRule:
    """One fault and the requests it applies to; `fired` counts the requests it answered."""

    kind: FaultKind
    path: str = "*"
    method: str | None = None
    params: Mapping[str, str] | None = None
    count: int | None = None
    rate: float | None = None
    skip: int = 0
    status: int = 500
    body: Any = None
    retry_after: str | None = None
    delay: float = 0.0
    keep: float = 0.5
    mutate: Mutator | None = None
    records: tuple[str, ...] = ()
    limit: int = 1
    after: bool = False
    matched: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def matches(self, method: str, path: str, params: Mapping[str, str]) -> bool:
        """Whether the request is one this rule is about (before count, rate and skip)."""
        if self.method is not None and self.method.upper() != method:
            return False
        if not fnmatch.fnmatchcase(path, self.path):
            return False
        return all(params.get(k) == v for k, v in (self.params or {}).items())

    @property
    def exhausted(self) -> bool:
        """True once the rule has fired `count` times."""
        return self.count is not None and self.fired >= self.count


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox answered. Headers and bodies are not kept: they carry credentials."""

    method: str
    path: str
    status: int
    at: float
    label: str = ""
    fault: str | None = None


class FaultPlan:
    """Thread-safe fault rules plus the log of every request the wrapped endpoints answered."""

    def __init__(self, *, seed: int = 0, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._log: list[RequestRecord] = []
        self._random = random.Random(seed)  # noqa: S311 - reproducible fault schedules
        self._clock = clock

    # -- rules ---------------------------------------------------------------------------------

    def add(self, rule: FaultRule) -> FaultRule:
        """Append a rule; earlier rules win when several match one request."""
        if rule.count is not None and rule.count < 0:
            raise ValueError("count must not be negative")
        if rule.rate is not None and not 0.0 <= rule.rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._rules.append(rule)
        return rule

    def status(
        self, status: int, *, body: Any = None, after: bool = False, **match: Any
    ) -> FaultRule:
        """Answer with `status` (and `body`, default `{"error": ...}`); `after`: process first."""
        return self.add(FaultRule(FaultKind.STATUS, status=status, body=body, after=after, **match))

    def rate_limit(self, retry_after: str | int | None = 1, **match: Any) -> FaultRule:
        """Answer 429 with `Retry-After` (seconds or an HTTP-date; None: no header)."""
        value = None if retry_after is None else str(retry_after)
        return self.add(FaultRule(FaultKind.RATE_LIMIT, status=429, retry_after=value, **match))

    def slow(self, delay: float, **match: Any) -> FaultRule:
        """Wait `delay` seconds, then answer normally."""
        return self.add(FaultRule(FaultKind.SLOW, delay=delay, **match))

    def timeout(self, delay: float, **match: Any) -> FaultRule:
        """Wait `delay` seconds (longer than the client's read timeout), then process and answer."""
        return self.add(FaultRule(FaultKind.TIMEOUT, delay=delay, **match))

    def truncate(self, keep: float = 0.5, **match: Any) -> FaultRule:
        """Answer normally but with only the first `keep` fraction of the body's bytes."""
        if not 0.0 <= keep < 1.0:
            raise ValueError("keep must be in [0, 1)")
        return self.add(FaultRule(FaultKind.TRUNCATE, keep=keep, **match))

    def reset(self, **match: Any) -> FaultRule:
        """Send the headers and half the body, then close the connection."""
        return self.add(FaultRule(FaultKind.RESET, **match))

    def malform(
        self, mutate: Mutator, *, records: Sequence[str] = (), limit: int = 1, **match: Any
    ) -> FaultRule:
        """Apply `mutate` to the first `limit` records of the JSON list at key path `records`.

        With `records=()` the whole JSON object is passed to `mutate` once.
        """
        return self.add(
            FaultRule(
                FaultKind.MALFORM, mutate=mutate, records=tuple(records), limit=limit, **match
            )
        )

    def clear(self) -> None:
        """Drop every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        """The current rules (live objects: `fired` keeps counting)."""
        with self._lock:
            return list(self._rules)

    def take(self, method: str, path: str, params: Mapping[str, str]) -> FaultRule | None:
        """The rule that answers this request, if any, counting the use."""
        with self._lock:
            for rule in self._rules:
                if rule.exhausted or not rule.matches(method, path, params):
                    continue
                rule.matched += 1
                if rule.matched <= rule.skip:
                    continue
                if rule.rate is not None and self._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                return rule
            return None

    # -- the log -------------------------------------------------------------------------------

    def record(self, record: RequestRecord) -> None:
        """Append to the request log."""
        with self._lock:
            self._log.append(record)

    def requests(self) -> list[RequestRecord]:
        """Every request answered so far, oldest first."""
        with self._lock:
            return list(self._log)

    def count(
        self,
        *,
        path: str | None = None,
        method: str | None = None,
        label: str | None = None,
        status: int | None = None,
    ) -> int:
        """How many logged requests match every given field (`path` is an fnmatch pattern)."""
        with self._lock:
            return sum(
                1
                for r in self._log
                if (path is None or fnmatch.fnmatchcase(r.path, path))
                and (method is None or r.method == method.upper())
                and (label is None or r.label == label)
                and (status is None or r.status == status)
            )

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self._lock:
            self._log.clear()

    # -- wiring --------------------------------------------------------------------------------

    def wrap(self, endpoint: Endpoint, *, label: Labeller | None = None) -> Endpoint:
        """`endpoint` with this plan's faults applied and every answer logged."""

        async def faulty(request: Request) -> Response:
            params = await _params(request)
            tag = await label(request) if label is not None else ""
            rule = self.take(request.method, request.url.path, params)
            response = await _answer(rule, endpoint, request)
            self.record(
                RequestRecord(
                    method=request.method,
                    path=request.url.path,
                    status=response.status_code,
                    at=self._clock(),
                    label=tag,
                    fault=None if rule is None else str(rule.kind),
                )
            )
            return response

        return faulty

    def wrap_routes(self, routes: Iterable[BaseRoute]) -> list[BaseRoute]:
        """The routes with every plain `Route` endpoint wrapped by `wrap` (others unchanged)."""
        wrapped: list[BaseRoute] = []
        for route in routes:
            if isinstance(route, Route) and inspect.iscoroutinefunction(route.endpoint):
                wrapped.append(
                    Route(
                        route.path,
                        self.wrap(route.endpoint),
                        methods=sorted(route.methods or ()) or None,
                        name=route.name,
                    )
                )
            else:
                wrapped.append(route)
        return wrapped


async def _params(request: Request) -> dict[str, str]:
    params = dict(request.query_params)
    if request.method in ("POST", "PUT", "PATCH") and request.headers.get(
        "content-type", ""
    ).startswith(_FORM_TYPES):
        await request.body()  # cached, so the endpoint can still read the body or the form
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


async def _answer(rule: FaultRule | None, endpoint: Endpoint, request: Request) -> Response:
    if rule is None:
        return await endpoint(request)
    kind = rule.kind
    if kind in (FaultKind.SLOW, FaultKind.TIMEOUT):
        await asyncio.sleep(rule.delay)
        return await endpoint(request)
    if kind in (FaultKind.STATUS, FaultKind.RATE_LIMIT):
        if rule.after:
            await endpoint(request)
        if rule.delay:
            await asyncio.sleep(rule.delay)
        return _error_response(rule)
    response = await endpoint(request)
    body = bytes(response.body)
    if kind is FaultKind.TRUNCATE:
        return _copy(response, body[: int(len(body) * rule.keep)])
    if kind is FaultKind.RESET:
        return _ResetResponse(body, response)
    return _copy(response, _malformed(body, rule))


def _error_response(rule: FaultRule) -> Response:
    headers = {"Retry-After": rule.retry_after} if rule.retry_after is not None else None
    if isinstance(rule.body, bytes | str):
        return Response(rule.body, rule.status, headers, media_type="application/json")
    body = rule.body if rule.body is not None else {"error": _phrase(rule.status)}
    return JSONResponse(body, rule.status, headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _copy(response: Response, body: bytes) -> Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(body, response.status_code, headers)


def _malformed(body: bytes, rule: FaultRule) -> bytes:
    assert rule.mutate is not None
    document = json.loads(body)
    if not rule.records:
        rule.mutate(document)
        return json.dumps(document).encode()
    target: Any = document
    for key in rule.records:
        target = target[key] if isinstance(target, dict) else target[int(key)]
    if isinstance(target, list):
        for record in target[: rule.limit]:
            if isinstance(record, dict):
                rule.mutate(record)
    return json.dumps(document).encode()


class _ResetResponse(Response):
    """Announces the full body length, sends half of it, then ends the response."""

    def __init__(self, body: bytes, original: Response) -> None:
        super().__init__(body, original.status_code)
        self._original_headers = original.headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in self._original_headers.items()
            if k.lower() != "content-length"
        ]
        headers.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
        # more_body=True, then nothing: the server closes the connection mid-body
        await send(
            {
                "type": "http.response.body",
                "body": self.body[: len(self.body) // 2],
                "more_body": True,
            }
        )
