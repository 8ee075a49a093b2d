"""WHMCS answers and write-back failures as typed errors.

`check_answer` maps a decoded body to the `ProviderError` family (WHMCS's `{"result": "error"}`
becomes `ProviderRejectedError` with WHMCS's own message); the payment errors say why one payment
cannot be applied, so the others may go on.
"""

from __future__ import annotations

from typing import Any

from connectors.http import (
    ProviderRejectedError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from connectors.whmcs.payments import RecordedPayment
from recon.errors import ReconError
from recon.money import format_amount


class WhmcsPaymentConflictError(ReconError):
    """A payment cannot be applied safely (transid already used differently, currency mismatch)."""


class WhmcsPaymentRefusedError(WhmcsPaymentConflictError):
    """WHMCS refused to add this one payment (e.g. the invoice is Cancelled); others may go on."""


def check_answer(body: Any, context: dict[str, Any], status: int) -> dict[str, Any]:
    """The success body of an answer; a typed ProviderError when it is not one."""
    if not isinstance(body, dict):
        raise ProviderResponseError(
            **context, status=status, detail="the body is not a JSON object"
        )
    if body.get("result") == "error" or body.get("status") == "error":
        raise ProviderRejectedError(
            **context,
            status=status,
            provider_message=str(body.get("message") or "unspecified error"),
        )
    if body.get("result") != "success":
        raise ProviderResponseError(
            **context, status=status, detail='no "result": "success" in the body'
        )
    return body


def server_finished(exc: ProviderUnavailableError | ProviderResponseError) -> bool:
    """Whether WHMCS itself answered, so a lookup afterwards shows whether the write happened.

    A 2xx with a cut body, a 500 or a 503 come from WHMCS after it finished; a timeout, a dropped
    connection or a proxy's 502/504 may leave the write still running, and a retry could apply it
    twice: then the caller gets the error, and the next run's lookup by transid settles it.
    """
    return isinstance(exc, ProviderResponseError) or exc.status in (500, 503)


def check_same(existing: RecordedPayment, amount_minor: int) -> None:
    if existing.amount_minor != amount_minor:
        raise WhmcsPaymentConflictError(
            f"WHMCS invoice {existing.invoice_id} already records transid {existing.transid} "
            f"for {format_amount(existing.amount_minor, existing.currency)} "
            f"{existing.currency}, not {format_amount(amount_minor, existing.currency)}; "
            "check the payment by hand."
        )
