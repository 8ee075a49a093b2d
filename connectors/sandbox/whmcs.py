"""A fake WHMCS API: `POST /includes/api.php`, form-encoded, `responsetype=json`.

`WhmcsState` is seeded from the DESIGN §4.3 `invoices` and `recorded` frames and keeps WHMCS's own
tables in memory (clients, currencies, invoices, the `tblaccounts` transaction ledger), behind one
lock. It answers GetInvoices, GetInvoice, GetTransactions, GetClientsDetails, GetCurrencies and
AddInvoicePayment with the shapes of the WHMCS reference (shared/reference/providers.md §4),
quirks included: money as 2-dp decimal strings, ids as ints in invoice actions and strings in
GetTransactions/GetCurrencies, `"transactions": ""` on an invoice without payments, no
`transactions` key at all when GetTransactions finds none, `"invoices": []` for an empty page,
`totalresults` as a string in GetCurrencies, and an invoice balance derived as WHMCS derives it:
`total - (sum(amountin) - sum(amountout))` of its transactions. Like WHMCS, the sandbox does not
refuse a second payment with the same `transid`: avoiding duplicates is the client's job.

A seeded invoice's `balance` must therefore equal its total minus its seeded `recorded` payments,
or seeding fails, unless `opening_payments=True`: then the difference is recorded as one earlier
payment (dated the invoice's issue date, transid `sandbox-opening-<invoice id>`), as a WHMCS that
has been running before the seeded period would hold; `opening_payment_ids()` lists them.

Bad credentials answer HTTP 403 `{"result":"error","message":"Authentication Failed"}`, a caller
outside `allowed_ips` (without the `accesskey`) HTTP 403 `Invalid IP <ip>`; action errors answer
HTTP 200 with `result: error`. `routes(state)` serves it with `state.faults` wired in.
"""

from __future__ import annotations

import hmac
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from connectors.sandbox.faults import FaultPlan
from recon.money import MoneyError, normalise_currency, to_minor

JSON = dict[str, Any]
API_PATH = "/includes/api.php"
ZERO_DATETIME = "0000-00-00 00:00:00"
INVOICE_COLUMNS = (
    "invoice_id",
    "invoice_num",
    "client_id",
    "client_name",
    "company_name",
    "issued_on",
    "due_on",
    "total",
    "balance",
    "currency",
    "status",
)
RECORDED_COLUMNS = (
    "whmcs_txn_id",
    "invoice_id",
    "recorded_on",
    "amount",
    "fees",
    "currency",
    "gateway",
    "transid",
)
INVOICE_STATUSES = frozenset(
    {"Draft", "Unpaid", "Paid", "Cancelled", "Refunded", "Collections", "Payment Pending"}
)
_ORDER_COLUMNS = {"id", "invoicenumber", "date", "duedate", "total", "status"}
_OPEN_STATUSES = frozenset({"Unpaid", "Payment Pending", "Collections"})
_PREFIXES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "$", "CAD": "$"}
_CENT = Decimal("0.01")
OPENING_TRANSID_PREFIX = "sandbox-opening-"


