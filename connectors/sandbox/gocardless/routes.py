"""The Bank Account Data sandbox over HTTP: the routes table, the JSON wrapper, consent pages."""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.common import label
from connectors.sandbox.gocardless.model import API, CONSENT_PATH, JSON, SCOPES, BadAPIError, flat
from connectors.sandbox.gocardless.state import GoCardlessState

Handler = Callable[[Request], Awaitable[Response]]
Call = Callable[[GoCardlessState, Request], Awaitable[Any]]


def routes(state: GoCardlessState) -> list[BaseRoute]:
    """Bank Account Data over `state` under `/api/v2/...` (with and without trailing slash) and
    the consent page under `/psd2/start/...`, with `state.faults` applied to every endpoint."""
    served: list[BaseRoute] = []
    for path, name, handler, method in _api_table(state):
        wrapped = state.faults.wrap(handler, label=label(name))
        full = f"{API}/{path}"
        served.append(Route(full, wrapped, methods=[method]))
        served.append(Route(full.rstrip("/"), wrapped, methods=[method]))
    consent = f"{CONSENT_PATH}/{{id}}/{{institution}}"
    for path, name, handler in (
        (consent, "consent", _consent_page(state)),
        (f"{consent}/allow", "consent/allow", _decide(state, allow=True)),
        (f"{consent}/deny", "consent/deny", _decide(state, allow=False)),
    ):
        served.append(Route(path, state.faults.wrap(handler, label=label(name)), methods=["GET"]))
    return served


def _api_table(state: GoCardlessState) -> list[tuple[str, str, Handler, str]]:
    """(path under `/api/v2/`, fault label, handler, method) for every API endpoint."""

    def api(call: Call, *, auth: bool = True, created: bool = False) -> Handler:
        return _api(state, call, auth=auth, created=created)

    table: list[tuple[str, str, Handler, str]] = [
        ("token/new/", "token/new", api(_token_new, auth=False), "POST"),
        ("token/refresh/", "token/refresh", api(_token_refresh, auth=False), "POST"),
        ("institutions/", "institutions", api(_institutions), "GET"),
        ("institutions/{id}/", "institution", api(_institution), "GET"),
        ("agreements/enduser/", "agreements", api(_agreements, created=True), "POST"),
        ("agreements/enduser/{id}/", "agreement", api(_agreement), "GET"),
        ("requisitions/", "requisitions", api(_requisitions, created=True), "POST"),
        ("requisitions/{id}/", "requisition", api(_requisition), "GET"),
        ("accounts/{id}/", "account", api(_account), "GET"),
    ]
    table += [(f"accounts/{{id}}/{s}/", s, api(_scoped(s)), "GET") for s in SCOPES]
    return table


def _api(state: GoCardlessState, call: Call, *, auth: bool, created: bool) -> Handler:
    """A JSON endpoint: bearer check, the call, its answer (201 when `created`) or its error."""

    async def endpoint(request: Request) -> Response:
        try:
            if auth:
                state.authorise(request.headers.get("authorization"))
            result = await call(state, request)
        except BadAPIError as exc:
            return JSONResponse(exc.body, exc.status, exc.headers or None)
        if isinstance(result, Response):
            return result
        return JSONResponse(result, 201 if created else 200)

    return endpoint


async def _token_new(state: GoCardlessState, request: Request) -> Any:
    return state.token_new(await _json_body(request))


async def _token_refresh(state: GoCardlessState, request: Request) -> Any:
    return state.token_refresh(await _json_body(request))


async def _institutions(state: GoCardlessState, request: Request) -> Any:
    return state.institutions(request.query_params.get("country"))


async def _institution(state: GoCardlessState, request: Request) -> Any:
    return state.institution(request.path_params["id"])


async def _agreements(state: GoCardlessState, request: Request) -> Any:
    return state.create_agreement(await _json_body(request))


async def _agreement(state: GoCardlessState, request: Request) -> Any:
    return state.agreement(request.path_params["id"])


async def _requisitions(state: GoCardlessState, request: Request) -> Any:
    return state.create_requisition(await _json_body(request), str(request.base_url))


async def _requisition(state: GoCardlessState, request: Request) -> Any:
    return state.requisition(request.path_params["id"])


async def _account(state: GoCardlessState, request: Request) -> Any:
    return state.account(request.path_params["id"])


def _scoped(scope: str) -> Call:
    async def data(state: GoCardlessState, request: Request) -> Any:
        body, headers = state.account_data(
            request.path_params["id"], scope, dict(request.query_params)
        )
        return JSONResponse(body, 200, headers)

    return data


def _consent_page(state: GoCardlessState) -> Handler:
    async def page(request: Request) -> Response:
        requisition_id = request.path_params["id"]
        institution_id = request.path_params["institution"]
        try:
            found, accounts = state.consent(requisition_id, institution_id)
        except BadAPIError:
            return HTMLResponse("<h1>Link not found</h1>", 404)
        base = f"{CONSENT_PATH}/{requisition_id}/{institution_id}"
        items = "".join(f"<li>{html.escape(a)}</li>" for a in accounts)
        return HTMLResponse(
            "<!doctype html><html><head><title>Sandbox bank consent</title></head><body>"
            f"<h1>{html.escape(institution_id)}</h1>"
            f"<p>Share these accounts with reference {html.escape(found.reference)}?</p>"
            f"<ul>{items}</ul>"
            f'<a id="allow" href="{base}/allow">Allow access</a> '
            f'<a id="deny" href="{base}/deny">Cancel</a>'
            "</body></html>"
        )

    return page


def _decide(state: GoCardlessState, *, allow: bool) -> Handler:
    async def answer(request: Request) -> Response:
        try:
            target = state.give_consent(
                request.path_params["id"], request.path_params["institution"], allow
            )
        except BadAPIError:
            return HTMLResponse("<h1>Link not found</h1>", 404)
        return RedirectResponse(target, status_code=302)

    return answer


async def _json_body(request: Request) -> JSON:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise flat(400, "Invalid JSON", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise flat(400, "Invalid JSON", "The request body must be a JSON object.")
    return body
