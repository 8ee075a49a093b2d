"""HashiCorp Vault client (hvac): AppRole or token auth, KV v2 reads, token renewal.

Fails closed: every failure is a `VaultError` whose message is one sentence naming the Vault address
and what was being done, and never a token, role_id, secret_id or secret value. hvac and requests
exceptions carry URLs, response bodies and headers, so they are translated and never chained.
TLS verification is always on; `ca_cert` only chooses which CA to trust.

The token is renewed once 2/3 of its TTL has passed; if renewal fails (or the token has expired or
reached its max TTL) an AppRole client logs in again, a token client raises once the token expires.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import hvac
import hvac.exceptions
import requests

from connectors.closing import Closing
from recon.errors import ConfigError, SecretUnavailableError
from recon.redaction import register_secret
from recon.secrets import SecretNotFoundError, SecretResolver
from recon.settings import Settings

logger = logging.getLogger("recon.vault")

RENEW_AFTER = 2 / 3
"""Fraction of a token's TTL after which it is renewed."""

_T = TypeVar("_T")
_BAD_URL = (
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
    requests.exceptions.URLRequired,
)


class VaultError(SecretUnavailableError):
    """Vault could not provide a secret; the message names the address and path, never a value."""


class VaultUnreachableError(VaultError):
    """Vault did not answer (connection refused, timeout, TLS failure) or is sealed/unavailable."""


class VaultAccessDeniedError(VaultError):
    """Vault refused the credentials or the token lacks permission."""


class VaultTokenExpiredError(VaultAccessDeniedError):
    """The configured Vault token has expired and token auth cannot log in again."""


class VaultSecretNotFoundError(VaultError, SecretNotFoundError):
    """The KV v2 secret does not exist (or its latest version is deleted)."""


@dataclass(frozen=True)
class TokenAuth:
    """Authenticate with a Vault token."""

    token: str = field(repr=False)


@dataclass(frozen=True)
class AppRoleAuth:
    """Authenticate with an AppRole role_id and secret_id (auth method mounted at `mount`)."""

    role_id: str = field(repr=False)
    secret_id: str = field(repr=False)
    mount: str = "approle"


VaultAuth = TokenAuth | AppRoleAuth


@dataclass(frozen=True)
class _Lease:
    obtained_at: float
    ttl: int  # seconds from obtained_at; 0 = never expires
    renewable: bool
    full_ttl: int  # the TTL a renewal should restore; less means the max TTL was reached