class WhmcsAPIError(Exception):
    """An error answer: HTTP status and WHMCS's message."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class _Client:
    id: int
    firstname: str
    lastname: str
    companyname: str
    currency: int

    @property
    def email(self) -> str:
        return f"client{self.id}@example.invalid"


@dataclass(frozen=True)
class _Currency:
    id: int
    code: str

    @property
    def prefix(self) -> str:
        return _PREFIXES.get(self.code, "")

    @property
    def suffix(self) -> str:
        return f" {self.code}"


@dataclass
class _Invoice:
    id: int
    invoicenum: str
    userid: int
    date: str
    duedate: str
    total: Decimal
    status: str
    datepaid: str = ZERO_DATETIME
    paymentmethod: str = "banktransfer"


@dataclass
class _Transaction:
    id: int
    userid: int
    gateway: str
    date: str
    amountin: Decimal
    fees: Decimal
    amountout: Decimal
    transid: str
    invoiceid: int
    description: str = "Invoice Payment"


@dataclass
class _Tables:
    currencies: list[_Currency] = field(default_factory=list)
    clients: dict[int, _Client] = field(default_factory=dict)
    invoices: dict[int, _Invoice] = field(default_factory=dict)
    transactions: list[_Transaction] = field(default_factory=list)
    opening_ids: set[int] = field(default_factory=set)


class WhmcsState:
    """In-memory WHMCS: clients, currencies, invoices and payments, credentials, faults. Thread-safe.

    `allowed_ips`: the API's IP allow-list (None: any caller); `access_key` lets a caller outside
    it in. `today` decides the `Overdue` filter, `now` the date of a payment sent without one.
    """

    def __init__(
        self,
        invoices: pd.DataFrame,
        recorded: pd.DataFrame | None = None,
        *,
        identifier: str,
        secret: str,
        allowed_ips: Sequence[str] | None = None,
        access_key: str | None = None,
        faults: FaultPlan | None = None,
        opening_payments: bool = False,
        today: Callable[[], date] = date.today,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not identifier or not secret:
            raise ValueError("the sandbox needs an API identifier and secret")
        self._identifier = identifier
        self._secret = secret
        self._allowed_ips = None if allowed_ips is None else frozenset(allowed_ips)
        self._access_key = access_key
        self.faults = faults if faults is not None else FaultPlan()
        self._today = today
        self._now = now
        self._lock = threading.Lock()
        self._tables = _seed(invoices, recorded, opening_payments=opening_payments)
        # Invoices in each (orderby, order) a caller asked for: paging 50,000 invoices must not
        # sort them again for every page. Cleared whenever an invoice changes.
        self._ordered: dict[tuple[str, str], list[_Invoice]] = {}

    # -- views for tests -----------------------------------------------------------------------

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """WHMCS's own tables as rows with its column names (to mirror into a real database)."""
        with self._lock:
            t = self._tables
            return {
                "tblcurrencies": [
                    {
                        "id": c.id,
                        "code": c.code,
                        "prefix": c.prefix,
                        "suffix": c.suffix,
                        "format": 1,
                        "rate": Decimal("1.00000"),
                        "default": 1 if i == 0 else 0,
                    }
                    for i, c in enumerate(t.currencies)
                ],
                "tblclients": [
                    {
                        "id": c.id,
                        "uuid": _uuid(c.id),
                        "firstname": c.firstname,
                        "lastname": c.lastname,
                        "companyname": c.companyname,
                        "email": c.email,
                        "currency": c.currency,
                        "status": "Active",
                    }
                    for c in t.clients.values()
                ],
                "tblinvoices": [
                    {
                        "id": i.id,
                        "userid": i.userid,
                        "invoicenum": i.invoicenum,
                        "date": i.date,
                        "duedate": i.duedate,
                        "datepaid": i.datepaid,
                        "subtotal": i.total,
                        "credit": Decimal("0.00"),
                        "tax": Decimal("0.00"),
                        "tax2": Decimal("0.00"),
                        "total": i.total,
                        "status": i.status,
                        "paymentmethod": i.paymentmethod,
                    }
                    for i in t.invoices.values()
                ],
                "tblaccounts": [
                    {
                        "id": x.id,
                        "userid": x.userid,
                        "currency": 0,
                        "gateway": x.gateway,
                        "date": x.date,
                        "description": x.description,
                        "amountin": x.amountin,
                        "fees": x.fees,
                        "amountout": x.amountout,
                        "rate": Decimal("1.00000"),
                        "transid": x.transid,
                        "invoiceid": x.invoiceid,
                        "refundid": 0,
                    }
                    for x in t.transactions
                ],
            }

    def opening_payment_ids(self) -> frozenset[int]:
        """Ids of the payments `opening_payments=True` added (not in the seeded `recorded`)."""
        with self._lock:
            return frozenset(self._tables.opening_ids)

    def payments(self, invoice_id: int, transid: str | None = None) -> list[dict[str, str]]:
        """The transactions recorded against an invoice (optionally with one `transid`)."""
        with self._lock:
            return [
                _transaction_json(x)
                for x in self._tables.transactions
                if x.invoiceid == invoice_id and (transid is None or x.transid == transid)
            ]

    def balance(self, invoice_id: int) -> Decimal:
        """What WHMCS's GetInvoice would report as the invoice's balance."""
        with self._lock:
            return self._balance(self._tables.invoices[invoice_id])

    def status(self, invoice_id: int) -> str:
        """The invoice's current WHMCS status."""
        with self._lock:
            return self._tables.invoices[invoice_id].status

    def set_invoice_status(self, invoice_id: int, status: str) -> None:
        """Change an invoice's status as an admin does in WHMCS (e.g. cancel it)."""
        if status not in INVOICE_STATUSES:
            raise ValueError(f"unknown WHMCS invoice status {status!r}")
        with self._lock:
            self._tables.invoices[invoice_id].status = status
            self._ordered.clear()

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
            if self._access_key is None or not _same(key, self._access_key):
                raise WhmcsAPIError(f"Invalid IP {client_ip}", 403)
        identifier = params.get("identifier") or params.get("username") or ""
        secret = params.get("secret") or params.get("password") or ""
        ok_identifier = _same(identifier, self._identifier)
        ok_secret = _same(secret, self._secret)
        if not (ok_identifier and ok_secret):
            raise WhmcsAPIError("Authentication Failed", 403)

    def _get_invoices(self, params: Mapping[str, str]) -> JSON:
        start = max(_int(params.get("limitstart"), 0), 0)
        number = _int(params.get("limitnum"), 0) or 25
        rows = self._in_order(params.get("orderby", "").lower(), params.get("order", "").lower())
        if userid := _int(params.get("userid"), 0):
            rows = [i for i in rows if i.userid == userid]
        if status := params.get("status", ""):
            if status == "Overdue":
                today = self._today().isoformat()
                rows = [i for i in rows if i.status == "Unpaid" and i.duedate < today]
            else:
                rows = [i for i in rows if i.status == status]
        page = rows[start : start + number] if number > 0 else []
        return {
            "totalresults": len(rows),
            "startnumber": start,
            "numreturned": len(page),
            "invoices": {"invoice": [self._invoice_row(i) for i in page]} if page else [],
        }

    def _get_invoice(self, params: Mapping[str, str]) -> JSON:
        invoice = self._tables.invoices.get(_int(params.get("invoiceid"), 0))
        if invoice is None:
            raise WhmcsAPIError("Invoice ID Not Found")
        payments = [
            _transaction_json(x) for x in self._tables.transactions if x.invoiceid == invoice.id
        ]
        return {
            "invoiceid": invoice.id,
            "invoicenum": invoice.invoicenum,
            "userid": invoice.userid,
            "date": invoice.date,
            "duedate": invoice.duedate,
            "datepaid": invoice.datepaid,
            "lastcaptureattempt": ZERO_DATETIME,
            "subtotal": _money(invoice.total),
            "credit": "0.00",
            "tax": "0.00",
            "tax2": "0.00",
            "total": _money(invoice.total),
            "balance": _money(self._balance(invoice)),
            "taxrate": "0.000",
            "taxrate2": "0.000",
            "status": invoice.status,
            "paymentmethod": invoice.paymentmethod,
            "notes": "",
            "ccgateway": False,
            "items": {
                "item": [
                    {
                        "id": invoice.id,
                        "type": "Invoice",
                        "relid": 0,
                        "description": f"Services (invoice {invoice.id})",
                        "amount": _money(invoice.total),
                        "taxed": 0,
                    }
                ]
            },
            "transactions": {"transaction": payments} if payments else "",
        }

    def _get_transactions(self, params: Mapping[str, str]) -> JSON:
        rows = self._tables.transactions
        if invoiceid := _int(params.get("invoiceid"), 0):
            rows = [x for x in rows if x.invoiceid == invoiceid]
        if clientid := _int(params.get("clientid"), 0):
            rows = [x for x in rows if x.userid == clientid]
        if transid := params.get("transid", ""):
            rows = [x for x in rows if x.transid == transid]
        body: JSON = {"totalresults": len(rows), "startnumber": 0, "numreturned": len(rows)}
        if rows:
            body["transactions"] = {"transaction": [_transaction_json(x) for x in rows]}
        return body

    def _get_clients_details(self, params: Mapping[str, str]) -> JSON:
        clientid, email = _int(params.get("clientid"), 0), params.get("email", "")
        if not clientid and not email:
            raise WhmcsAPIError("Either clientid Or email Is Required")
        client = next(
            (
                c
                for c in self._tables.clients.values()
                if (clientid and c.id == clientid) or (not clientid and c.email == email)
            ),
            None,
        )
        if client is None:
            raise WhmcsAPIError("Client Not Found")
        currency = self._currency(client.currency)
        details = {
            "client_id": client.id,
            "owner_user_id": client.id,
            "userid": client.id,
            "id": client.id,
            "uuid": _uuid(client.id),
            "firstname": client.firstname,
            "lastname": client.lastname,
            "fullname": f"{client.firstname} {client.lastname}".strip(),
            "companyname": client.companyname,
            "email": client.email,
            "currency": client.currency,
            "currency_code": currency.code,
            "defaultgateway": "",
            "groupid": 0,
            "status": "Active",
            "credit": "0.00",
        }
        body: JSON = {**details, "client": details}
        if params.get("stats") in ("1", "true", "True"):
            due = sum(
                (
                    self._balance(i)
                    for i in self._tables.invoices.values()
                    if i.userid == client.id and i.status == "Unpaid"
                ),
                Decimal("0.00"),
            )
            body["stats"] = {
                "dueinvoicesbalance": f"{currency.prefix}{_money(due)}{currency.suffix}",
            }
        return body

    def _get_currencies(self, _params: Mapping[str, str]) -> JSON:
        currencies = self._tables.currencies
        return {
            "totalresults": str(len(currencies)),
            "currencies": {
                "currency": [
                    {
                        "id": str(c.id),
                        "code": c.code,
                        "prefix": c.prefix,
                        "suffix": c.suffix,
                        "format": "1",
                        "rate": "1.00000",
                    }
                    for c in currencies
                ]
            },
        }

    def _add_invoice_payment(self, params: Mapping[str, str]) -> JSON:
        invoice = self._tables.invoices.get(_int(params.get("invoiceid"), 0))
        if invoice is None:
            raise WhmcsAPIError("Invoice ID Not Found")
        if invoice.status == "Cancelled":
            raise WhmcsAPIError(
                "It is not possible to add a payment to an invoice that is Cancelled"
            )
        if invoice.status == "Draft":
            raise WhmcsAPIError("It is not possible to add a payment to an invoice that is a Draft")
        raw_amount = params.get("amount", "")
        amount = _decimal(raw_amount, "amount") if raw_amount else self._balance(invoice)
        fees = _decimal(params.get("fees") or "0", "fees")
        when = _payment_date(params.get("date", ""), self._now)
        transaction = _Transaction(
            id=max((x.id for x in self._tables.transactions), default=0) + 1,
            userid=invoice.userid,
            gateway=params.get("gateway", ""),
            date=when,
            amountin=amount if amount >= 0 else Decimal("0.00"),
            fees=fees,
            amountout=-amount if amount < 0 else Decimal("0.00"),
            transid=params.get("transid", ""),
            invoiceid=invoice.id,
        )
        self._tables.transactions.append(transaction)
        if self._balance(invoice) <= 0 and invoice.status in _OPEN_STATUSES:
            invoice.status = "Paid"
            invoice.datepaid = when
            self._ordered.clear()
        return {}

    # -- internals -----------------------------------------------------------------------------

    def _in_order(self, orderby: str, order: str) -> list[_Invoice]:
        """Every invoice in WHMCS's order for (`orderby`, `order`), sorted once per change."""
        key = (orderby, order)
        if key not in self._ordered:
            self._ordered[key] = _ordered(list(self._tables.invoices.values()), orderby, order)
        return self._ordered[key]

    def _balance(self, invoice: _Invoice) -> Decimal:
        paid = sum(
            (
                x.amountin - x.amountout
                for x in self._tables.transactions
                if x.invoiceid == invoice.id
            ),
            Decimal("0.00"),
        )
        return invoice.total - paid

    def _currency(self, currency_id: int) -> _Currency:
        return next(c for c in self._tables.currencies if c.id == currency_id)

    def _invoice_row(self, invoice: _Invoice) -> JSON:
        client = self._tables.clients[invoice.userid]
        currency = self._currency(client.currency)
        return {
            "id": invoice.id,
            "userid": invoice.userid,
            "firstname": client.firstname,
            "lastname": client.lastname,
            "companyname": client.companyname,
            "invoicenum": invoice.invoicenum,
            "date": invoice.date,
            "duedate": invoice.duedate,
            "datepaid": invoice.datepaid,
            "last_capture_attempt": ZERO_DATETIME,
            "date_refunded": ZERO_DATETIME,
            "date_cancelled": ZERO_DATETIME,
            "subtotal": _money(invoice.total),
            "credit": "0.00",
            "tax": "0.00",
            "tax2": "0.00",
            "total": _money(invoice.total),
            "taxrate": "0.000",
            "taxrate2": "0.000",
            "status": invoice.status,
            "paymentmethod": invoice.paymentmethod,
            "paymethodid": None,
            "notes": "",
            "created_at": f"{invoice.date} 00:00:00",
            "updated_at": f"{invoice.date} 00:00:00",
            "currencycode": currency.code,
            "currencyprefix": currency.prefix,
            "currencysuffix": currency.suffix,
        }


