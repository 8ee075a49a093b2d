"""WHMCS API client (`/includes/api.php`) on the shared HTTP policy, and the canonical frames.

Every call is a form-encoded POST with `responsetype=json`; the API credentials (and the optional
`accesskey` that bypasses WHMCS's IP allow-list) travel in the form body, are registered with the
redaction layer and never logged. Reads are idempotent and retried by `PolicyClient`; a WHMCS
`{"result": "error"}` answer raises `ProviderRejectedError` with WHMCS's own message.

Each read response is handed verbatim to the optional `on_page(endpoint, request_key, status,
body)` callback before it is parsed, so the landing task can store raw pages first.

`parse_invoices`/`parse_recorded` turn WHMCS rows (from the API or from the database, see
`whmcs_mysql`) into the canonical frames: money as int64 minor units, ISO dates, WHMCS statuses.
WHMCS keeps no balance column: like WHMCS itself (GetInvoice), the balance is derived as
`total - (sum(amountin) - sum(amountout))` of the invoice's transactions.

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
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

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
from recon.canonical import INVOICES, RECORDED
from recon.errors import ConfigError, ReconError
from recon.money import MoneyError, format_amount, minor_exponent, normalise_currency, to_minor
from recon.redaction import register_secret
from recon.secrets import WHMCS_API_IDENTIFIER, WHMCS_API_SECRET

if TYPE_CHECKING:
    from recon.secrets import SecretResolver
    from recon.tenants import WhmcsSettings

logger = logging.getLogger("recon.whmcs")

PROVIDER = "WHMCS"
API_PATH = "/includes/api.php"

OnPage = Callable[[str, str, int, bytes], None]
"""`on_page(endpoint, request_key, status, body)`: a raw read response, before parsing."""

# The canonical frames' columns: the connector's frames are what the loader takes.
INVOICE_FRAME_COLUMNS = INVOICES.columns
RECORDED_FRAME_COLUMNS = RECORDED.columns
_INT_COLUMNS = frozenset(
    {
        "invoice_id",
        "client_id",
        "total_minor",
        "balance_minor",
        "whmcs_txn_id",
        "amount_minor",
        "fees_minor",
    }
)
_FLAT_CURRENCY = re.compile(r"^currencies\[currency\]\[(\d+)\]\[(\w+)\]$")


class WhmcsDataError(ReconError):
    """A WHMCS record cannot be put in canonical form; the message names the record and field."""


class WhmcsPaymentConflictError(ReconError):
    """A payment cannot be applied safely (transid already used differently, currency mismatch)."""


class WhmcsPaymentRefusedError(WhmcsPaymentConflictError):
    """WHMCS refused to add this one payment (e.g. the invoice is Cancelled); others may go on."""


@dataclass(frozen=True)
class RecordedPayment:
    """A payment as WHMCS records it (one `tblaccounts` row); `created`: added by this call."""

    whmcs_txn_id: int
    invoice_id: int
    recorded_on: str
    amount_minor: int
    fees_minor: int
    currency: str
    gateway: str
    transid: str
    created: bool


@dataclass(frozen=True)
class InvoiceLedger:
    """An invoice as WHMCS shows it now (GetInvoice): currency, open balance, payments."""

    invoice_id: int
    currency: str
    status: str
    balance_minor: int
    payments: tuple[RecordedPayment, ...]


PaymentGuard = Callable[[InvoiceLedger], RecordedPayment | None]
"""`guard(ledger)`: the payment already recorded on the invoice that is this one, or None."""


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
        body = json.loads(response.content)
        context = self._context(action)
        if not isinstance(body, dict):
            raise ProviderResponseError(
                **context, status=response.status_code, detail="the body is not a JSON object"
            )
        if body.get("result") == "error" or body.get("status") == "error":
            raise ProviderRejectedError(
                **context,
                status=response.status_code,
                provider_message=str(body.get("message") or "unspecified error"),
            )
        if body.get("result") != "success":
            raise ProviderResponseError(
                **context, status=response.status_code, detail='no "result": "success" in the body'
            )
        return body

    def _context(self, action: str) -> dict[str, Any]:
        return {"provider": PROVIDER, "method": "POST", "path": self._path, "endpoint": action}

    def iter_invoices(
        self, status: str | None = None, page_size: int = 100
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
            total = _int(body.get("totalresults"), "GetInvoices totalresults")
            rows = _records(body.get("invoices"), "invoice", "GetInvoices")
            for row in rows:
                invoice_id = _int(row.get("id"), "GetInvoices invoice id")
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
        body["transactions"] = _records(body.get("transactions"), "transaction", "GetInvoice")
        return body

    def invoice_ledger(self, invoice_id: int) -> InvoiceLedger:
        """The invoice's currency, open balance and recorded payments, as WHMCS shows them now."""
        invoice = self.get_invoice(invoice_id)
        code = self.client_currency(_int(invoice.get("userid"), "GetInvoice userid"))
        what = f"WHMCS invoice {invoice_id}"
        payments = []
        for row in invoice["transactions"]:
            record = _recorded_row({"invoiceid": invoice_id, **row}, code)
            payments.append(RecordedPayment(**record, created=False))
        return InvoiceLedger(
            invoice_id=invoice_id,
            currency=code,
            status=_str(invoice.get("status")),
            balance_minor=_minor(invoice.get("balance"), code, f"{what} balance"),
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
        yield from _records(body.get("transactions"), "transaction", "GetTransactions")

    def get_client(self, client_id: int) -> dict[str, Any]:
        """GetClientsDetails' `client` object."""
        body = self.call("GetClientsDetails", {"clientid": client_id})
        client = body.get("client")
        return client if isinstance(client, dict) else body

    def get_currencies(self) -> dict[int, str]:
        """WHMCS currency id -> ISO code (cached for the client's lifetime)."""
        if self._currencies is None:
            body = self.call("GetCurrencies")
            self._currencies = _currencies(body)
        return dict(self._currencies)

    def client_currency(self, client_id: int) -> str:
        """A client's billing currency: `currency_code`, else its currency id via GetCurrencies."""
        if client_id not in self._client_currencies:
            client = self.get_client(client_id)
            code = client.get("currency_code")
            if not code:
                currency_id = _int(client.get("currency"), f"client {client_id} currency")
                code = self.get_currencies().get(currency_id)
            if not code:
                raise WhmcsDataError(f"WHMCS client {client_id} has no known currency.")
            self._client_currencies[client_id] = normalise_currency(str(code))
        return self._client_currencies[client_id]

    # -- canonical frames ----------------------------------------------------------------------

    def invoices_frame(self, status: str | None = None, *, page_size: int = 100) -> pd.DataFrame:
        """Canonical invoices (DESIGN §4.3, money in minor units) with WHMCS-derived balances."""
        invoices = list(self.iter_invoices(status, page_size))
        transactions = list(self.iter_transactions())
        missing = {_int(r.get("userid"), "userid") for r in invoices if not r.get("currencycode")}
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
                    invoice_currency[_int(row.get("id"), "invoice id")] = str(code)
                    client_currency[_int(row.get("userid"), "userid")] = str(code)
        else:
            for invoice_id, client_id, code in zip(
                invoices["invoice_id"], invoices["client_id"], invoices["currency"], strict=True
            ):
                invoice_currency[int(invoice_id)] = client_currency[int(client_id)] = str(code)
        transactions = list(self.iter_transactions())
        for row in transactions:
            invoice_id = _int(row.get("invoiceid") or 0, "invoiceid")
            client_id = _int(row.get("userid") or 0, "userid")
            unknown = invoice_id not in invoice_currency and client_id not in client_currency
            if unknown and client_id and _int(row.get("currency") or 0, "currency") == 0:
                client_currency[client_id] = self.client_currency(client_id)
        needs_ids = any(_int(r.get("currency") or 0, "currency") for r in transactions)
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
            _check_same(existing, amount_minor)
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
                if not _server_finished(exc) or attempt == attempts:
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
            and _int(r.get("invoiceid"), "invoiceid") == invoice_id
        ]
        if not rows:
            return None
        if len(rows) > 1:
            logger.warning(
                "WHMCS invoice %s records transid %s %d times", invoice_id, transid, len(rows)
            )
        first = min(rows, key=lambda r: _int(r.get("id"), "transaction id"))
        record = _recorded_row(first, currency)
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


