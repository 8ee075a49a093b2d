"""The Bank Account Data token lifecycle.

`TokenKeeper` answers `access_token()` with the cached access token while it has more than the
margin left, else refreshes it with `POST token/refresh/` (the access token lasts 24 h, the
refresh token 30 days), else asks for a new pair with `POST token/new/` (also when a refresh is
refused with 400 or 401). A 401 from `token/new/` is `GoCardlessAuthError`. Every token is
registered for redaction and never logged.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.gocardless.errors import GoCardlessAuthError, shape_error
from connectors.gocardless.wire import API, PROVIDER, GoCardlessDataError
from connectors.http import PolicyClient, ProviderRejectedError
from recon.redaction import register_secret


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Tokens:
    """The current token pair and when each stops being valid."""

    access: str | None = None
    access_until: dt.datetime | None = None
    refresh: str | None = None
    refresh_until: dt.datetime | None = None


class TokenKeeper:
    """Issues, refreshes and forgets the access token of one secret pair (thread-safe)."""

    def __init__(
        self,
        http: PolicyClient,
        secrets: dict[str, str],
        *,
        clock: Callable[[], dt.datetime],
        margin: dt.timedelta,
    ) -> None:
        self._http = http
        self._secrets = secrets
        self._clock = clock
        self._margin = margin
        self._tokens = Tokens()
        self._lock = threading.Lock()

    def access_token(self) -> str:
        """A valid access token: the cached one, a refreshed one, or a new pair."""
        with self._lock:
            now = self._now()
            tokens = self._tokens
            if tokens.access and tokens.access_until and tokens.access_until - self._margin > now:
                return tokens.access
            if (
                tokens.refresh
                and tokens.refresh_until
                and tokens.refresh_until - self._margin > now
            ):
                try:
                    return self._refresh(tokens.refresh)
                except ProviderRejectedError as exc:
                    if exc.status not in (400, 401):
                        raise
            return self._new()

    def forget_access(self, used: str) -> None:
        """Drop the access token `used` (refused as invalid) unless another already replaced it."""
        with self._lock:
            if self._tokens.access == used:
                self._tokens.access = None
                self._tokens.access_until = None

    def _new(self) -> str:
        try:
            body = self._token_call("token/new", dict(self._secrets))
        except ProviderRejectedError as exc:
            if exc.status == 401:
                raise GoCardlessAuthError(exc, with_secrets=True) from None
            raise
        access, refresh = _token_text(body, "access"), _token_text(body, "refresh")
        now = self._now()
        self._tokens = Tokens(
            access=access,
            access_until=now + dt.timedelta(seconds=_token_seconds(body, "access_expires")),
            refresh=refresh,
            refresh_until=now + dt.timedelta(seconds=_token_seconds(body, "refresh_expires")),
        )
        return access

    def _refresh(self, refresh: str) -> str:
        body = self._token_call("token/refresh", {"refresh": refresh})
        access = _token_text(body, "access")
        self._tokens.access = access
        self._tokens.access_until = self._now() + dt.timedelta(
            seconds=_token_seconds(body, "access_expires")
        )
        return access

    def _token_call(self, name: str, payload: dict[str, str]) -> dict[str, Any]:
        response = self._http.request(
            "POST", f"{API}/{name}/", json=payload, idempotent=True, expect_json=True, endpoint=name
        )
        body = json.loads(response.content)
        if not isinstance(body, dict):
            raise shape_error("POST", f"{API}/{name}/", name, response, "not a JSON object")
        for key in ("access", "refresh"):
            if isinstance(body.get(key), str):
                register_secret(body[key])
        return body

    def _now(self) -> dt.datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)


def _token_text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise GoCardlessDataError(f"{PROVIDER} sent a token answer without {key!r}.")
    return value


def _token_seconds(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise GoCardlessDataError(f"{PROVIDER} sent a token answer without {key!r}.")
    try:
        return int(value)
    except ValueError:
        raise GoCardlessDataError(f"{PROVIDER} sent {key!r} = {value!r}, not seconds.") from None
