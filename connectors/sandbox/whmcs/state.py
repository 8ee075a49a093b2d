"""`WhmcsState`: the WHMCS sandbox, answering one API call at a time."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from connectors.sandbox.common import same
from connectors.sandbox.whmcs.actions import Actions
from connectors.sandbox.whmcs.model import JSON, WhmcsAPIError


class WhmcsState(Actions):
    """In-memory WHMCS: clients, currencies, invoices and payments, credentials, faults. Thread-safe.

    `allowed_ips`: the API's IP allow-list (None: any caller); `access_key` lets a caller outside
    it in. `today` decides the `Overdue` filter, `now` the date of a payment sent without one.
    """

    # -- the API -------------------------------------------------------------------------------

    def handle(self, params: Mapping[str, str], client_ip: str) -> tuple[int, JSON]:
        """Answer one API call: (HTTP status, JSON body)."""
        try:
            self._authorise(params, client_ip)
            action = params.get("action", "").lower()
            handler = _ACTIONS.get(action)
            if handler is None:
                raise WhmcsAPIError("Command Not Found")
            with self._lock:
                return 200, {"result": "success", **handler(self, params)}
        except WhmcsAPIError as exc:
            return exc.status, {"result": "error", "message": exc.message}

    def _authorise(self, params: Mapping[str, str], client_ip: str) -> None:
        if self._allowed_ips is not None and client_ip not in self._allowed_ips:
            key = params.get("accesskey", "")
            if self._access_key is None or not same(key, self._access_key):
                raise WhmcsAPIError(f"Invalid IP {client_ip}", 403)
        identifier = params.get("identifier") or params.get("username") or ""
        secret = params.get("secret") or params.get("password") or ""
        ok_identifier = same(identifier, self._identifier)
        ok_secret = same(secret, self._secret)
        if not (ok_identifier and ok_secret):
            raise WhmcsAPIError("Authentication Failed", 403)


_ACTIONS: dict[str, Callable[[WhmcsState, Mapping[str, str]], JSON]] = {
    "getinvoices": WhmcsState._get_invoices,
    "getinvoice": WhmcsState._get_invoice,
    "gettransactions": WhmcsState._get_transactions,
    "getclientsdetails": WhmcsState._get_clients_details,
    "getcurrencies": WhmcsState._get_currencies,
    "addinvoicepayment": WhmcsState._add_invoice_payment,
}