# -- parsing (pure; shared with the database mode) --------------------------------------------


def request_key(params: Mapping[str, str]) -> str:
    """A stable key for a read's parameters (credentials are never part of `params`)."""
    return urlencode(sorted(params.items()))


def parse_invoices(
    invoices: Iterable[Mapping[str, Any]],
    transactions: Iterable[Mapping[str, Any]],
    *,
    client_currency: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Canonical invoices from GetInvoices-shaped rows and the ledger rows that pay them."""
    paid: dict[int, list[Mapping[str, Any]]] = {}
    for row in transactions:
        paid.setdefault(_int(row.get("invoiceid") or 0, "transaction invoiceid"), []).append(row)
    records = []
    for row in invoices:
        invoice_id = _int(row.get("id"), "invoice id")
        what = f"WHMCS invoice {invoice_id}"
        client_id = _int(row.get("userid"), f"{what} userid")
        code = row.get("currencycode") or (client_currency or {}).get(client_id)
        if not code:
            raise WhmcsDataError(f"{what}: no currency for client {client_id}.")
        currency = _currency_code(str(code), what)
        total = _minor(row.get("total"), currency, f"{what} total")
        settled = sum(
            _minor(t.get("amountin"), currency, f"{what} payment amountin")
            - _minor(t.get("amountout") or "0", currency, f"{what} payment amountout")
            for t in paid.get(invoice_id, [])
        )
        name = f"{_str(row.get('firstname'))} {_str(row.get('lastname'))}".strip()
        records.append(
            {
                "invoice_id": invoice_id,
                "invoice_num": _str(row.get("invoicenum")),
                "client_id": client_id,
                "client_name": name,
                "company_name": _str(row.get("companyname")),
                "issued_on": _iso_date(row.get("date"), f"{what} date"),
                "due_on": _iso_date(row.get("duedate"), f"{what} duedate"),
                "total_minor": total,
                "balance_minor": total - settled,
                "currency": currency,
                "status": _str(row.get("status")),
            }
        )
    return _frame(records, INVOICE_FRAME_COLUMNS, "invoice_id")


def parse_recorded(
    transactions: Iterable[Mapping[str, Any]],
    *,
    invoice_currency: Mapping[int, str],
    client_currency: Mapping[int, str] | None = None,
    currencies: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Canonical recorded payments from GetTransactions-shaped (`tblaccounts`) rows.

    A row's currency is its `currencycode` if present, else its own currency id (rows without a
    client), else its invoice's currency, else its client's.
    """
    records = []
    for row in transactions:
        txn_id = _int(row.get("id"), "transaction id")
        code = row.get("currencycode")
        if not code:
            currency_id = _int(row.get("currency") or 0, f"transaction {txn_id} currency")
            invoice_id = _int(row.get("invoiceid") or 0, f"transaction {txn_id} invoiceid")
            client_id = _int(row.get("userid") or 0, f"transaction {txn_id} userid")
            code = (
                (currencies or {}).get(currency_id)
                if currency_id
                else invoice_currency.get(invoice_id) or (client_currency or {}).get(client_id)
            )
        if not code:
            raise WhmcsDataError(f"WHMCS transaction {txn_id}: its currency cannot be determined.")
        records.append(_recorded_row(row, str(code)))
    return _frame(records, RECORDED_FRAME_COLUMNS, "whmcs_txn_id")


def _recorded_row(row: Mapping[str, Any], code: str) -> dict[str, Any]:
    txn_id = _int(row.get("id"), "transaction id")
    what = f"WHMCS transaction {txn_id}"
    currency = _currency_code(code, what)
    amount = _minor(row.get("amountin"), currency, f"{what} amountin") - _minor(
        row.get("amountout") or "0", currency, f"{what} amountout"
    )
    return {
        "whmcs_txn_id": txn_id,
        "invoice_id": _int(row.get("invoiceid") or 0, f"{what} invoiceid"),
        "recorded_on": _iso_date(row.get("date"), f"{what} date"),
        "amount_minor": amount,
        "fees_minor": _minor(row.get("fees") or "0", currency, f"{what} fees"),
        "currency": currency,
        "gateway": _str(row.get("gateway")),
        "transid": _str(row.get("transid")),
    }


def _frame(records: list[dict[str, Any]], columns: tuple[str, ...], key: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            column: pd.Series(
                [r[column] for r in records],
                dtype="int64" if column in _INT_COLUMNS else object,
            )
            for column in columns
        }
    )
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