_ACTIONS: dict[str, Callable[[WhmcsState, Mapping[str, str]], JSON]] = {
    "getinvoices": WhmcsState._get_invoices,
    "getinvoice": WhmcsState._get_invoice,
    "gettransactions": WhmcsState._get_transactions,
    "getclientsdetails": WhmcsState._get_clients_details,
    "getcurrencies": WhmcsState._get_currencies,
    "addinvoicepayment": WhmcsState._add_invoice_payment,
}


# -- seeding ---------------------------------------------------------------------------------------


def _seed(
    invoices: pd.DataFrame, recorded: pd.DataFrame | None, *, opening_payments: bool
) -> _Tables:
    """WHMCS tables from the §4.3 frames; ValueError on anything WHMCS could not hold."""
    _require_columns(invoices, INVOICE_COLUMNS, "invoices")
    tables = _Tables()
    codes = sorted({normalise_currency(str(c)) for c in invoices["currency"]})
    tables.currencies = [_Currency(i + 1, code) for i, code in enumerate(codes)]
    currency_ids = {c.code: c.id for c in tables.currencies}
    balances: dict[int, Decimal] = {}
    for row in invoices.to_dict("records"):
        invoice_id = int(row["invoice_id"])
        if invoice_id in tables.invoices:
            raise ValueError(f"invoice {invoice_id} appears twice in the seed")
        code = normalise_currency(str(row["currency"]))
        client = _client_from(row, currency_ids[code])
        known = tables.clients.setdefault(client.id, client)
        if known != client:
            raise ValueError(
                f"client {client.id} has different names or currencies across invoices; "
                "WHMCS keeps one name and one currency per client"
            )
        status = str(row["status"])
        if status not in INVOICE_STATUSES:
            raise ValueError(f"invoice {invoice_id} has unknown WHMCS status {status!r}")
        tables.invoices[invoice_id] = _Invoice(
            id=invoice_id,
            invoicenum=_text(row.get("invoice_num")),
            userid=client.id,
            date=_iso_date(row["issued_on"]),
            duedate=_iso_date(row["due_on"]),
            total=_amount(row["total"], code, f"invoice {invoice_id} total"),
            status=status,
        )
        balances[invoice_id] = _amount(row["balance"], code, f"invoice {invoice_id} balance")
    if recorded is not None:
        _seed_recorded(tables, recorded)
    paid: dict[int, Decimal] = {}
    last_paid: dict[int, str] = {}
    for x in tables.transactions:
        paid[x.invoiceid] = paid.get(x.invoiceid, Decimal("0.00")) + x.amountin - x.amountout
        last_paid[x.invoiceid] = max(last_paid.get(x.invoiceid, ""), x.date)
    next_id = max((x.id for x in tables.transactions), default=0) + 1
    for invoice_id, balance in balances.items():
        invoice = tables.invoices[invoice_id]
        gap = invoice.total - paid.get(invoice_id, Decimal("0.00")) - balance
        if gap and not opening_payments:
            raise ValueError(
                f"invoice {invoice_id}: balance {balance} is not total {invoice.total} minus the "
                f"recorded payments {paid.get(invoice_id, Decimal('0.00'))}; WHMCS derives the "
                "balance that way (pass opening_payments=True to record the difference as an "
                "earlier payment)"
            )
        if gap:
            opening = _Transaction(
                id=next_id,
                userid=invoice.userid,
                gateway="banktransfer",
                date=f"{invoice.date} 00:00:00",
                amountin=gap if gap > 0 else Decimal("0.00"),
                fees=Decimal("0.00"),
                amountout=-gap if gap < 0 else Decimal("0.00"),
                transid=f"{OPENING_TRANSID_PREFIX}{invoice_id}",
                invoiceid=invoice_id,
                description="Payment recorded before the seeded period",
            )
            tables.transactions.append(opening)
            tables.opening_ids.add(next_id)
            last_paid[invoice_id] = max(last_paid.get(invoice_id, ""), opening.date)
            next_id += 1
        if invoice.status == "Paid" and invoice.datepaid == ZERO_DATETIME:
            invoice.datepaid = last_paid.get(invoice_id) or f"{invoice.date} 00:00:00"
    return tables


