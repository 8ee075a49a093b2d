"""The Stripe sandbox over HTTP: list and retrieve endpoints, Stripe's error shape on faults."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.common import label
from connectors.sandbox.stripe.model import JSON, RATE_LIMIT_BODY, StripeAPIError, public
from connectors.sandbox.stripe.state import StripeState

_RESOURCES = ("balance_transactions", "charges", "refunds", "disputes", "payouts")


def routes(state: StripeState) -> list[BaseRoute]:
    """Stripe's list and retrieve endpoints over `state`, with `state.faults` applied."""

    def listing(resource: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return _answer(
                state,
                request,
                lambda: state.list(resource, dict(request.query_params)),
            )

        return endpoint

    def single(resource: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            object_id = str(request.path_params["id"])
            return _answer(state, request, lambda: public(state.retrieve(resource, object_id)))

        return endpoint

    table: list[BaseRoute] = []
    for resource in _RESOURCES:
        named = label(resource)
        table.append(
            Route(
                f"/v1/{resource}",
                _stripe_errors(state, state.faults.wrap(listing(resource), label=named)),
                methods=["GET"],
            )
        )
        table.append(
            Route(
                f"/v1/{resource}/{{id}}",
                _stripe_errors(state, state.faults.wrap(single(resource), label=named)),
                methods=["GET"],
            )
        )
    return table


def _answer(state: StripeState, request: Request, produce: Callable[[], JSON]) -> Response:
    headers = {"Request-Id": state.next_request_id()}
    if version := request.headers.get("stripe-version"):
        headers["Stripe-Version"] = version
    try:
        state.authorise(request.headers.get("authorization"))
        body = produce()
    except StripeAPIError as exc:
        return JSONResponse(exc.body(), exc.status, headers)
    return Response(
        json.dumps(public(body), indent=2, ensure_ascii=False).encode("utf-8"),
        200,
        headers,
        media_type="application/json",
    )


def _stripe_errors(
    state: StripeState, endpoint: Callable[[Request], Any]
) -> Callable[[Request], Any]:
    """Rewrite the fault plan's generic error answers into Stripe's error shape and headers."""

    async def wrapped(request: Request) -> Response:
        response: Response = await endpoint(request)
        if response.status_code < 400 or not isinstance(response, JSONResponse):
            return response
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            return response
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            body = _error_body(response.status_code)
            error = body["error"]
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() in ("retry-after", "request-id", "stripe-version")
        }
        headers.setdefault("Request-Id", state.next_request_id())
        should_retry = state.should_retry.get(response.status_code)
        if error.get("code") == "lock_timeout":
            should_retry = "true"
        if should_retry is not None:
            headers["Stripe-Should-Retry"] = should_retry
        return JSONResponse(body, response.status_code, headers)

    return wrapped


def _error_body(status: int) -> JSON:
    if status == 429:
        return json.loads(json.dumps(RATE_LIMIT_BODY))  # type: ignore[no-any-return]
    if status >= 500:
        return {"error": {"message": "An unknown error occurred", "type": "api_error"}}
    return StripeAPIError(status, "The request could not be processed.").body()
