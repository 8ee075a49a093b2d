"""The WHMCS sandbox over HTTP: `POST /includes/api.php`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connectors.sandbox.whmcs.model import API_PATH
from connectors.sandbox.whmcs.state import WhmcsState


def routes(state: WhmcsState) -> list[Route]:
    """`POST /includes/api.php` over `state`, with `state.faults` applied and logging requests."""

    async def api(request: Request) -> Response:
        params = await _form(request)
        if params.get("responsetype", "").lower() != "json":
            return PlainTextResponse(
                "result=error;message=The WHMCS sandbox answers only responsetype=json;"
            )
        client_ip = request.client.host if request.client else ""
        status, body = state.handle(params, client_ip)
        return JSONResponse(body, status)

    async def action(request: Request) -> str:
        return (await _form(request)).get("action", "")

    return [Route(API_PATH, state.faults.wrap(api, label=action), methods=["POST"])]


async def _form(request: Request) -> dict[str, str]:
    """Request variables as WHMCS reads them: the query string, overridden by the form body."""
    params = dict(request.query_params)
    form = await request.form()
    params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params