def _seed_recorded(tables: _Tables, recorded: pd.DataFrame) -> None:
    _require_columns(recorded, RECORDED_COLUMNS, "recorded")
    seen: set[int] = set()
    for row in recorded.to_dict("records"):
        txn_id = int(row["whmcs_txn_id"])
        invoice_id = int(row["invoice_id"])
        if txn_id in seen:
            raise ValueError(f"recorded payment {txn_id} appears twice in the seed")
        seen.add(txn_id)
        invoice = tables.invoices.get(invoice_id)
        if invoice is None:
            raise ValueError(f"recorded payment {txn_id} is for unknown invoice {invoice_id}")
        client = tables.clients[invoice.userid]
        code = next(c.code for c in tables.currencies if c.id == client.currency)
        if normalise_currency(str(row["currency"])) != code:
            raise ValueError(
                f"recorded payment {txn_id} is in {row['currency']} but client {client.id} "
                f"is billed in {code}; WHMCS records payments in the client's currency"
            )
        amount = _amount(row["amount"], code, f"recorded payment {txn_id} amount")
        tables.transactions.append(
            _Transaction(
                id=txn_id,
                userid=client.id,
                gateway=_text(row.get("gateway")),
                date=f"{_iso_date(row['recorded_on'])} 00:00:00",
                amountin=amount if amount >= 0 else Decimal("0.00"),
                fees=_amount(row.get("fees") or "0", code, f"recorded payment {txn_id} fees"),
                amountout=-amount if amount < 0 else Decimal("0.00"),
                transid=_text(row.get("transid")),
                invoiceid=invoice_id,
            )
        )
    tables.transactions.sort(key=lambda x: x.id)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the {name} frame lacks columns {', '.join(missing)}")