def _server_finished(exc: ProviderUnavailableError | ProviderResponseError) -> bool:
    """Whether WHMCS itself answered, so a lookup afterwards shows whether the write happened.

    A 2xx with a cut body, a 500 or a 503 come from WHMCS after it finished; a timeout, a dropped
    connection or a proxy's 502/504 may leave the write still running, and a retry could apply it
    twice: then the caller gets the error, and the next run's lookup by transid settles it.
    """
    return isinstance(exc, ProviderResponseError) or exc.status in (500, 503)


def _check_same(existing: RecordedPayment, amount_minor: int) -> None:
    if existing.amount_minor != amount_minor:
        raise WhmcsPaymentConflictError(
            f"WHMCS invoice {existing.invoice_id} already records transid {existing.transid} "
            f"for {format_amount(existing.amount_minor, existing.currency)} "
            f"{existing.currency}, not {format_amount(amount_minor, existing.currency)}; "
            "check the payment by hand."
        )


# -- coercion --------------------------------------------------------------------------------------


def _records(value: Any, key: str, endpoint: str) -> list[dict[str, Any]]:
    """`{"invoice": [...]}`, `{"invoice": {...}}`, `[]`, `""` or missing -> a list of records."""
    if value in (None, "", []):
        return []
    if isinstance(value, dict):
        inner = value.get(key, [])
        items = [inner] if isinstance(inner, dict) else inner
    else:
        items = value
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise WhmcsDataError(f"WHMCS {endpoint} sent {key} records in an unexpected shape.")
    return items