class VaultClient(Closing):
    """Reads KV v2 secrets from Vault, keeping its token fresh. Safe to share between threads."""

    def __init__(
        self,
        addr: str,
        auth: VaultAuth,
        *,
        mount: str = "secret",
        ca_cert: str | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not addr.strip():
            # hvac would silently fall back to $VAULT_ADDR
            raise ConfigError("No Vault address is configured; set RECON_VAULT_ADDR.")
        self.addr = _display_addr(addr)
        self.mount = mount
        self._auth = auth
        self._timeout = timeout
        self._clock = clock
        self._lock = threading.RLock()
        self._lease: _Lease | None = None
        # An explicit token ("" for AppRole) and `verify` keep hvac from reading VAULT_TOKEN,
        # ~/.vault-token or VAULT_CACERT behind our back.
        self._hvac = hvac.Client(
            url=addr.rstrip("/"),
            token=auth.token if isinstance(auth, TokenAuth) else "",
            verify=ca_cert or True,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"VaultClient(addr={self.addr!r}, auth={type(self._auth).__name__}, mount={self.mount!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._hvac.adapter.close()

    # -- public API ----------------------------------------------------------------------------

    def login(self) -> None:
        """Log in with AppRole, or look up the given token to learn its TTL."""
        with self._lock:
            if isinstance(self._auth, AppRoleAuth):
                self._login_approle(self._auth)
            else:
                self._lookup_token()

    def read(self, path: str) -> dict[str, str]:
        """The latest version of the KV v2 secret at `path` in this client's mount."""
        self.ensure_token_fresh()
        where = f"secret '{path}' in KV mount '{self.mount}'"
        answer = self._call(
            f"read {where}",
            lambda: self._hvac.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=True
            ),
            not_found=f"Vault at {self.addr} has no {where}; write it there or fix the path.",
        )
        data = _dig(answer, "data", "data")
        if data is None:
            raise VaultError(f"Vault at {self.addr} gave an unexpected answer reading {where}.")
        for key, value in data.items():
            if not isinstance(value, str):
                raise VaultError(
                    f"Vault {where} at {self.addr} holds a non-string value under key '{key}'."
                )
        metadata = _dig(answer, "data", "metadata") or {}
        logger.debug(
            "Read %s (version %s) from Vault at %s", where, metadata.get("version"), self.addr
        )
        return dict(data)

    def ensure_token_fresh(self) -> None:
        """Log in if needed; renew the token once 2/3 of its TTL has passed; re-login on failure."""
        with self._lock:
            lease = self._lease
            if lease is None:
                self.login()
                return
            if lease.ttl == 0:
                return
            elapsed = self._clock() - lease.obtained_at
            if elapsed < lease.ttl * RENEW_AFTER:
                return
            if lease.renewable and elapsed < lease.ttl:
                self._renew(lease)
            elif isinstance(self._auth, AppRoleAuth):
                logger.info(
                    "The Vault token at %s is %s; logging in again with AppRole",
                    self.addr,
                    "expired" if elapsed >= lease.ttl else "not renewable",
                )
                self._relogin(self._auth)
            elif elapsed >= lease.ttl:
                raise VaultTokenExpiredError(
                    f"The Vault token for {self.addr} has expired; "
                    "provide a new token or use AppRole auth."
                )

    def is_reachable(self) -> bool:
        """True if Vault answers its health check as an initialised, unsealed active or standby."""
        try:
            answer = self._hvac.sys.read_health_status(method="GET")
        except Exception as exc:  # any failure means "not reachable"; only the type is logged
            logger.debug("Vault health check at %s failed: %s", self.addr, type(exc).__name__)
            return False
        if isinstance(answer, Mapping):
            return bool(answer.get("initialized")) and not answer.get("sealed")
        # 429: standby, 472: DR secondary, 473: performance standby; all answer reads.
        return getattr(answer, "status_code", None) in (429, 472, 473)

    # -- token lifecycle -----------------------------------------------------------------------

    def _login_approle(self, auth: AppRoleAuth) -> None:
        answer = self._call(
            f"log in with AppRole at auth/{auth.mount}",
            lambda: self._hvac.auth.approle.login(
                role_id=auth.role_id, secret_id=auth.secret_id, mount_point=auth.mount
            ),
            rejected=(
                f"Vault at {self.addr} rejected the AppRole role_id/secret_id at "
                f"auth/{auth.mount}/login; issue a new secret_id for this role."
            ),
        )
        block = _dig(answer, "auth")
        if block is None or not isinstance(block.get("client_token"), str):
            raise VaultError(
                f"Vault at {self.addr} gave an unexpected answer to the AppRole login."
            )
        register_secret(block["client_token"])  # the issued token is masked like any secret
        ttl = _int(block.get("lease_duration"))
        self._lease = _Lease(self._clock(), ttl, bool(block.get("renewable")), ttl)
        logger.info("Logged in to Vault at %s with AppRole; token TTL %d s", self.addr, ttl)

    def _lookup_token(self) -> None:
        answer = self._call(
            "look up its token (auth/token/lookup-self)",
            self._hvac.auth.token.lookup_self,
            denied=(
                f"Vault at {self.addr} refused the configured token at auth/token/lookup-self; "
                "it is invalid, revoked or expired, so provide a new one."
            ),
        )
        data = _dig(answer, "data")
        if data is None:
            raise VaultError(f"Vault at {self.addr} gave an unexpected answer to the token lookup.")
        ttl = _int(data.get("ttl"))
        full_ttl = max(_int(data.get("creation_ttl")), ttl)
        self._lease = _Lease(self._clock(), ttl, bool(data.get("renewable")), full_ttl)
        logger.info("Vault token at %s is valid; TTL %s", self.addr, f"{ttl} s" if ttl else "none")

    def _renew(self, lease: _Lease) -> None:
        failure = "unexpected answer"
        try:
            answer = self._call(
                "renew its token (auth/token/renew-self)", self._hvac.auth.token.renew_self
            )
        except VaultError as exc:  # handled below, outside this block, so nothing is chained
            failure, answer = type(exc).__name__, None
        block = _dig(answer, "auth")
        if block is None:
            if isinstance(self._auth, AppRoleAuth):
                logger.warning(
                    "Renewing the Vault token at %s failed (%s); logging in again with AppRole",
                    self.addr,
                    failure,
                )
                self._relogin(self._auth)
            else:
                logger.warning(
                    "Renewing the Vault token at %s failed (%s); it stays valid until it expires",
                    self.addr,
                    failure,
                )
            return
        ttl = _int(block.get("lease_duration"))
        capped = ttl + 1 < lease.full_ttl
        self._lease = _Lease(
            self._clock(), ttl, bool(block.get("renewable")) and not capped, lease.full_ttl
        )
        logger.info("Renewed the Vault token at %s; TTL now %d s", self.addr, ttl)
        if capped and isinstance(self._auth, AppRoleAuth):
            logger.info("The Vault token at %s reached its max TTL; logging in again", self.addr)
            self._relogin(self._auth)
        elif capped:
            logger.info("The Vault token at %s reached its max TTL; no more renewals", self.addr)

    def _relogin(self, auth: AppRoleAuth) -> None:
        """Log in again; a failure is alert-worthy (e.g. the secret_id expired or was used up)."""
        try:
            self._login_approle(auth)
        except VaultError as exc:
            error = exc
        else:
            return
        self._lease = None
        logger.error("AppRole login to Vault at %s failed: %s", self.addr, error)
        raise error

    # -- error translation ---------------------------------------------------------------------

    def _call(
        self,
        action: str,
        call: Callable[[], _T],
        *,
        not_found: str | None = None,
        denied: str | None = None,
        rejected: str | None = None,
    ) -> _T:
        """Run an hvac call, translating every failure into a VaultError with no chained cause.

        The raise happens outside the `except` block so the original exception (which may hold
        URLs, headers or bodies) is neither chained nor kept as context.
        """
        try:
            return call()
        except Exception as exc:  # every failure must become a safe VaultError
            error = self._translate(exc, action, not_found, denied, rejected)
        raise error from None

    def _translate(
        self,
        exc: Exception,
        action: str,
        not_found: str | None,
        denied: str | None,
        rejected: str | None,
    ) -> VaultError:
        addr, errors = self.addr, hvac.exceptions
        logger.debug("Vault call to %s failed: %s", action, type(exc).__name__)
        if isinstance(exc, requests.exceptions.SSLError):
            return VaultUnreachableError(
                f"Vault at {addr} failed TLS verification while trying to {action}; "
                "configure the CA certificate that signed its certificate."
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return VaultUnreachableError(
                f"Vault at {addr} did not answer within {self._timeout:g} s while trying to "
                f"{action}; check that it is running and reachable."
            )
        if isinstance(exc, _BAD_URL):
            return VaultError(f"The Vault address {addr!r} is not a valid http(s) URL.")
        if isinstance(exc, requests.exceptions.InvalidHeader):
            # requests puts the offending header value (the token) in this exception's text.
            return VaultError(
                f"The Vault token for {addr} contains characters an HTTP header cannot carry "
                f"(e.g. a newline), so the client could not {action}."
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            return VaultUnreachableError(
                f"Vault at {addr} could not be reached to {action}; check the address and that "
                "Vault is running."
            )
        if isinstance(exc, errors.VaultDown | errors.BadGateway | errors.VaultNotInitialized):
            return VaultUnreachableError(
                f"Vault at {addr} is unavailable (sealed, uninitialised or down) and could not "
                f"{action}."
            )
        if isinstance(exc, errors.Forbidden | errors.Unauthorized):
            return VaultAccessDeniedError(
                denied
                or f"Vault at {addr} denied permission to {action}; check the token's policies."
            )
        if isinstance(exc, errors.InvalidRequest) and rejected:
            return VaultAccessDeniedError(rejected)
        if isinstance(exc, errors.InvalidPath) and not_found:
            return VaultSecretNotFoundError(not_found)
        return VaultError(
            f"Vault at {addr} failed to {action} ({_describe(exc)}); see the Vault server logs."
        )


def _describe(exc: Exception) -> str:
    """A safe description of an unexpected failure: the exception type, never its text."""
    statuses = {
        "InvalidRequest": "HTTP 400",
        "InvalidPath": "HTTP 404",
        "RateLimitExceeded": "HTTP 429",
        "InternalServerError": "HTTP 500",
        "UnexpectedError": "unexpected HTTP status",
    }
    name = type(exc).__name__
    if name in statuses:
        return statuses[name]
    return "unexpected answer" if isinstance(exc, ValueError | KeyError | TypeError) else name


def _dig(answer: object, *keys: str) -> dict[str, Any] | None:
    """`answer[k1][k2]...` if every step is a JSON object, else None."""
    node = answer
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return dict(node) if isinstance(node, Mapping) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _display_addr(addr: str) -> str:
    """The address without credentials, query or fragment, fit for messages and logs."""
    parts = urlsplit(addr.strip())
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def vault_client_from_settings(settings: Settings) -> VaultClient | None:
    """A Vault client when RECON_VAULT_ADDR is set, authenticated by token or AppRole."""
    if not settings.vault_addr:
        return None
    ca_cert = str(settings.vault_ca_cert) if settings.vault_ca_cert else None
    if settings.vault_role_id and settings.vault_secret_id:
        role_id = settings.vault_role_id.get_secret_value()
        secret_id = settings.vault_secret_id.get_secret_value()
        register_secret(role_id)
        register_secret(secret_id)
        auth: TokenAuth | AppRoleAuth = AppRoleAuth(role_id=role_id, secret_id=secret_id)
    elif settings.vault_token:
        token = settings.vault_token.get_secret_value()
        register_secret(token)
        auth = TokenAuth(token=token)
    else:
        raise SecretUnavailableError(
            "RECON_VAULT_ADDR is set but no Vault credentials are: set RECON_VAULT_TOKEN, or "
            "RECON_VAULT_ROLE_ID and RECON_VAULT_SECRET_ID"
        )
    return VaultClient(settings.vault_addr, auth, mount=settings.vault_mount, ca_cert=ca_cert)


def secret_resolver(settings: Settings) -> SecretResolver:
    """A resolver that reads Vault when the settings configure it (the client opened on first use)."""
    return SecretResolver(settings, open_store=vault_client_from_settings)
