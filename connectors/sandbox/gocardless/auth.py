"""`POST token/new/`, `token/refresh/` and the bearer check on every other endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from connectors.sandbox.common import same
from connectors.sandbox.gocardless.model import INVALID_TOKEN, JSON, Token, field_error, flat
from connectors.sandbox.gocardless.values import b64
from connectors.sandbox.gocardless.world import BankWorld


class Auth(BankWorld):
    """JWT-shaped access and refresh tokens signed with the sandbox's own key."""

    def _issue(self, kind: str, lifetime: int) -> str:
        expires = self._now() + timedelta(seconds=lifetime)
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {
            "token_type": kind,
            "exp": int(expires.timestamp()),
            "jti": uuid.uuid4().hex,
            "id": len(self._tokens) + 1,
        }
        signing_input = f"{b64(header)}.{b64(payload)}"
        signature = hmac.new(self._signing_key, signing_input.encode(), hashlib.sha256).digest()
        token = f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"
        self._tokens[token] = Token(kind, expires)
        return token

    def token_new(self, body: Mapping[str, Any]) -> JSON:
        """`POST token/new/`."""
        missing = {
            k: ["This field is required."] for k in ("secret_id", "secret_key") if not body.get(k)
        }
        if missing:
            raise field_error(400, missing)
        with self._lock:
            ok_id = same(str(body["secret_id"]), self._secret_id)
            ok_key = same(str(body["secret_key"]), self._secret_key)
            if not (ok_id and ok_key):
                raise flat(
                    401,
                    "Authentication failed",
                    "No active account found with the given credentials",
                )
            self.token_counts["new"] += 1
            return {
                "access": self._issue("access", self.access_expires),
                "access_expires": self.access_expires,
                "refresh": self._issue("refresh", self.refresh_expires),
                "refresh_expires": self.refresh_expires,
            }

    def token_refresh(self, body: Mapping[str, Any]) -> JSON:
        """`POST token/refresh/`: a new access token; the refresh token stays as it is."""
        refresh = body.get("refresh")
        if not refresh:
            raise field_error(400, {"refresh": ["This field is required."]})
        with self._lock:
            token = self._tokens.get(str(refresh))
            if token is None or token.kind != "refresh" or token.expires <= self._now():
                raise flat(401, *INVALID_TOKEN)
            self.token_counts["refresh"] += 1
            return {
                "access": self._issue("access", self.access_expires),
                "access_expires": self.access_expires,
            }

    def authorise(self, authorization: str | None) -> None:
        """Check the bearer access token; 401 as the API answers otherwise."""
        if not authorization:
            raise flat(
                401,
                "Authentication credentials were not provided.",
                "Authentication credentials were not provided.",
            )
        scheme, _, value = authorization.partition(" ")
        with self._lock:
            token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            if token is None or token.kind != "access" or token.expires <= self._now():
                raise flat(401, *INVALID_TOKEN)
