"""The shared HTTP policy over real HTTP: the fault matrix (T2), bounds, jitter, budget, logs, TLS."""

from __future__ import annotations

import email.utils
import inspect
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.http import (
    CallInfo,
    HttpPolicy,
    PolicyClient,
    ProviderError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderUnavailableError,
    parse_retry_after,
    redact_url,
)
from connectors.sandbox.faults import FaultPlan, FaultRule
from connectors.sandbox.serve import RunningServer, run_in_thread
from recon.redaction import register_secret
from tests.integration.whmcs_fixtures import (
    CANARY,
    RecordingSleep,
    fast_policy,
    self_signed_cert,
    wait_for_requests,
)

__all__ = ["self_signed_cert"]

PROVIDER = "Acme"


@dataclass
class Shop:
    """A tiny provider: GET lists items, POST creates one (a non-idempotent write)."""

    created: int = 0


def shop_routes(shop: Shop) -> list[Route]:
    async def list_items(request: Request) -> Response:
        page = int(request.query_params.get("page", "1"))
        return JSONResponse(
            {"page": page, "items": [{"id": f"it_{page}_{i}", "amount": "1.00"} for i in range(40)]}
        )

    async def create_item(_request: Request) -> Response:
        shop.created += 1
        return JSONResponse({"id": f"it_new_{shop.created}"}, status_code=201)

    return [
        Route("/items", list_items, methods=["GET"]),
        Route("/items", create_item, methods=["POST"]),
    ]


@dataclass
class ShopServer:
    server: RunningServer
    plan: FaultPlan
    shop: Shop


@pytest.fixture(scope="module")
def shop_server() -> Iterator[ShopServer]:
    """One server for the module; the per-test fixtures below reset its faults, log and shop."""
    plan, shop = FaultPlan(seed=3), Shop()
    app = Starlette(routes=plan.wrap_routes(shop_routes(shop)))
    with run_in_thread(app) as running:
        yield ShopServer(running, plan, shop)


@pytest.fixture
def server(shop_server: ShopServer) -> RunningServer:
    shop_server.plan.clear()
    shop_server.plan.clear_log()
    shop_server.shop.created = 0
    return shop_server.server


@pytest.fixture
def plan(shop_server: ShopServer, server: RunningServer) -> FaultPlan:
    return shop_server.plan


@pytest.fixture
def shop(shop_server: ShopServer, server: RunningServer) -> Shop:
    return shop_server.shop


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def client(server: RunningServer, policy: HttpPolicy, **kwargs: Any) -> PolicyClient:
    return PolicyClient(PROVIDER, policy, base_url=server.url, **kwargs)


# -- recovery -------------------------------------------------------------------------------------

TRANSIENT: dict[str, Callable[[FaultPlan], FaultRule]] = {
    "500": lambda p: p.status(500, path="/items", count=2),
    "502": lambda p: p.status(502, path="/items", count=2),
    "503": lambda p: p.status(503, path="/items", count=2),
    "504": lambda p: p.status(504, path="/items", count=2),
    "429": lambda p: p.rate_limit(retry_after=1, path="/items", count=2),
    "read timeout": lambda p: p.timeout(0.8, path="/items", count=2),
    "slow but in time": lambda p: p.slow(0.2, path="/items", count=2),
    "connection reset": lambda p: p.reset(path="/items", count=2),
    "truncated json": lambda p: p.truncate(0.5, path="/items", count=2),
}


@pytest.mark.parametrize("fault", list(TRANSIENT))
def test_idempotent_call_recovers_from_transient_faults(
    fault: str, server: RunningServer, plan: FaultPlan, sleep: RecordingSleep
) -> None:
    TRANSIENT[fault](plan)
    with client(server, fast_policy(sleep)) as http:
        response = http.request("GET", "/items", params={"page": 2}, expect_json=True)

    assert response.status_code == 200
    assert len(response.json()["items"]) == 40
    expected_attempts = 1 if fault == "slow but in time" else 3
    assert wait_for_requests(plan, expected_attempts, path="/items") == expected_attempts
    assert len(sleep.delays) == expected_attempts - 1
    if fault == "429":
        assert sleep.delays == [1.0, 1.0]  # Retry-After honoured, not the (shorter) backoff


