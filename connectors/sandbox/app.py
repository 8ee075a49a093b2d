"""One Starlette app for every sandbox provider, each mounted under its real paths.

Providers share the host (Vault and Stripe both live under `/v1/`), so each contributes a
`RouteGroup` and `compose` refuses groups whose routes would answer each other's requests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from connectors.sandbox.gocardless import GoCardlessState
from connectors.sandbox.gocardless import routes as gocardless_routes
from connectors.sandbox.gocardless_payments import GoCardlessPaymentsState
from connectors.sandbox.gocardless_payments import routes as gocardless_payments_routes
from connectors.sandbox.stripe import StripeState
from connectors.sandbox.stripe import routes as stripe_routes
from connectors.sandbox.vault import VaultState
from connectors.sandbox.vault import routes as vault_routes
from connectors.sandbox.whmcs import WhmcsState
from connectors.sandbox.whmcs import routes as whmcs_routes


@dataclass(frozen=True)
class RouteGroup:
    """The routes of one fake provider."""

    provider: str
    routes: Sequence[BaseRoute]


def build_app(
    *,
    vault: VaultState | None = None,
    whmcs: WhmcsState | None = None,
    stripe: StripeState | None = None,
    gocardless: GoCardlessState | None = None,
    gocardless_payments: GoCardlessPaymentsState | None = None,
) -> Starlette:
    """The sandbox app: Vault (`/v1/sys`, `/v1/auth`, `/v1/<kv mount>/data`) and, when given
    their states, WHMCS (`/includes/api.php`), Stripe (`/v1/charges`, `/v1/payouts`, ...),
    GoCardless Bank Account Data (`/api/v2/...`) and GoCardless Payments (under
    `/gocardless-payments`, since the real API has no path prefix of its own).

    The states are reachable as `app.state.<provider>` (e.g. `app.state.vault`).
    """
    vault = vault if vault is not None else VaultState()
    groups = [RouteGroup("vault", vault_routes(vault))]
    if whmcs is not None:
        groups.append(RouteGroup("whmcs", whmcs_routes(whmcs)))
    if stripe is not None:
        groups.append(RouteGroup("stripe", stripe_routes(stripe)))
    if gocardless is not None:
        groups.append(RouteGroup("gocardless", gocardless_routes(gocardless)))
    if gocardless_payments is not None:
        groups.append(
            RouteGroup("gocardless_payments", gocardless_payments_routes(gocardless_payments))
        )
    app = compose(groups)
    app.state.vault = vault
    app.state.whmcs = whmcs
    app.state.stripe = stripe
    app.state.gocardless = gocardless
    app.state.gocardless_payments = gocardless_payments
    return app


def compose(groups: Sequence[RouteGroup]) -> Starlette:
    """A Starlette app serving every group; raises ValueError if two groups' routes collide."""
    check_disjoint(groups)
    return Starlette(routes=[route for group in groups for route in group.routes])


def check_disjoint(groups: Sequence[RouteGroup]) -> None:
    """Raise ValueError if a route of one group would match a request meant for another group."""
    for group in groups:
        for other in groups:
            if other is group:
                continue
            for mine in _plain_routes(group):
                sample = re.sub(r"{[^}]*}", "0", mine.path)
                for theirs in _plain_routes(other):
                    if theirs.path_regex.match(sample) and _methods_overlap(mine, theirs):
                        raise ValueError(
                            f"sandbox route {mine.path} of {group.provider} collides with "
                            f"{theirs.path} of {other.provider}"
                        )


def _plain_routes(group: RouteGroup) -> list[Route]:
    return [route for route in group.routes if isinstance(route, Route)]


def _methods_overlap(a: Route, b: Route) -> bool:
    return a.methods is None or b.methods is None or bool(a.methods & b.methods)
