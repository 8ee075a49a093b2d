"""The API's actions: GetInvoices, GetInvoice, GetTransactions, GetClientsDetails,
GetCurrencies and AddInvoicePayment."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from connectors.sandbox.whmcs.ledger import Ledger
from connectors.sandbox.whmcs.model import (
    JSON,
    OPEN_STATUSES,
    ZERO_DATETIME,
    Transaction,
    WhmcsAPIError,
)
from connectors.sandbox.whmcs.values import (
    client_uuid,
    decimal_param,
    int_param,
    money,
    payment_date,
)
from connectors.sandbox.whmcs.wire import transaction_json


class Actions(Ledger):
    """One method per API action, called under the state's lock."""

    def _get_invoices(self, params: Mapping[str, str]) -> JSON:
        start = max(int_param(params.get("limitstart"), 0), 0)
        number = int_param(params.get("limitnum"), 0) or 25
        rows = self._in_order(params.get("orderby", "").lower(), params.get("order", "").lower())
        if userid := int_param(params.get("userid"), 0):
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
        invoice = self._tables.invoices.get(int_param(params.get("invoiceid"), 0))
        if invoice is None:
            raise WhmcsAPIError("Invoice ID Not Found")
        payments = [
            transaction_json(x) for x in self._tables.transactions if x.invoiceid == invoice.id
        ]
        return {
            "invoiceid": invoice.id,
            "invoicenum": invoice.invoicenum,
            "userid": invoice.userid,
            "date": invoice.date,
            "duedate": invoice.duedate,
            "datepaid": invoice.datepaid,
            "lastcaptureattempt": ZERO_DATETIME,
            "subtotal": money(invoice.total),
            "credit": "0.00",
            "tax": "0.00",
            "tax2": "0.00",
            "total": money(invoice.total),
            "balance": money(self._balance(invoice)),
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
                        "amount": money(invoice.total),
                        "taxed": 0,
                    }
                ]
            },
            "transactions": {"transaction": payments} if payments else "",
        }

    def _get_transactions(self, params: Mapping[str, str]) -> JSON:
        rows = self._tables.transactions
        if invoiceid := int_param(params.get("invoiceid"), 0):
            rows = [x for x in rows if x.invoiceid == invoiceid]
        if clientid := int_param(params.get("clientid"), 0):
            rows = [x for x in rows if x.userid == clientid]
        if transid := params.get("transid", ""):
            rows = [x for x in rows if x.transid == transid]
        body: JSON = {"totalresults": len(rows), "startnumber": 0, "numreturned": len(rows)}
        if rows:
            body["transactions"] = {"transaction": [transaction_json(x) for x in rows]}
        return body

    def _get_clients_details(self, params: Mapping[str, str]) -> JSON:
        clientid, email = int_param(params.get("clientid"), 0), params.get("email", "")
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
            "uuid": client_uuid(client.id),
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
                "dueinvoicesbalance": f"{currency.prefix}{money(due)}{currency.suffix}",
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
        invoice = self._tables.invoices.get(int_param(params.get("invoiceid"), 0))
        if invoice is None:
            raise WhmcsAPIError("Invoice ID Not Found")
        if invoice.status == "Cancelled":
            raise WhmcsAPIError(
                "It is not possible to add a payment to an invoice that is Cancelled"
            )
        if invoice.status == "Draft":
            raise WhmcsAPIError("It is not possible to add a payment to an invoice that is a Draft")
        raw_amount = params.get("amount", "")
        amount = decimal_param(raw_amount, "amount") if raw_amount else self._balance(invoice)
        fees = decimal_param(params.get("fees") or "0", "fees")
        when = payment_date(params.get("date", ""), self._now)
        transaction = Transaction(
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
        if self._balance(invoice) <= 0 and invoice.status in OPEN_STATUSES:
            invoice.status = "Paid"
            invoice.datepaid = when
            self._ordered.clear()
        return {}