PERSISTENT: dict[str, tuple[Callable[[FaultPlan], FaultRule], type[ProviderError], str]] = {
    "503": (lambda p: p.status(503, path="/items"), ProviderUnavailableError, "HTTP 503"),
    "500": (lambda p: p.status(500, path="/items"), ProviderUnavailableError, "HTTP 500"),
    "429": (
        lambda p: p.rate_limit(retry_after=1, path="/items"),
        ProviderRateLimitedError,
        "rate-limited",
    ),
    "read timeout": (
        lambda p: p.timeout(0.7, path="/items"),
        ProviderUnavailableError,
        "read timeout",
    ),
    "connection reset": (
        lambda p: p.reset(path="/items"),
        ProviderUnavailableError,
        "connection closed mid-response",
    ),
    "truncated json": (
        lambda p: p.truncate(0.3, path="/items"),
        ProviderResponseError,
        "invalid JSON body",
    ),
}


@pytest.mark.parametrize("fault", list(PERSISTENT))
def test_persistent_faults_end_in_a_typed_error_after_the_maximum_attempts(
    fault: str, server: RunningServer, plan: FaultPlan, sleep: RecordingSleep
) -> None:
    arm, error, last = PERSISTENT[fault]
    rule = arm(plan)
    policy = fast_policy(sleep, max_attempts=3)
    sent: list[object] = []
    with (
        client(server, policy, before_request=sent.append) as http,
        pytest.raises(error) as caught,
    ):
        http.request("GET", "/items", params={"token": CANARY}, expect_json=True)

    exc = caught.value
    assert exc.attempts == 3
    # The client is synchronous and now closed: what it sent is final. Every request the server
    # answered is logged, and each arrival is counted by the rule before any delay, so once three
    # are answered the arrivals equal the attempts sent: never more than the policy's maximum.
    assert len(sent) == 3
    assert wait_for_requests(plan, 3, path="/items") == 3
    assert rule.matched == 3 and plan.count(path="/items") == 3
    assert len(sleep.delays) == 2
    message = str(exc)
    assert message.startswith(PROVIDER)
    assert "GET /items" in message and "3 attempts" in message and last in message
    assert CANARY not in message and "token" not in message


# -- what is never retried --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_non_retryable_4xx_is_tried_exactly_once(
    status: int, server: RunningServer, plan: FaultPlan, sleep: RecordingSleep
) -> None:
    register_secret(CANARY)
    plan.status(status, path="/items", body={"message": f"account {CANARY} may not list items"})
    with client(server, fast_policy(sleep)) as http, pytest.raises(ProviderRejectedError) as caught:
        http.request("GET", "/items", expect_json=True)

    assert plan.count(path="/items") == 1
    assert sleep.delays == []
    exc = caught.value
    assert exc.status == status and exc.attempts == 1
    assert "may not list items" in exc.provider_message
    assert f"HTTP {status}" in str(exc)
    assert CANARY not in str(exc) and "***" in str(exc)


def test_write_is_not_retried_when_its_outcome_is_unknown(
    server: RunningServer, plan: FaultPlan, shop: Shop, sleep: RecordingSleep
) -> None:
    plan.status(502, path="/items", method="POST", after=True, count=1)  # processed, then 502
    with client(server, fast_policy(sleep)) as http:
        with pytest.raises(ProviderUnavailableError) as caught:
            http.request("POST", "/items", json={"amount": "1.00"})
        assert caught.value.outcome_unknown
        assert "may have been applied" in str(caught.value)
        assert plan.count(path="/items", method="POST") == 1 and shop.created == 1

        plan.truncate(path="/items", method="POST")
        with pytest.raises(ProviderResponseError):
            http.request("POST", "/items", json={"amount": "1.00"}, expect_json=True)
        assert plan.count(path="/items", method="POST") == 2 and shop.created == 2
    assert sleep.delays == []


def test_write_is_retried_when_the_provider_did_not_act(
    server: RunningServer, plan: FaultPlan, shop: Shop, sleep: RecordingSleep
) -> None:
    plan.rate_limit(retry_after=0, path="/items", method="POST", count=2)
    with client(server, fast_policy(sleep)) as http:
        response = http.request("POST", "/items", json={"amount": "1.00"}, expect_json=True)
    assert response.status_code == 201
    assert plan.count(path="/items", method="POST") == 3
    assert shop.created == 1


