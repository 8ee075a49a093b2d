"""A fake HashiCorp Vault: KV v2, AppRole login and token lookup/renewal, on Vault's wire format.

`VaultState` keeps tokens, AppRoles and secrets in memory behind one lock, on a clock that tests can
advance. `routes(state)` serves it under Vault's real `/v1/...` paths, so hvac talks to it unchanged.
Tokens are random per run; tests seed their own with `add_token`/`add_approle` when they need to
know them. Every answer is logged (method, path, status; never headers or bodies) and tests can make
the next requests fail with `inject_fault`.
"""

from __future__ import annotations

import asyncio
import http
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

JSON = dict[str, Any]
SYSTEM_MAX_TTL = 32 * 24 * 3600
"""Vault's default maximum lease TTL (768h); every token TTL is capped by it."""

_DEFAULT_ERRORS = {
    403: "permission denied",
    429: "rate limit quota exceeded",
    500: "internal error",
    503: "Vault is sealed",
}
_DURATION_PART = re.compile(r"(\d+)([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class VaultAPIError(Exception):
    """An error answer: an HTTP status and Vault's `errors` list."""

    def __init__(self, status: int, *errors: str) -> None:
        super().__init__(status, *errors)
        self.status = status
        self.errors = list(errors)


def _denied() -> VaultAPIError:
    return VaultAPIError(403, "permission denied")


@dataclass(frozen=True)
class RequestRecord:
    """One request the sandbox answered. Headers and bodies are not kept: they carry credentials."""

    method: str
    path: str
    status: int
    at: float


@dataclass(frozen=True)
class AppRoleCredentials:
    """The role_id and secret_id of a seeded AppRole."""

    role_id: str = field(repr=False)
    secret_id: str = field(repr=False)


@dataclass
class _Token:
    accessor: str
    policies: tuple[str, ...]
    path: str
    display_name: str
    meta: dict[str, str] | None
    created_at: float
    ttl: int  # creation TTL and default renewal increment; 0 = never expires
    max_ttl: int  # effective max TTL counted from creation; 0 when ttl is 0
    renewable: bool
    expires_at: float | None


@dataclass
class _Role:
    name: str
    policies: tuple[str, ...]
    token_ttl: int
    token_max_ttl: int


@dataclass
class _SecretId:
    role_id: str
    uses_left: int | None
    expires_at: float | None


@dataclass
class _Version:
    data: dict[str, Any]
    created_time: str


@dataclass
class Fault:
    """A canned answer for the next `remaining` requests whose path starts with `path_prefix`."""

    status: int
    remaining: int
    path_prefix: str | None = None
    body: str | None = None
    delay: float = 0.0


def _new_token() -> str:
    return "hvs." + secrets.token_urlsafe(24)


class VaultState:
    """In-memory Vault: tokens, AppRoles, KV v2 secrets, faults and a request log. Thread-safe."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        mounts: Sequence[str] = ("secret",),
        token_factory: Callable[[], str] = _new_token,
        system_max_ttl: int = SYSTEM_MAX_TTL,
    ) -> None:
        self.mounts = tuple(mounts)
        self.system_max_ttl = system_max_ttl
        self.cluster_id = str(uuid.uuid4())
        self._clock = clock
        self._offset = 0.0
        self._token_factory = token_factory
        self._lock = threading.RLock()
        self._tokens: dict[str, _Token] = {}
        self._roles: dict[str, _Role] = {}
        self._secret_ids: dict[str, _SecretId] = {}
        self._kv: dict[tuple[str, str], list[_Version]] = {}
        self._faults: list[Fault] = []
        self._log: list[RequestRecord] = []

    # -- clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The sandbox's time in seconds: the injected clock plus every `advance`."""
        with self._lock:
            return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the sandbox's time forward, e.g. to expire tokens."""
        with self._lock:
            self._offset += seconds

    # -- seeding -------------------------------------------------------------------------------

    def add_token(
        self,
        token: str | None = None,
        *,
        ttl: int = 3600,
        max_ttl: int = 0,
        renewable: bool = True,
        policies: Sequence[str] = ("default",),
    ) -> str:
        """Create a token (`ttl=0`: never expires and is not renewable, like a root token)."""
        with self._lock:
            return self._issue(
                token=token,
                ttl=ttl,
                max_ttl=max_ttl,
                renewable=renewable and ttl > 0,
                policies=tuple(policies),
                path="auth/token/create",
                display_name="token",
                meta=None,
            )

    def add_approle(
        self,
        name: str = "recon",
        *,
        role_id: str | None = None,
        secret_id: str | None = None,
        policies: Sequence[str] = ("default",),
        token_ttl: int = 3600,
        token_max_ttl: int = 0,
        secret_id_num_uses: int = 0,
        secret_id_ttl: int = 0,
    ) -> AppRoleCredentials:
        """Create an AppRole and one secret_id for it (`0` uses or TTL: unlimited)."""
        with self._lock:
            role_id = role_id or str(uuid.uuid4())
            secret_id = secret_id or str(uuid.uuid4())
            self._roles[role_id] = _Role(name, tuple(policies), token_ttl, token_max_ttl)
            self._secret_ids[secret_id] = _SecretId(
                role_id=role_id,
                uses_left=secret_id_num_uses or None,
                expires_at=self.now() + secret_id_ttl if secret_id_ttl else None,
            )
            return AppRoleCredentials(role_id, secret_id)

    def put_secret(self, path: str, data: Mapping[str, Any], *, mount: str = "secret") -> int:
        """Write a new version of a KV v2 secret; returns its version number."""
        with self._lock:
            return self._append_version(mount, path, dict(data))

    def revoke_token(self, token: str) -> None:
        """Revoke a token, as `vault token revoke` would."""
        with self._lock:
            self._tokens.pop(token, None)

    # -- faults and the request log ------------------------------------------------------------

    def inject_fault(
        self,
        status: int,
        *,
        count: int = 1,
        path_prefix: str | None = None,
        body: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `count` matching requests with `status` (and `body`, after `delay` s).

        Without `body` the answer is Vault's JSON error for that status, e.g. 503 "Vault is sealed".
        """
        with self._lock:
            self._faults.append(Fault(status, count, path_prefix, body, delay))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        with self._lock:
            self._faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        """Consume one use of the first pending fault matching `path` (used by the routes)."""
        with self._lock:
            for fault in self._faults:
                if fault.path_prefix is None or path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def record(self, method: str, path: str, status: int) -> None:
        """Append a request to the log (used by the routes)."""
        with self._lock:
            self._log.append(RequestRecord(method, path, status, self.now()))

    def request_log(self) -> list[RequestRecord]:
        """A copy of every request answered so far, oldest first."""
        with self._lock:
            return list(self._log)

    def count(self, path: str, method: str | None = None) -> int:
        """How many requests hit `path` (optionally with `method`)."""
        with self._lock:
            return sum(
                1 for r in self._log if r.path == path and (method is None or r.method == method)
            )

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self._lock:
            self._log.clear()

    # -- the API -------------------------------------------------------------------------------

    def health(self) -> JSON:
        """`GET /v1/sys/health` of an initialised, unsealed, active node."""
        return {
            "initialized": True,
            "sealed": False,
            "standby": False,
            "performance_standby": False,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": int(self.now()),
            "version": "1.17.0+sandbox",
            "cluster_name": "vault-sandbox",
            "cluster_id": self.cluster_id,
        }

    def approle_login(self, body: Mapping[str, Any]) -> JSON:
        """`POST /v1/auth/approle/login`: trade a role_id and secret_id for a token."""
        role_id, secret_id = body.get("role_id"), body.get("secret_id")
        if not isinstance(role_id, str) or not role_id:
            raise VaultAPIError(400, "missing role_id")
        if not isinstance(secret_id, str) or not secret_id:
            raise VaultAPIError(400, "missing secret_id")
        with self._lock:
            entry = self._secret_ids.get(secret_id)
            role = self._roles.get(role_id)
            if (
                entry is not None
                and entry.expires_at is not None
                and entry.expires_at <= self.now()
            ):
                del self._secret_ids[secret_id]
                entry = None
            if role is None or entry is None or entry.role_id != role_id:
                raise VaultAPIError(400, "invalid role or secret ID")
            if entry.uses_left is not None:
                entry.uses_left -= 1
                if entry.uses_left <= 0:
                    del self._secret_ids[secret_id]
            token = self._issue(
                token=None,
                ttl=role.token_ttl or self.system_max_ttl,
                max_ttl=role.token_max_ttl,
                renewable=True,
                policies=role.policies,
                path="auth/approle/login",
                display_name="approle",
                meta={"role_name": role.name},
            )
            return _envelope(auth=self._auth_block(token, self._tokens[token].ttl))

    def lookup_self(self, token: str | None) -> JSON:
        """`GET /v1/auth/token/lookup-self`: the calling token's properties."""
        with self._lock:
            token, tok = self._live(token)
            now = self.now()
            return _envelope(
                data={
                    "accessor": tok.accessor,
                    "creation_time": int(tok.created_at),
                    "creation_ttl": tok.ttl,
                    "display_name": tok.display_name,
                    "entity_id": "",
                    "expire_time": None if tok.expires_at is None else _iso(tok.expires_at),
                    "explicit_max_ttl": 0,
                    "id": token,
                    "issue_time": _iso(tok.created_at),
                    "meta": tok.meta,
                    "num_uses": 0,
                    "orphan": True,
                    "path": tok.path,
                    "policies": list(tok.policies),
                    "renewable": tok.renewable,
                    "ttl": 0 if tok.expires_at is None else max(int(tok.expires_at - now), 0),
                    "type": "service",
                }
            )

    def renew_self(self, token: str | None, body: Mapping[str, Any]) -> JSON:
        """`POST /v1/auth/token/renew-self`: extend the TTL, capped by the token's max TTL."""
        with self._lock:
            token, tok = self._live(token)
            if not tok.renewable or tok.expires_at is None:
                raise VaultAPIError(400, "lease is not renewable")
            increment = body.get("increment")
            wanted = _parse_duration(increment) if increment not in (None, "", 0) else tok.ttl
            now = self.now()
            deadline = tok.created_at + tok.max_ttl
            ttl, warnings = wanted, None
            if now + wanted > deadline:
                ttl = max(int(deadline - now), 0)
                warnings = [
                    f'TTL of "{wanted}s" exceeded the effective max_ttl of "{ttl}s"; '
                    "TTL value is capped accordingly"
                ]
            tok.expires_at = min(now + ttl, deadline)
            return _envelope(auth=self._auth_block(token, ttl), warnings=warnings)

    def kv_read(self, token: str | None, mount: str, path: str, version: int = 0) -> JSON:
        """`GET /v1/{mount}/data/{path}`: one version (0 = the latest) of a KV v2 secret."""
        with self._lock:
            self._live(token)
            versions = self._kv.get((mount, path), [])
            number = version or len(versions)
            if not 1 <= number <= len(versions):
                raise VaultAPIError(404)
            entry = versions[number - 1]
            return _envelope(data={"data": dict(entry.data), "metadata": _metadata(entry, number)})

    def kv_write(self, token: str | None, mount: str, path: str, body: Mapping[str, Any]) -> JSON:
        """`POST`/`PUT /v1/{mount}/data/{path}`: write a new version, honouring `options.cas`."""
        data, options = body.get("data"), body.get("options")
        with self._lock:
            self._live(token)
            if not isinstance(data, dict):
                raise VaultAPIError(400, "no data provided")
            cas = options.get("cas") if isinstance(options, dict) else None
            current = len(self._kv.get((mount, path), []))
            if cas is not None and cas != current:
                raise VaultAPIError(
                    400, "check-and-set parameter did not match the current version"
                )
            number = self._append_version(mount, path, data)
            return _envelope(data=_metadata(self._kv[(mount, path)][-1], number))

    # -- internals -----------------------------------------------------------------------------

    def _live(self, token: str | None) -> tuple[str, _Token]:
        """The token and its entry, or 403 if it is missing, unknown or expired."""
        tok = self._tokens.get(token) if token else None
        if token is None or tok is None:
            raise _denied()
        if tok.expires_at is not None and tok.expires_at <= self.now():
            del self._tokens[token]
            raise _denied()
        return token, tok

    def _issue(
        self,
        *,
        token: str | None,
        ttl: int,
        max_ttl: int,
        renewable: bool,
        policies: tuple[str, ...],
        path: str,
        display_name: str,
        meta: dict[str, str] | None,
    ) -> str:
        token = token or self._token_factory()
        now = self.now()
        effective_max = min(max_ttl or self.system_max_ttl, self.system_max_ttl) if ttl else 0
        ttl = min(ttl, effective_max)
        self._tokens[token] = _Token(
            accessor=secrets.token_urlsafe(18),
            policies=policies,
            path=path,
            display_name=display_name,
            meta=meta,
            created_at=now,
            ttl=ttl,
            max_ttl=effective_max,
            renewable=renewable,
            expires_at=now + ttl if ttl else None,
        )
        return token

    def _auth_block(self, token: str, lease_duration: int) -> JSON:
        tok = self._tokens[token]
        return {
            "client_token": token,
            "accessor": tok.accessor,
            "policies": list(tok.policies),
            "token_policies": list(tok.policies),
            "metadata": tok.meta,
            "lease_duration": lease_duration,
            "renewable": tok.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": True,
            "mfa_requirement": None,
            "num_uses": 0,
        }

    def _append_version(self, mount: str, path: str, data: dict[str, Any]) -> int:
        if mount not in self.mounts:
            raise ValueError(f"no KV v2 mount {mount!r} in this sandbox")
        versions = self._kv.setdefault((mount, path), [])
        versions.append(_Version(data=dict(data), created_time=_iso(self.now())))
        return len(versions)


def _envelope(data: JSON | None = None, auth: JSON | None = None, warnings: Any = None) -> JSON:
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": warnings,
        "auth": auth,
    }


def _metadata(entry: _Version, number: int) -> JSON:
    return {
        "created_time": entry.created_time,
        "custom_metadata": None,
        "deletion_time": "",
        "destroyed": False,
        "version": number,
    }


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _parse_duration(value: object) -> int:
    """Seconds from Vault's duration forms: 3600, "3600", "1h", "1h30m"."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        parts = _DURATION_PART.findall(text)
        if parts and "".join(n + u for n, u in parts) == text:
            return sum(int(n) * _DURATION_UNITS[u] for n, u in parts)
    raise VaultAPIError(400, "invalid increment: expected seconds or a duration like 1h")


# -- HTTP ------------------------------------------------------------------------------------------

Handler = Callable[[Request], Awaitable[JSON]]


def routes(state: VaultState) -> list[Route]:
    """Vault's HTTP API over `state`, under the real `/v1/...` paths (one KV route per mount)."""

    async def health(_request: Request) -> JSON:
        return state.health()

    async def approle_login(request: Request) -> JSON:
        return state.approle_login(await _body(request))

    async def lookup_self(request: Request) -> JSON:
        return state.lookup_self(_token(request))

    async def renew_self(request: Request) -> JSON:
        return state.renew_self(_token(request), await _body(request))

    def kv(mount: str) -> Handler:
        async def endpoint(request: Request) -> JSON:
            path = request.path_params["path"]
            if request.method == "GET":
                return state.kv_read(_token(request), mount, path, _version(request))
            return state.kv_write(_token(request), mount, path, await _body(request))

        return endpoint

    table: list[tuple[str, Handler, list[str]]] = [
        ("/v1/sys/health", health, ["GET"]),
        ("/v1/auth/approle/login", approle_login, ["POST", "PUT"]),
        ("/v1/auth/token/lookup-self", lookup_self, ["GET"]),
        ("/v1/auth/token/renew-self", renew_self, ["POST", "PUT"]),
    ]
    table += [(f"/v1/{m}/data/{{path:path}}", kv(m), ["GET", "POST", "PUT"]) for m in state.mounts]
    return [
        Route(path, _endpoint(state, handler), methods=methods) for path, handler, methods in table
    ]


def _endpoint(state: VaultState, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        fault = state.take_fault(request.url.path)
        response: Response
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            response = _fault_response(fault)
        else:
            try:
                response = JSONResponse(await handler(request))
            except VaultAPIError as exc:
                response = JSONResponse({"errors": exc.errors}, status_code=exc.status)
        state.record(request.method, request.url.path, response.status_code)
        return response

    return endpoint


def _fault_response(fault: Fault) -> Response:
    headers = {"Retry-After": "1"} if fault.status == 429 else None
    if fault.body is not None:
        return Response(fault.body, fault.status, headers, media_type="application/json")
    message = _DEFAULT_ERRORS.get(fault.status) or _phrase(fault.status)
    return JSONResponse({"errors": [message]}, fault.status, headers)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def _token(request: Request) -> str | None:
    token = request.headers.get("x-vault-token")
    if token:
        return token
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else None


async def _body(request: Request) -> JSON:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise VaultAPIError(400, "failed to parse JSON input") from None
    if not isinstance(body, dict):
        raise VaultAPIError(400, "failed to parse JSON input: expected an object")
    return body


def _version(request: Request) -> int:
    raw = request.query_params.get("version", "0")
    if not raw.isdigit():
        raise VaultAPIError(400, "invalid version")
    return int(raw)