def _client_from(row: Mapping[Any, Any], currency_id: int) -> _Client:
    first, _, last = _text(row.get("client_name")).partition(" ")
    return _Client(
        id=int(row["client_id"]),
        firstname=first,
        lastname=last,
        companyname=_text(row.get("company_name")),
        currency=currency_id,
    )


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _iso_date(value: Any) -> str:
    if isinstance(value, datetime | pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value)[:10]).isoformat()


def _amount(value: Any, currency: str, what: str) -> Decimal:
    """A seed amount as WHMCS stores it (2 dp), checked exact for the currency."""
    try:
        to_minor(value, currency)
        decimal = Decimal(str(value).strip())
    except (MoneyError, InvalidOperation) as exc:
        raise ValueError(f"{what}: {exc}") from None
    if decimal != decimal.quantize(_CENT):
        raise ValueError(f"{what}: WHMCS stores amounts with 2 decimals, not {value!r}")
    return decimal.quantize(_CENT)


# -- wire helpers ----------------------------------------------------------------------------------


def _money(value: Decimal) -> str:
    return f"{value.quantize(_CENT):f}"


def _transaction_json(x: _Transaction) -> dict[str, str]:
    return {
        "id": str(x.id),
        "userid": str(x.userid),
        "currency": "0",
        "gateway": x.gateway,
        "date": x.date,
        "description": x.description,
        "amountin": _money(x.amountin),
        "fees": _money(x.fees),
        "amountout": _money(x.amountout),
        "rate": "1.00000",
        "transid": x.transid,
        "invoiceid": str(x.invoiceid),
        "refundid": "0",
    }


