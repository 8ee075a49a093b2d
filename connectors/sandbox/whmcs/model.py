"""The WHMCS sandbox's constants, error answer and in-memory tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
ORDER_COLUMNS = {"id", "invoicenumber", "date", "duedate", "total", "status"}
OPEN_STATUSES = frozenset({"Unpaid", "Payment Pending", "Collections"})
PREFIXES = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "$", "CAD": "$"}
CENT = Decimal("0.01")
OPENING_TRANSID_PREFIX = "sandbox-opening-"


class WhmcsAPIError(Exception):
    """An error answer: HTTP status and WHMCS's message."""

    def __init__(self, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Client:
    """A WHMCS client (tblclients): one name and one currency."""

    id: int
    firstname: str
    lastname: str
    companyname: str
    currency: int

    @property
    def email(self) -> str:
        """The client's (made-up) email address."""
        return f"client{self.id}@example.invalid"


@dataclass(frozen=True)
class Currency:
    """A WHMCS currency (tblcurrencies)."""

    id: int
    code: str

    @property
    def prefix(self) -> str:
        """The currency's symbol, as WHMCS prefixes amounts."""
        return PREFIXES.get(self.code, "")

    @property
    def suffix(self) -> str:
        """The currency's code, as WHMCS suffixes amounts."""
        return f" {self.code}"


@dataclass
class Invoice:
    """A WHMCS invoice (tblinvoices); its balance is derived from its payments."""

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
class Transaction:
    """A row of WHMCS's transaction ledger (tblaccounts)."""

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
class Tables:
    """WHMCS's tables as the sandbox keeps them."""

    currencies: list[Currency] = field(default_factory=list)
    clients: dict[int, Client] = field(default_factory=dict)
    invoices: dict[int, Invoice] = field(default_factory=dict)
    transactions: list[Transaction] = field(default_factory=list)
    opening_ids: set[int] = field(default_factory=set)
