"""The Vault client (hvac) against the sandbox Vault over real HTTP (reliability.md T10).

The sandbox clock stands still; tests move it with `sandbox_vault.advance` and hand `sandbox_vault.now`
to the client as its clock, so token lifetimes are exact. What the client did is read back from the
sandbox's request log.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import socket
import traceback
import uuid
from collections.abc import Callable, Iterator

import hvac
import hvac.exceptions
import pytest
import requests
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from connectors.sandbox.app import RouteGroup, build_app, compose
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.vault import VaultState
from connectors.sandbox.vault import routes as vault_routes
from connectors.vault import (
    AppRoleAuth,
    TokenAuth,
    VaultAccessDeniedError,
    VaultClient,
    VaultError,
    VaultSecretNotFoundError,
    VaultTokenExpiredError,
    VaultUnreachableError,
)
from recon.errors import ReconError, SecretUnavailableError
from tests.integration.conftest import SANDBOX_EPOCH
from tests.tls import write_self_signed_cert

pytestmark = pytest.mark.timeout(30)

LOGIN = "/v1/auth/approle/login"
LOOKUP = "/v1/auth/token/lookup-self"
RENEW = "/v1/auth/token/renew-self"
HEALTH = "/v1/sys/health"
STRIPE = "recon/stripe"
STRIPE_KV = f"/v1/secret/data/{STRIPE}"
STRIPE_SECRET = {"api_key": "sk_test_sandbox", "webhook_secret": "whsec_sandbox"}


def client_for(
    server: RunningServer,
    state: VaultState,
    auth: TokenAuth | AppRoleAuth,
    ca_cert: str | None = None,
) -> VaultClient:
    """A client on the sandbox, sharing the sandbox's clock."""
    return VaultClient(server.url, auth, clock=state.now, ca_cert=ca_cert)


def closed_port_url() -> str:
    """An http URL on a local port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def calls(state: VaultState) -> list[tuple[str, int]]:
    """(path, status) of every request the sandbox answered."""
    return [(r.path, r.status) for r in state.request_log()]


@pytest.fixture
def approle(sandbox_vault: VaultState) -> AppRoleAuth:
    creds = sandbox_vault.add_approle(token_ttl=60)
    sandbox_vault.put_secret(STRIPE, STRIPE_SECRET)
    return AppRoleAuth(creds.role_id, creds.secret_id)


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM file paths)."""
    return write_self_signed_cert(tmp_path_factory.mktemp("tls"), "recon sandbox")


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A URL whose port accepts TCP connections but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


# -- reading secrets ---------------------------------------------------------------------------


