"""WHMCS API client (`/includes/api.php`) on the shared HTTP policy, and the canonical frames.

Every call is a form-encoded POST with `responsetype=json`; the API credentials (and the optional
`accesskey` that bypasses WHMCS's IP allow-list) travel in the form body, are registered with the
redaction layer and never logged. Reads are idempotent and retried by `PolicyClient`; a WHMCS
`{"result": "error"}` answer raises `ProviderRejectedError` with WHMCS's own message.

Each read response is handed verbatim to the optional `on_page(endpoint, request_key, status,
body)` callback before it is parsed, so the landing task can store raw pages first.

The canonical frames are built by `connectors.whmcs.wire`; errors by `connectors.whmcs.errors`.

`add_invoice_payment` is idempotent by `transid`: it looks the transid up on the invoice first and
returns the payment already there. A failed write is never retried blindly: it looks the transid up
again, and tries once more only when WHMCS itself answered (500/503, or a cut body) so that the
lookup is conclusive; after a timeout or a proxy error the write may still land, so it raises
(`outcome_unknown`) and leaves it to the next run's lookup. A payment is never recorded twice.
Before it adds anything it reads the invoice as WHMCS shows it now (`invoice_ledger`: balance
and recorded payments) and asks the caller's `guard` whether one of those payments already is
this one (recorded by hand, or by a gateway module, with or without a transid); and it never
adds more than the invoice has open. When WHMCS refuses the payment itself (HTTP 200 with an
error, e.g. "It is not possible to add a payment to an invoice that is Cancelled") it raises
`WhmcsPaymentRefusedError`, a `WhmcsPaymentConflictError` for that one payment; a 403 (credentials
or IP) stays a `ProviderRejectedError` for the whole run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pandas as pd

from connectors.closing import Closing
from connectors.http import (
    BeforeRequest,
    HttpPolicy,
    PolicyClient,
    ProviderRejectedError,
    ProviderResponseError,
    ProviderUnavailableError,
)
from connectors.whmcs.errors import (
    WhmcsPaymentConflictError,
    WhmcsPaymentRefusedError,
    check_answer,
    check_same,
    server_finished,
)
from connectors.whmcs.payments import InvoiceLedger, PaymentGuard, RecordedPayment
from connectors.whmcs.wire import (
    PROVIDER,
    WhmcsDataError,
    as_int,
    as_minor,
    as_text,
    currencies_of,
    parse_invoices,
    parse_recorded,
    recorded_row,
    records_of,
    request_key,
)
from recon.errors import ConfigError
from recon.money import format_amount, minor_exponent, normalise_currency
from recon.redaction import register_secret
from recon.secrets import WHMCS_API_IDENTIFIER, WHMCS_API_SECRET

if TYPE_CHECKING:
    from recon.secrets import SecretResolver
    from recon.tenants import WhmcsSettings

logger = logging.getLogger("recon.whmcs")

API_PATH = "/includes/api.php"

OnPage = Callable[[str, str, int, bytes], None]
"""`on_page(endpoint, request_key, status, body)`: a raw read response, before parsing."""


INVOICE_PAGE_SIZE = 250
"""Invoices asked per GetInvoices page (`limitnum`; WHMCS's default is 25, no documented maximum).
Against the sandbox 100, 250, 500 and 1,000 page 50,000 invoices in the same 2-3 s (the bytes are
the same; a local round trip is about a millisecond), so the choice is for a real installation,
where each call boots WHMCS and authenticates (typically 0.1-0.3 s): 250 makes 201 calls instead
of 501 while a page stays near 170 kB, well inside a shared host's PHP memory and time limits."""


class WhmcsClient(Closing):
    """The WHMCS API over `PolicyClient`; a context manager that closes its connections."""

    def __init__(
        self,
        base_url: str,
        identifier: str,
        secret: str,
        *,
        policy: HttpPolicy | None = None,
        access_key: str | None = None,
        on_page: OnPage | None = None,
        ca_cert: str | None = None,
        before_request: BeforeRequest | None = None,
    ) -> None:
        for value in (identifier, secret, access_key):
            register_secret(value)
        self._credentials = {"identifier": identifier, "secret": secret}
        if access_key:
            self._credentials["accesskey"] = access_key
        root = base_url.rstrip("/")
        self.url = root if root.endswith(API_PATH) else root + API_PATH
        self._path = urlsplit(self.url).path
        self.policy = policy or HttpPolicy()
        self._on_page = on_page
        self._http = PolicyClient(
            PROVIDER, self.policy, ca_cert=ca_cert, before_request=before_request
        )
        self._currencies: dict[int, str] | None = None
        self._client_currencies: dict[int, str] = {}

    # -- raw calls -----------------------------------------------------------------------------

    def call(
        self,
        action: str,
        params: Mapping[str, object] | None = None,
        *,
        idempotent: bool = True,
        record: bool = True,
    ) -> dict[str, Any]:
        """One API action; the decoded success body. `record`: hand the raw body to `on_page`."""
        public = {k: str(v) for k, v in (params or {}).items() if v is not None}
        form = {**public, "action": action, "responsetype": "json", **self._credentials}
        response = self._http.request(
            "POST", self.url, data=form, idempotent=idempotent, expect_json=True, endpoint=action
        )
        if record and self._on_page is not None:
            self._on_page(action, request_key(public), response.status_code, response.content)
        return check_answer(
            json.loads(response.content), self._context(action), response.status_code
        )

    def _context(self, action: str) -> dict[str, Any]:
        return {"provider": PROVIDER, "method": "POST", "path": self._path, "endpoint": action}

    def iter_invoices(
        self, status: str | None = None, page_size: int = INVOICE_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every invoice (optionally of one status, or `Overdue`), paging by id until the total."""
        if not 1 <= page_size <= 1000:
            raise ValueError("page_size must be between 1 and 1000")
        start, seen, total = 0, set[int](), 0
        while True:
            body = self.call(
                "GetInvoices",
                {
                    "limitstart": start,
                    "limitnum": page_size,
                    "orderby": "id",
                    "order": "asc",
                    "status": status,
                },
            )
            total = as_int(body.get("totalresults"), "GetInvoices totalresults")
            rows = records_of(body.get("invoices"), "invoice", "GetInvoices")
            for row in rows:
                invoice_id = as_int(row.get("id"), "GetInvoices invoice id")
                if invoice_id not in seen:
                    seen.add(invoice_id)
                    yield row
            start += len(rows)
            if not rows or start >= total:
                break
        if len(seen) < total:
            raise ProviderResponseError(
                **self._context("GetInvoices"),
                status=200,
                detail=f"WHMCS reported {total} invoices but paging returned {len(seen)}",
            )

    def get_invoice(self, invoice_id: int) -> dict[str, Any]:
        """One invoice with its balance, items and `transactions` (a list; WHMCS sends "")."""
        body = self.call("GetInvoice", {"invoiceid": invoice_id})
        body["transactions"] = records_of(body.get("transactions"), "transaction", "GetInvoice")
        return body

    def invoice_ledger(self, invoice_id: int) -> InvoiceLedger:
        """The invoice's currency, open balance and recorded payments, as WHMCS shows them now."""
        invoice = self.get_invoice(invoice_id)
        code = self.client_currency(as_int(invoice.get("userid"), "GetInvoice userid"))
        what = f"WHMCS invoice {invoice_id}"
        payments = []
        for row in invoice["transactions"]:
            record = recorded_row({"invoiceid": invoice_id, **row}, code)
            payments.append(RecordedPayment(**record, created=False))
        return InvoiceLedger(
            invoice_id=invoice_id,
            currency=code,
            status=as_text(invoice.get("status")),
            balance_minor=as_minor(invoice.get("balance"), code, f"{what} balance"),
            payments=tuple(sorted(payments, key=lambda p: p.whmcs_txn_id)),
        )

    def iter_transactions(
        self,
        *,
        invoice_id: int | None = None,
        client_id: int | None = None,
        transid: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """WHMCS's payments ledger (`tblaccounts` rows), optionally filtered."""
        body = self.call(
            "GetTransactions", {"invoiceid": invoice_id, "clientid": client_id, "transid": transid}
        )
        yield from records_of(body.get("transactions"), "transaction", "GetTransactions")

    def get_client(self, client_id: int) -> dict[str, Any]:
        """GetClientsDetails' `client` object."""
        body = self.call("GetClientsDetails", {"clientid": client_id})
        client = body.get("client")
        return client if isinstance(client, dict) else body

    def get_currencies(self) -> dict[int, str]:
        """WHMCS currency id -> ISO code (cached for the client's lifetime)."""
        if self._currencies is None:
            body = self.call("GetCurrencies")
            self._currencies = currencies_of(body)
        return dict(self._currencies)

    def client_currency(self, client_id: int) -> str:
        """A client's billing currency: `currency_code`, else its currency id via GetCurrencies."""
        if client_id not in self._client_currencies:
            client = self.get_client(client_id)
            code = client.get("currency_code")
            if not code:
                currency_id = as_int(client.get("currency"), f"client {client_id} currency")
                code = self.get_currencies().get(currency_id)
            if not code:
                raise WhmcsDataError(f"WHMCS client {client_id} has no known currency.")
            self._client_currencies[client_id] = normalise_currency(str(code))
        return self._client_currencies[client_id]

    # -- canonical frames ----------------------------------------------------------------------

    def invoices_frame(
        self, status: str | None = None, *, page_size: int = INVOICE_PAGE_SIZE
    ) -> pd.DataFrame:
        """Canonical invoices (DESIGN §4.3, money in minor units) with WHMCS-derived balances."""
        invoices = list(self.iter_invoices(status, page_size))
        transactions = list(self.iter_transactions())
        missing = {as_int(r.get("userid"), "userid") for r in invoices if not r.get("currencycode")}
        return parse_invoices(
            invoices,
            transactions,
            client_currency={client: self.client_currency(client) for client in missing},
        )

    def recorded_frame(self, invoices: pd.DataFrame | None = None) -> pd.DataFrame:
        """Canonical recorded payments; currencies from `invoices` (fetched when not given)."""
        invoice_currency: dict[int, str] = {}
        client_currency: dict[int, str] = {}
        if invoices is None:
            for row in self.iter_invoices():
                if code := row.get("currencycode"):
                    invoice_currency[as_int(row.get("id"), "invoice id")] = str(code)
                    client_currency[as_int(row.get("userid"), "userid")] = str(code)
        else:
            for invoice_id, client_id, code in zip(
                invoices["invoice_id"], invoices["client_id"], invoices["currency"], strict=True
            ):
                invoice_currency[int(invoice_id)] = client_currency[int(client_id)] = str(code)
        transactions = list(self.iter_transactions())
        for row in transactions:
            invoice_id = as_int(row.get("invoiceid") or 0, "invoiceid")
            client_id = as_int(row.get("userid") or 0, "userid")
            unknown = invoice_id not in invoice_currency and client_id not in client_currency
            if unknown and client_id and as_int(row.get("currency") or 0, "currency") == 0:
                client_currency[client_id] = self.client_currency(client_id)
        needs_ids = any(as_int(r.get("currency") or 0, "currency") for r in transactions)
        return parse_recorded(
            transactions,
            invoice_currency=invoice_currency,
            client_currency=client_currency,
            currencies=self.get_currencies() if needs_ids else {},
        )

    # -- write-back ----------------------------------------------------------------------------

    def add_invoice_payment(
        self,
        invoice_id: int,
        transid: str,
        amount_minor: int,
        currency: str,
        fees_minor: int,
        gateway: str,
        paid_on: date | datetime,
        *,
        send_email: bool = False,
        guard: PaymentGuard | None = None,
    ) -> RecordedPayment:
        """Record a payment on an invoice once: an existing payment with `transid` is returned,
        and so is the one `guard` recognises among the invoice's payments; adding more than the
        invoice has open is refused (WhmcsPaymentConflictError)."""
        code = normalise_currency(currency)
        if minor_exponent(code) > 2:
            raise WhmcsPaymentConflictError(
                f"WHMCS stores amounts with 2 decimals and cannot hold {code} amounts exactly; "
                "record this payment by hand."
            )
        if not transid.strip():
            raise ValueError("a transid is required: it is what makes the payment idempotent")
        existing = self._find_payment(invoice_id, transid, code, created=False)
        if existing is not None:
            check_same(existing, amount_minor)
            logger.info("WHMCS invoice %s already records transid %s", invoice_id, transid)
            return existing
        ledger = self.invoice_ledger(invoice_id)
        if ledger.currency != code:
            raise WhmcsPaymentConflictError(
                f"WHMCS invoice {invoice_id} is billed in {ledger.currency}, not {code}; "
                "a payment in another currency must be applied by hand."
            )
        if guard is not None and (same := guard(ledger)) is not None:
            logger.info(
                "WHMCS invoice %s already records this payment (WHMCS transaction %s)",
                invoice_id,
                same.whmcs_txn_id,
            )
            return same
        if amount_minor > ledger.balance_minor:
            raise WhmcsPaymentConflictError(
                f"WHMCS invoice {invoice_id} has {format_amount(ledger.balance_minor, code)} "
                f"{code} open, less than the {format_amount(amount_minor, code)} {code} to record; "
                "WHMCS may already hold this payment, so check the invoice by hand."
            )
        when = (
            paid_on
            if isinstance(paid_on, datetime)
            else datetime.combine(paid_on, datetime.min.time())
        )
        params = {
            "invoiceid": invoice_id,
            "transid": transid,
            "gateway": gateway,
            "date": when.strftime("%Y-%m-%d %H:%M:%S"),
            "amount": format_amount(amount_minor, code),
            "fees": format_amount(fees_minor, code),
            "noemail": "false" if send_email else "true",
        }
        attempts = self.policy.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                self.call("AddInvoicePayment", params, idempotent=False, record=False)
            except ProviderRejectedError as exc:
                if exc.status != 200:
                    raise  # credentials or access (403): nothing else will go through either
                raise WhmcsPaymentRefusedError(
                    f"WHMCS refused the payment {transid} to invoice {invoice_id}: "
                    f"{exc.provider_message}"
                ) from exc
            except (ProviderUnavailableError, ProviderResponseError) as exc:
                found = self._find_payment(invoice_id, transid, code, created=True)
                if found is not None:
                    return found
                if not server_finished(exc) or attempt == attempts:
                    raise
                logger.warning(
                    "WHMCS AddInvoicePayment for invoice %s failed and is not recorded; "
                    "trying again (%d/%d)",
                    invoice_id,
                    attempt + 1,
                    attempts,
                )
                self.policy.sleep(self.policy.backoff(attempt))
                continue
            found = self._find_payment(invoice_id, transid, code, created=True)
            if found is None:
                raise ProviderResponseError(
                    **self._context("AddInvoicePayment"),
                    status=200,
                    detail=f"WHMCS accepted the payment but shows no transid {transid} on "
                    f"invoice {invoice_id}",
                )
            logger.info("WHMCS invoice %s: recorded payment transid %s", invoice_id, transid)
            return found
        raise AssertionError("unreachable")  # pragma: no cover

    def _find_payment(
        self, invoice_id: int, transid: str, currency: str, *, created: bool
    ) -> RecordedPayment | None:
        rows = list(self.iter_transactions(invoice_id=invoice_id, transid=transid))
        rows = [
            r
            for r in rows
            if str(r.get("transid")) == transid
            and as_int(r.get("invoiceid"), "invoiceid") == invoice_id
        ]
        if not rows:
            return None
        if len(rows) > 1:
            logger.warning(
                "WHMCS invoice %s records transid %s %d times", invoice_id, transid, len(rows)
            )
        first = min(rows, key=lambda r: as_int(r.get("id"), "transaction id"))
        record = recorded_row(first, currency)
        return RecordedPayment(
            whmcs_txn_id=record["whmcs_txn_id"],
            invoice_id=record["invoice_id"],
            recorded_on=record["recorded_on"],
            amount_minor=record["amount_minor"],
            fees_minor=record["fees_minor"],
            currency=currency,
            gateway=record["gateway"],
            transid=record["transid"],
            created=created,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()


def whmcs_client_for(
    tenant: str,
    settings: WhmcsSettings,
    secrets: SecretResolver,
    *,
    policy: HttpPolicy | None = None,
    on_page: OnPage | None = None,
) -> WhmcsClient:
    """The one way to build a tenant's WHMCS client: URL from its settings, credentials from its
    secrets (resolved now). Use it as a context manager so its connections are closed."""
    if settings.base_url is None:
        raise ConfigError(f"tenant {tenant!r} has no WHMCS base URL")
    return WhmcsClient(
        str(settings.base_url),
        secrets.get(WHMCS_API_IDENTIFIER, tenant),
        secrets.get(WHMCS_API_SECRET, tenant),
        policy=policy,
        on_page=on_page,
    )