def test_connection_refused_is_retried_then_reported(sleep: RecordingSleep) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        PolicyClient(PROVIDER, fast_policy(sleep, max_attempts=3)) as http,
        pytest.raises(ProviderUnavailableError) as caught,
    ):
        http.request("POST", f"http://127.0.0.1:{port}/items")  # safe to retry: never sent
    assert caught.value.attempts == 3 and len(sleep.delays) == 2
    assert "connection failed" in str(caught.value)


# -- bounds: attempts, jitter, budget, Retry-After ----------------------------------------------------


@pytest.mark.parametrize("bad", [0, 6, 10])
def test_a_policy_cannot_allow_more_than_five_attempts(bad: int) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        HttpPolicy(max_attempts=bad)


@pytest.mark.parametrize("max_attempts", [1, 2, 5])
def test_attempts_never_exceed_the_policy_maximum(
    max_attempts: int, server: RunningServer, plan: FaultPlan, sleep: RecordingSleep
) -> None:
    plan.status(503, path="/items")
    policy = fast_policy(sleep, max_attempts=max_attempts)
    with client(server, policy) as http, pytest.raises(ProviderUnavailableError):
        http.request("GET", "/items")
    assert plan.count(path="/items") == max_attempts
    assert len(sleep.delays) == max_attempts - 1


def test_backoff_is_exponential_with_full_jitter(server: RunningServer, plan: FaultPlan) -> None:
    plan.status(503, path="/items")
    runs = []
    for seed in (1, 2, 3):
        sleep = RecordingSleep()
        policy = fast_policy(sleep, seed=seed, max_attempts=5, backoff_base=0.1, backoff_cap=0.3)
        with client(server, policy) as http, pytest.raises(ProviderUnavailableError):
            http.request("GET", "/items")
        ceilings = [0.1, 0.2, 0.3, 0.3]  # base * 2^n, capped
        assert len(sleep.delays) == 4
        assert all(0 <= d <= c for d, c in zip(sleep.delays, ceilings, strict=True))
        runs.append(tuple(sleep.delays))
    assert len(set(runs)) == 3  # jitter: no two runs wait the same
    assert all(len(set(run)) > 1 for run in runs)


def test_retries_stop_at_the_time_budget(
    server: RunningServer, plan: FaultPlan, sleep: RecordingSleep
) -> None:
    plan.status(503, path="/items")
    policy = fast_policy(
        sleep,
        max_attempts=5,
        backoff_base=0.4,
        backoff_cap=10,
        retry_budget=1.0,
        random=lambda: 1.0,
    )
    with client(server, policy) as http, pytest.raises(ProviderUnavailableError) as caught:
        http.request("GET", "/items")
    assert sleep.delays == [0.4]  # the next wait (0.8 s) would have crossed the 1 s budget
    assert caught.value.attempts == 2 and plan.count(path="/items") == 2
    assert sum(sleep.delays) <= policy.retry_budget


def test_retry_after_beyond_the_budget_fails_at_once(
    server: RunningServer, plan: FaultPlan, sleep: RecordingSleep
) -> None:
    plan.rate_limit(retry_after=120, path="/items")
    with (
        client(server, fast_policy(sleep, retry_budget=30)) as http,
        pytest.raises(ProviderRateLimitedError) as caught,
    ):
        http.request("GET", "/items")
    assert caught.value.retry_after == 120 and caught.value.attempts == 1
    assert sleep.delays == [] and plan.count(path="/items") == 1
    assert "wait 120 s" in str(caught.value)


def test_retry_after_as_an_http_date_is_honoured(
    server: RunningServer, plan: FaultPlan, sleep: RecordingSleep
) -> None:
    when = email.utils.formatdate(time.time() + 4, usegmt=True)
    plan.rate_limit(retry_after=when, path="/items", count=1)
    with client(server, fast_policy(sleep, backoff_cap=0.5)) as http:
        assert http.request("GET", "/items").status_code == 200
    assert len(sleep.delays) == 1 and 2.0 < sleep.delays[0] <= 4.0