def test_token_auth_reads_the_latest_version(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    token = sandbox_vault.add_token(ttl=3600)
    sandbox_vault.put_secret(STRIPE, {"api_key": "old"})
    sandbox_vault.put_secret(STRIPE, STRIPE_SECRET)

    client = client_for(vault_server, sandbox_vault, TokenAuth(token))

    assert client.read(STRIPE) == STRIPE_SECRET
    assert calls(sandbox_vault) == [(LOOKUP, 200), (STRIPE_KV, 200)]


def test_approle_logs_in_then_reads(
    sandbox_vault: VaultState, vault_server: RunningServer, approle: AppRoleAuth
) -> None:
    client = client_for(vault_server, sandbox_vault, approle)

    assert client.read(STRIPE) == STRIPE_SECRET
    assert client.read(STRIPE) == STRIPE_SECRET
    assert calls(sandbox_vault) == [(LOGIN, 200), (STRIPE_KV, 200), (STRIPE_KV, 200)]


@pytest.mark.parametrize("wrong", ["role_id", "secret_id"])
def test_wrong_approle_credentials_are_access_denied(
    sandbox_vault: VaultState, vault_server: RunningServer, approle: AppRoleAuth, wrong: str
) -> None:
    bad = AppRoleAuth(
        role_id="nope" if wrong == "role_id" else approle.role_id,
        secret_id="nope" if wrong == "secret_id" else approle.secret_id,
    )
    client = client_for(vault_server, sandbox_vault, bad)

    with pytest.raises(VaultAccessDeniedError) as caught:
        client.read(STRIPE)

    assert vault_server.url in str(caught.value)
    assert "auth/approle/login" in str(caught.value)
    assert calls(sandbox_vault) == [(LOGIN, 400)]


def test_missing_secret_is_not_found(
    sandbox_vault: VaultState, vault_server: RunningServer, approle: AppRoleAuth
) -> None:
    client = client_for(vault_server, sandbox_vault, approle)

    with pytest.raises(VaultSecretNotFoundError) as caught:
        client.read("recon/missing")

    message = str(caught.value)
    assert "recon/missing" in message and "'secret'" in message and vault_server.url in message
    assert isinstance(caught.value, SecretUnavailableError)
    assert calls(sandbox_vault)[-1] == ("/v1/secret/data/recon/missing", 404)


def test_non_string_values_are_refused_naming_only_the_key(
    sandbox_vault: VaultState, vault_server: RunningServer, approle: AppRoleAuth
) -> None:
    sandbox_vault.put_secret("recon/db", {"password": "s3cret-value", "port": 5432})
    client = client_for(vault_server, sandbox_vault, approle)

    with pytest.raises(VaultError, match="'port'") as caught:
        client.read("recon/db")

    assert "5432" not in str(caught.value) and "s3cret-value" not in str(caught.value)


# -- Vault unavailable or misbehaving ----------------------------------------------------------


def test_unreachable_address_fails_fast() -> None:
    url = closed_port_url()
    client = VaultClient(url, TokenAuth("t"), timeout=5.0)

    with pytest.raises(VaultUnreachableError) as caught:
        client.read(STRIPE)

    # Fast means refused at once, not waited out: the error is the refusal, not the 5 s timeout.
    assert "could not be reached" in str(caught.value)
    assert "did not answer" not in str(caught.value)
    assert url in str(caught.value)
    assert not client.is_reachable()


def test_silent_vault_times_out_within_the_budget() -> None:
    """The client connects, waits its read timeout for an answer that never comes, and says so."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        client = VaultClient(
            f"http://127.0.0.1:{listener.getsockname()[1]}", TokenAuth("t"), timeout=0.3
        )

        with pytest.raises(VaultUnreachableError, match=r"did not answer within 0\.3 s"):
            client.read(STRIPE)

        listener.setblocking(False)
        connection, _ = listener.accept()  # the connection was made: a timeout, not a refusal
        connection.close()


def test_is_reachable_reflects_health(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    client = VaultClient(vault_server.url, TokenAuth("unused"))

    assert client.is_reachable()
    sandbox_vault.inject_fault(503, path_prefix=HEALTH)
    assert not client.is_reachable()
    assert calls(sandbox_vault) == [(HEALTH, 200), (HEALTH, 503)]


@pytest.mark.parametrize(
    ("status", "body", "error", "match"),
    [
        (503, None, VaultUnreachableError, "unavailable"),
        (502, None, VaultUnreachableError, "unavailable"),
        (403, None, VaultAccessDeniedError, "denied permission"),
        (500, None, VaultError, "HTTP 500"),
        (429, None, VaultError, "HTTP 429"),
        (200, '{"data": {"data": {"api_key": "sk_', VaultError, "unexpected answer"),
        (200, '{"data": null}', VaultError, "unexpected answer"),
    ],
)
def test_failed_reads_raise_typed_errors(
    sandbox_vault: VaultState,
    vault_server: RunningServer,
    approle: AppRoleAuth,
    status: int,
    body: str | None,
    error: type[VaultError],
    match: str,
) -> None:
    client = client_for(vault_server, sandbox_vault, approle)
    client.login()
    sandbox_vault.inject_fault(status, path_prefix="/v1/secret/", body=body)

    with pytest.raises(error, match=match) as caught:
        client.read(STRIPE)

    assert type(caught.value) is error
    assert STRIPE in str(caught.value) and vault_server.url in str(caught.value)
    assert client.read(STRIPE) == STRIPE_SECRET  # the fault was one request; the client recovers


@pytest.mark.parametrize(
    "error",
    [
        VaultError,
        VaultUnreachableError,
        VaultAccessDeniedError,
        VaultTokenExpiredError,
        VaultSecretNotFoundError,
    ],
)
def test_errors_are_recon_errors(error: type[VaultError]) -> None:
    assert issubclass(error, ReconError)
    assert issubclass(error, VaultError)


# -- token lifecycle ---------------------------------------------------------------------------


def test_approle_token_is_renewed_after_two_thirds_of_its_ttl_and_not_before(
    sandbox_vault: VaultState, vault_server: RunningServer, approle: AppRoleAuth
) -> None:
    client = client_for(vault_server, sandbox_vault, approle)
    client.read(STRIPE)  # t=0: login, TTL 60 s

    sandbox_vault.advance(39)
    client.read(STRIPE)  # t=39 < 40: no renewal
    assert sandbox_vault.count(RENEW) == 0

    sandbox_vault.advance(1)
    client.read(STRIPE)  # t=40 = 2/3 of 60: renewal
    assert sandbox_vault.count(RENEW) == 1

    sandbox_vault.advance(39)
    client.read(STRIPE)  # t=79: past the first token's 60 s, alive thanks to the renewal
    assert calls(sandbox_vault) == [
        (LOGIN, 200),
        (STRIPE_KV, 200),
        (STRIPE_KV, 200),
        (RENEW, 200),
        (STRIPE_KV, 200),
        (STRIPE_KV, 200),
    ]


def test_token_auth_is_renewed_after_two_thirds_of_its_ttl(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    token = sandbox_vault.add_token(ttl=60)
    sandbox_vault.put_secret(STRIPE, STRIPE_SECRET)
    client = client_for(vault_server, sandbox_vault, TokenAuth(token))
    client.login()

    sandbox_vault.advance(39)
    client.ensure_token_fresh()
    assert sandbox_vault.count(RENEW) == 0
    sandbox_vault.advance(1)
    client.ensure_token_fresh()  # t=40: renewed until t=100
    sandbox_vault.advance(39)
    assert client.read(STRIPE) == STRIPE_SECRET  # t=79: past the original expiry at 60
    assert calls(sandbox_vault) == [(LOOKUP, 200), (RENEW, 200), (STRIPE_KV, 200)]


@pytest.mark.parametrize("status", [403, 503])
def test_failed_renewal_logs_in_again_with_approle(
    sandbox_vault: VaultState,
    vault_server: RunningServer,
    approle: AppRoleAuth,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = client_for(vault_server, sandbox_vault, approle)
    client.read(STRIPE)
    sandbox_vault.advance(40)
    sandbox_vault.inject_fault(status, path_prefix=RENEW)

    with caplog.at_level(logging.INFO, logger="recon.vault"):
        assert client.read(STRIPE) == STRIPE_SECRET

    assert calls(sandbox_vault)[2:] == [(RENEW, status), (LOGIN, 200), (STRIPE_KV, 200)]
    assert any(
        r.levelno == logging.WARNING and "logging in again" in r.getMessage()
        for r in caplog.records
    )


def test_expired_approle_token_logs_in_again_without_renewing(
    sandbox_vault: VaultState, vault_server: RunningServer, approle: AppRoleAuth
) -> None:
    client = client_for(vault_server, sandbox_vault, approle)
    client.read(STRIPE)
    sandbox_vault.advance(61)

    assert client.read(STRIPE) == STRIPE_SECRET
    assert calls(sandbox_vault) == [(LOGIN, 200), (STRIPE_KV, 200), (LOGIN, 200), (STRIPE_KV, 200)]


def test_approle_token_at_its_max_ttl_logs_in_again(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    creds = sandbox_vault.add_approle(token_ttl=60, token_max_ttl=90)
    sandbox_vault.put_secret(STRIPE, STRIPE_SECRET)
    client = client_for(vault_server, sandbox_vault, AppRoleAuth(creds.role_id, creds.secret_id))
    client.login()
    sandbox_vault.advance(40)

    client.ensure_token_fresh()  # renewal only gets 50 s (capped at 90): log in again now

    assert calls(sandbox_vault) == [(LOGIN, 200), (RENEW, 200), (LOGIN, 200)]


def test_expired_token_with_token_auth_is_a_clear_error(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    token = sandbox_vault.add_token(ttl=60, renewable=False)
    sandbox_vault.put_secret(STRIPE, STRIPE_SECRET)
    client = client_for(vault_server, sandbox_vault, TokenAuth(token))
    client.read(STRIPE)
    sandbox_vault.advance(59)
    client.read(STRIPE)  # not renewable: used as is until it expires
    sandbox_vault.advance(1)

    with pytest.raises(VaultTokenExpiredError, match="expired") as caught:
        client.read(STRIPE)

    assert isinstance(caught.value, VaultAccessDeniedError)
    assert vault_server.url in str(caught.value)
    assert calls(sandbox_vault) == [(LOOKUP, 200), (STRIPE_KV, 200), (STRIPE_KV, 200)]


def test_token_auth_survives_a_failed_renewal_until_expiry(
    sandbox_vault: VaultState, vault_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = sandbox_vault.add_token(ttl=60, max_ttl=90)
    sandbox_vault.put_secret(STRIPE, STRIPE_SECRET)
    client = client_for(vault_server, sandbox_vault, TokenAuth(token))
    client.login()
    sandbox_vault.advance(40)
    sandbox_vault.inject_fault(503, path_prefix=RENEW)

    with caplog.at_level(logging.WARNING, logger="recon.vault"):
        assert client.read(STRIPE) == STRIPE_SECRET  # renewal failed, the token still works
    assert "stays valid" in caplog.text

    sandbox_vault.advance(5)
    client.read(STRIPE)  # renewed, but capped at the 90 s max TTL: 45 s left
    sandbox_vault.advance(44)
    client.read(STRIPE)  # no further renewal attempts
    sandbox_vault.advance(1)
    with pytest.raises(VaultTokenExpiredError):
        client.read(STRIPE)
    assert [p for p, _ in calls(sandbox_vault)].count(RENEW) == 2


def test_invalid_static_token_is_denied(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    client = client_for(vault_server, sandbox_vault, TokenAuth("hvs.not-a-token"))

    with pytest.raises(VaultAccessDeniedError, match="lookup-self"):
        client.read(STRIPE)


@pytest.mark.parametrize("limit", ["num_uses", "ttl"])
def test_used_up_or_expired_secret_id_fails_closed_and_alerts(
    sandbox_vault: VaultState,
    vault_server: RunningServer,
    limit: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    creds = sandbox_vault.add_approle(
        token_ttl=60,
        secret_id_num_uses=1 if limit == "num_uses" else 0,
        secret_id_ttl=90 if limit == "ttl" else 0,
    )
    sandbox_vault.put_secret(STRIPE, STRIPE_SECRET)
    client = client_for(vault_server, sandbox_vault, AppRoleAuth(creds.role_id, creds.secret_id))
    client.read(STRIPE)
    sandbox_vault.advance(100)

    with pytest.raises(VaultAccessDeniedError, match="secret_id"):
        client.read(STRIPE)

    assert any(r.levelno == logging.ERROR and r.name == "recon.vault" for r in caplog.records)
    assert calls(sandbox_vault)[-1] == (LOGIN, 400)


# -- TLS ---------------------------------------------------------------------------------------


def test_tls_is_verified_against_the_configured_ca(
    sandbox_vault: VaultState, tls_cert: tuple[str, str]
) -> None:
    cert, key = tls_cert
    token = sandbox_vault.add_token()
    sandbox_vault.put_secret(STRIPE, STRIPE_SECRET)
    app = build_app(vault=sandbox_vault)

    with run_in_thread(app, ssl_certfile=cert, ssl_keyfile=key) as server:
        assert server.url.startswith("https://")
        with client_for(server, sandbox_vault, TokenAuth(token)) as untrusting:
            with pytest.raises(VaultUnreachableError, match="TLS verification"):
                untrusting.read(STRIPE)
            assert not untrusting.is_reachable()

        with client_for(server, sandbox_vault, TokenAuth(token), ca_cert=cert) as trusting:
            assert trusting.read(STRIPE) == STRIPE_SECRET
            assert trusting.is_reachable()


@pytest.mark.parametrize("ca_cert", [None, "", "/etc/recon/vault-ca.pem"])
def test_tls_verification_cannot_be_turned_off(ca_cert: str | None) -> None:
    names = set(inspect.signature(VaultClient).parameters)
    assert not names & {"verify", "insecure", "skip_verify", "tls_skip_verify", "verify_tls"}

    client = VaultClient("https://vault.example:8200", TokenAuth("t"), ca_cert=ca_cert)
    adapter = client._hvac.adapter
    expected = ca_cert or True

    assert adapter._kwargs["verify"] == expected
    assert adapter.session.verify == expected


# -- canary: no credential or secret value ever leaves -----------------------------------------


def test_canary_secrets_never_reach_logs_or_errors(
    tls_cert: tuple[str, str],
    silent_server: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    canary = f"CANARY-{uuid.uuid4()}"
    serial = itertools.count()
    state = VaultState(
        clock=lambda: SANDBOX_EPOCH, token_factory=lambda: f"{canary}-token-{next(serial)}"
    )
    creds = state.add_approle(
        role_id=f"{canary}-role-id", secret_id=f"{canary}-secret-id", token_ttl=60
    )
    static_token = state.add_token(f"{canary}-static-token", ttl=60, max_ttl=1000)
    state.put_secret(STRIPE, {"api_key": f"{canary}-value"})
    state.put_secret("recon/odd", {"nested": [f"{canary}-nested"]})
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "hvac", "recon.vault", "uvicorn", "uvicorn.error"):
        caplog.set_level(logging.DEBUG, logger=name)
    failures: list[VaultError] = []

    def fails(call: Callable[[], object], error: type[VaultError]) -> None:
        with pytest.raises(error) as caught:
            call()
        failures.append(caught.value)

    with run_in_thread(build_app(vault=state)) as server:
        app_client = client_for(server, state, AppRoleAuth(creds.role_id, creds.secret_id))
        static = client_for(server, state, TokenAuth(static_token))

        # happy paths, renewals, failed renewals (re-login / warning)
        assert app_client.read(STRIPE) == {"api_key": f"{canary}-value"}
        assert static.read(STRIPE) == {"api_key": f"{canary}-value"}
        state.advance(40)
        app_client.read(STRIPE)
        static.read(STRIPE)
        state.inject_fault(403, path_prefix=RENEW, count=2)
        state.advance(40)
        app_client.read(STRIPE)
        static.read(STRIPE)

        # every error path, with the server echoing the canary where it can
        wrong = AppRoleAuth(creds.role_id, f"{canary}-wrong-secret-id")
        fails(lambda: client_for(server, state, wrong).read(STRIPE), VaultAccessDeniedError)
        unknown = TokenAuth(f"{canary}-unknown-token")
        fails(client_for(server, state, unknown).login, VaultAccessDeniedError)
        newline = TokenAuth(f"{canary}-token\nwith-newline")
        fails(client_for(server, state, newline).login, VaultError)
        fails(lambda: static.read("recon/missing"), VaultSecretNotFoundError)
        fails(lambda: static.read("recon/odd"), VaultError)
        for status, body in [
            (403, f'{{"errors": ["permission denied {canary}"]}}'),
            (404, f'{{"errors": ["{canary}"]}}'),
            (500, f'{{"errors": ["{canary}"]}}'),
            (503, None),
            (200, f'{{"data": {{"data": {{"api_key": "{canary}'),
            (418, f"teapot {canary}"),
        ]:
            state.inject_fault(status, path_prefix="/v1/secret/", body=body)
            fails(lambda: static.read(STRIPE), VaultError)
        state.advance(1000)  # both tokens expired; re-login refused with a canary-echoing error
        fails(lambda: static.read(STRIPE), VaultTokenExpiredError)
        state.inject_fault(400, path_prefix=LOGIN, body=f'{{"errors": ["bad {canary}"]}}')
        fails(lambda: app_client.read(STRIPE), VaultAccessDeniedError)

    with run_in_thread(
        build_app(vault=state), ssl_certfile=tls_cert[0], ssl_keyfile=tls_cert[1]
    ) as tls:
        fails(client_for(tls, state, TokenAuth(static_token)).login, VaultUnreachableError)
    fails(VaultClient(closed_port_url(), TokenAuth(static_token)).login, VaultUnreachableError)
    fails(
        VaultClient(silent_server, TokenAuth(static_token), timeout=0.2).login,
        VaultUnreachableError,
    )
    for error in failures:  # as an application would log them
        logging.getLogger("recon.test").error("Vault failed", exc_info=error)

    assert len(failures) == 16
    assert all(e.__cause__ is None and e.__context__ is None for e in failures)
    captured = capsys.readouterr()
    haystack = [
        caplog.text,
        captured.out,
        captured.err,
        *(r.getMessage() for r in caplog.records),
        *(str(e) for e in failures),
        *(repr(e) for e in failures),
        *("".join(traceback.format_exception(e)) for e in failures),
        repr(app_client),
        repr(static),
        repr(AppRoleAuth(creds.role_id, creds.secret_id)),
        repr(TokenAuth(static_token)),
        repr(creds),
    ]
    assert "Logged in to Vault" in caplog.text and "Renewed the Vault token" in caplog.text
    assert [text for text in haystack if canary in text] == []


# -- the sandbox itself ------------------------------------------------------------------------


def test_sandbox_speaks_the_vault_wire_format(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    url = vault_server.url
    creds = sandbox_vault.add_approle(policies=["default", "recon"], secret_id_num_uses=1)

    for headers in [{}, {"X-Vault-Token": "bogus"}]:
        denied = requests.get(url + STRIPE_KV, headers=headers, timeout=5)
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/json"
        assert denied.json() == {"errors": ["permission denied"]}

    body = {"role_id": creds.role_id, "secret_id": creds.secret_id}
    auth = requests.post(url + LOGIN, json=body, timeout=5).json()["auth"]
    assert auth["policies"] == ["default", "recon"]
    assert auth["lease_duration"] == 3600 and auth["renewable"] is True
    assert auth["metadata"] == {"role_name": "recon"}
    used_up = requests.post(url + LOGIN, json=body, timeout=5)
    assert used_up.status_code == 400
    assert used_up.json() == {"errors": ["invalid role or secret ID"]}

    headers = {"X-Vault-Token": auth["client_token"]}
    data = requests.get(url + LOOKUP, headers=headers, timeout=5).json()["data"]
    assert data["ttl"] == 3600 and data["renewable"] is True
    assert data["policies"] == ["default", "recon"] and data["id"] == auth["client_token"]
    assert data["expire_time"].endswith("Z")
    missing = requests.get(url + "/v1/secret/data/none", headers=headers, timeout=5)
    assert (missing.status_code, missing.json()) == (404, {"errors": []})
    bearer = {"Authorization": f"Bearer {auth['client_token']}"}
    assert requests.get(url + LOOKUP, headers=bearer, timeout=5).status_code == 200


def test_sandbox_kv_writes_make_versions(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    kv = hvac.Client(url=vault_server.url, token=sandbox_vault.add_token()).secrets.kv.v2

    assert kv.create_or_update_secret(path="recon/a", secret={"k": "1"})["data"]["version"] == 1
    assert kv.create_or_update_secret(path="recon/a", secret={"k": "2"})["data"]["version"] == 2
    latest = kv.read_secret_version(path="recon/a", raise_on_deleted_version=True)["data"]
    assert latest["data"] == {"k": "2"} and latest["metadata"]["version"] == 2
    first = kv.read_secret_version(path="recon/a", version=1, raise_on_deleted_version=True)
    assert first["data"]["data"] == {"k": "1"}
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv.create_or_update_secret(path="recon/a", secret={"k": "3"}, cas=1)


def test_sandbox_renewal_is_capped_by_the_max_ttl(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    token = sandbox_vault.add_token(ttl=60, max_ttl=100)
    root = sandbox_vault.add_token(ttl=0)
    vault = hvac.Client(url=vault_server.url, token=token)
    sandbox_vault.advance(50)

    renewed = vault.auth.token.renew_self()
    assert renewed["auth"]["lease_duration"] == 50
    assert "capped" in renewed["warnings"][0]
    sandbox_vault.advance(50)
    with pytest.raises(hvac.exceptions.Forbidden):
        vault.auth.token.lookup_self()
    never = hvac.Client(url=vault_server.url, token=root)
    assert never.auth.token.lookup_self()["data"]["expire_time"] is None
    with pytest.raises(hvac.exceptions.InvalidRequest):
        never.auth.token.renew_self()


def test_sandbox_faults_hit_only_the_next_matching_requests(
    sandbox_vault: VaultState, vault_server: RunningServer
) -> None:
    sandbox_vault.inject_fault(503, count=2, path_prefix=HEALTH)
    url = vault_server.url

    statuses = [requests.get(url + HEALTH, timeout=5).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert requests.get(url + LOOKUP, timeout=5).status_code == 403
    sandbox_vault.inject_fault(503, path_prefix=HEALTH)
    assert requests.get(url + HEALTH, timeout=5).json() == {"errors": ["Vault is sealed"]}


def test_route_groups_must_not_collide(sandbox_vault: VaultState) -> None:
    async def endpoint(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    vault = RouteGroup("vault", vault_routes(sandbox_vault))
    stripe_like = RouteGroup(
        "stripe",
        [Route("/v1/charges", endpoint), Route("/v1/charges/{charge}", endpoint)],
    )
    clash = RouteGroup("other", [Route("/v1/secret/data/{key}", endpoint)])

    assert compose([vault, stripe_like]).routes
    with pytest.raises(ValueError, match="collides"):
        compose([vault, clash])


def test_run_in_thread_serves_then_releases_the_port(sandbox_vault: VaultState) -> None:
    with run_in_thread(build_app(vault=sandbox_vault)) as server:
        assert requests.get(server.url + HEALTH, timeout=5).json()["initialized"] is True
        port = server.port

    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