def _currencies(body: Mapping[str, Any]) -> dict[int, str]:
    """GetCurrencies in its nested shape or the NVP-flattened one of the WHMCS docs."""
    rows = _records(body.get("currencies"), "currency", "GetCurrencies")
    if not rows:
        flat: dict[int, dict[str, Any]] = {}
        for name, value in body.items():
            if match := _FLAT_CURRENCY.match(name):
                flat.setdefault(int(match[1]), {})[match[2]] = value
        rows = [flat[i] for i in sorted(flat)]
    return {
        _int(r.get("id"), "currency id"): _currency_code(str(r.get("code")), "WHMCS currency")
        for r in rows
    }


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise WhmcsDataError(f"{what}: {value!r} is not a whole number.")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        raise WhmcsDataError(f"{what}: {value!r} is not a whole number.") from None


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _minor(value: Any, currency: str, what: str) -> int:
    if isinstance(value, float):
        raise WhmcsDataError(f"{what}: {value!r} is a float, not a decimal amount.")
    try:
        return to_minor(str(value), currency)
    except MoneyError as exc:
        raise WhmcsDataError(f"{what}: {exc}.") from None


def _currency_code(code: str, what: str) -> str:
    try:
        return normalise_currency(code)
    except MoneyError as exc:
        raise WhmcsDataError(f"{what}: {exc}.") from None


def _iso_date(value: Any, what: str) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _str(value).strip()
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise WhmcsDataError(f"{what}: {text!r} is not a date.") from None