def test_retry_after_parsing() -> None:
    now = 1_750_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-3", now) is None


# -- hooks, logs, TLS ---------------------------------------------------------------------------------


class QuotaSpent(Exception):
    pass


def test_before_request_hook_sees_every_attempt_and_can_stop_calls(
    server: RunningServer, plan: FaultPlan, sleep: RecordingSleep
) -> None:
    seen: list[CallInfo] = []
    statuses: list[int] = []

    def quota(info: CallInfo) -> None:
        if len(seen) >= 3:
            raise QuotaSpent(f"{info.provider} {info.endpoint}: daily quota spent")
        seen.append(info)

    plan.status(500, path="/items", count=1)
    with client(
        server,
        fast_policy(sleep),
        before_request=quota,
        after_response=lambda _info, status: statuses.append(status),
    ) as http:
        http.request("GET", "/items", endpoint="items")
        http.request("GET", "/items", params={"secret": CANARY}, endpoint="items")
        with pytest.raises(QuotaSpent):
            http.request("GET", "/items", endpoint="items")
        assert http.call_counts() == {(PROVIDER, "items"): 3}

    assert [i.attempt for i in seen] == [1, 2, 1]
    assert statuses == [500, 200, 200]
    assert plan.count(path="/items") == 3  # the refused call never reached the provider
    assert all(CANARY not in i.url for i in seen)


def test_requests_are_logged_redacted_without_headers_or_bodies(
    server: RunningServer, plan: FaultPlan, sleep: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    plan.status(503, path="/items", count=1)
    with client(server, fast_policy(sleep), headers={"Authorization": f"Bearer {CANARY}"}) as http:
        http.request(
            "GET",
            "/items",
            params={"page": 2, "access_token": CANARY, "q": "x"},
            headers={"X-Api-Key": CANARY},
        )
        http.request("POST", "/items", json={"note": CANARY})

    lines = [r.getMessage() for r in caplog.records if r.name == "recon.http"]
    assert len([line for line in lines if "->" in line]) == 3
    assert any(
        "GET" in line and "/items?page=2&access_token=***&q=x -> 503" in line for line in lines
    )
    assert any("-> 200 in " in line and " ms " in line for line in lines)
    assert any("retry 1/3" in line for line in lines)
    ours = [r for r in caplog.records if not r.name.startswith("uvicorn")]  # not the fake provider
    assert any(r.name == "httpx" for r in ours)  # httpx's own request log is masked too
    assert all(CANARY not in r.getMessage() for r in ours)


def test_redact_url_masks_secret_parameters_and_user_info() -> None:
    url = f"https://user:{CANARY}@bank.example/api?Token={CANARY}&page=2&secret_id=x#frag"
    shown = redact_url(url)
    assert CANARY not in shown
    assert shown == "https://bank.example/api?Token=***&page=2&secret_id=***"


def test_tls_is_always_verified(self_signed_cert: tuple[str, str], sleep: RecordingSleep) -> None:
    names = set(inspect.signature(PolicyClient).parameters) | set(
        inspect.signature(HttpPolicy).parameters
    )
    assert not names & {"verify", "insecure", "verify_tls", "skip_verify", "tls_verify"}
    cert, key = self_signed_cert
    app = Starlette(routes=shop_routes(Shop()))
    with run_in_thread(app, ssl_certfile=cert, ssl_keyfile=key) as tls_server:
        assert tls_server.url.startswith("https://")
        with client(tls_server, fast_policy(sleep)) as untrusting:
            with pytest.raises(ProviderUnavailableError, match="TLS certificate verification"):
                untrusting.request("GET", "/items")
            assert sleep.delays == []  # not a transient fault: never retried
        with client(tls_server, fast_policy(sleep), ca_cert=cert) as trusting:
            assert trusting.request("GET", "/items", expect_json=True).status_code == 200


def test_the_underlying_client_verifies_certificates() -> None:
    with PolicyClient(PROVIDER, fast_policy()) as http:
        transport = http._client._transport
        assert isinstance(transport, httpx.HTTPTransport)
        context = transport._pool._ssl_context
        assert context is not None and context.verify_mode.name == "CERT_REQUIRED"
        assert context.check_hostname