def _ordered(rows: list[_Invoice], orderby: str, order: str) -> list[_Invoice]:
    """WHMCS's ordering: by `orderby`, or by default status descending then due date."""
    reverse = order == "desc"
    if orderby not in _ORDER_COLUMNS:
        by_due = sorted(rows, key=lambda i: i.duedate, reverse=reverse)
        return sorted(by_due, key=lambda i: i.status, reverse=True)
    keys: dict[str, Callable[[_Invoice], Any]] = {
        "id": lambda i: i.id,
        "invoicenumber": lambda i: (i.invoicenum, i.id),
        "date": lambda i: i.date,
        "duedate": lambda i: i.duedate,
        "total": lambda i: i.total,
        "status": lambda i: i.status,
    }
    return sorted(rows, key=keys[orderby], reverse=reverse)


def _int(value: str | None, default: int) -> int:
    try:
        return int(str(value).strip()) if value not in (None, "") else default
    except ValueError:
        return default


def _decimal(value: str, name: str) -> Decimal:
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise WhmcsAPIError(f"Invalid {name}") from None
    if not amount.is_finite():
        raise WhmcsAPIError(f"Invalid {name}")
    return amount.quantize(_CENT)


def _payment_date(value: str, now: Callable[[], datetime]) -> str:
    text = value.strip()
    if not text:
        return now().strftime("%Y-%m-%d %H:%M:%S")
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    raise WhmcsAPIError("Invalid Date Format")


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _uuid(client_id: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"whmcs-sandbox/client/{client_id}"))


# -- HTTP ------------------------------------------------------------------------------------------


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
