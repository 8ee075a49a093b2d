"""`GET accounts/{id}/` and its `details/`, `balances/` and `transactions/` answers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from connectors.sandbox.gocardless.model import (
    JSON,
    NOT_FOUND,
    BadAPIError,
    SandboxAccount,
    field_error,
    flat,
)
from connectors.sandbox.gocardless.quota import Quota
from connectors.sandbox.gocardless.values import query_date, stamp
from connectors.sandbox.gocardless.wire import line_json


class Accounts(Quota):
    """Account metadata and data; data calls check consent and count against the quota."""

    def _account(self, account_id: str) -> SandboxAccount:
        try:
            uuid.UUID(account_id)
        except ValueError:
            raise flat(
                400, "Invalid Account ID", f"{account_id} is not a valid Account UUID. "
            ) from None
        account = self._accounts.get(account_id)
        if account is None:
            raise flat(404, *NOT_FOUND)
        return account

    def account(self, account_id: str) -> JSON:
        """`GET accounts/{id}/`: metadata (no per-account quota)."""
        with self._lock:
            account = self._account(account_id)
            created = self._account_created[account_id]
            return {
                "id": account.account_id,
                "created": stamp(created),
                "last_accessed": stamp(self._now()),
                "iban": account.iban,
                "institution_id": account.institution_id,
                "status": "EXPIRED" if self._access_error(account_id) else "READY",
                "owner_name": account.owner_name,
            }

    def _access_error(self, account_id: str) -> BadAPIError | None:
        agreement = self._agreements[self._account_agreement[account_id]]
        expires = agreement.expires()
        if expires is not None and expires <= self._now():
            return flat(
                401,
                f"End User Agreement (EUA) {agreement.id} has expired",
                f"EUA was valid for {agreement.access_valid_for_days} days and it expired at "
                f"{expires.isoformat(sep=' ', timespec='microseconds')}. The end user must "
                "connect the account once more with new EUA and Requisition",
            )
        if account_id in self._revoked:
            return flat(
                401,
                "Access has expired or it has been revoked",
                "Access has expired or it has been revoked. To restore access, reconnect the "
                "account.",
                type="AccessExpiredError",
            )
        return None

    def account_data(
        self, account_id: str, scope: str, params: Mapping[str, str]
    ) -> tuple[JSON, dict[str, str]]:
        """A details/balances/transactions answer and its rate-limit headers; counts the quota."""
        with self._lock:
            account = self._account(account_id)
            error = self._access_error(account_id)
            if error is not None:
                raise error
            now = self._now()
            self._quota_left(account_id, scope, now)
            if scope == "transactions":
                body = self._transactions(account, params, now.date())
            elif scope == "details":
                body = _details(account)
            else:
                body = self._balances(account, now.date())
            return body, self._count_success(account_id, scope, now)

    def _sum(self, account: SandboxAccount, status: str) -> Decimal:
        return sum(
            (
                Decimal(x.amount)
                for x in self._lines
                if x.account_id == account.account_id and x.status == status
            ),
            Decimal(0),
        )

    def _balances(self, account: SandboxAccount, today: date) -> JSON:
        booked = self._sum(account, "booked")
        pending = self._sum(account, "pending")
        return {
            "balances": [
                _balance(booked, account.currency, "closingBooked", today),
                _balance(booked + pending, account.currency, "interimAvailable", today),
            ]
        }

    def _transactions(
        self, account: SandboxAccount, params: Mapping[str, str], today: date
    ) -> JSON:
        date_from = query_date(params, "date_from", today)
        date_to = query_date(params, "date_to", today)
        if date_from is not None and date_to is not None and date_from > date_to:
            raise field_error(
                400,
                {
                    "date_from": {
                        "summary": "Incorrect date range",
                        "detail": f"'{date_from}' can't be greater than '{date_to}'. Specify "
                        "correct date range",
                    }
                },
            )
        lines = [
            x
            for x in self._lines
            if x.account_id == account.account_id
            and (date_from is None or x.booked_on >= date_from)
            and (date_to is None or x.booked_on <= date_to)
        ]
        lines.sort(key=lambda x: (x.booked_on, x.transaction_id), reverse=True)
        return {
            "transactions": {
                "booked": [
                    line_json(account, x, booked=True) for x in lines if x.status == "booked"
                ],
                "pending": [
                    line_json(account, x, booked=False) for x in lines if x.status == "pending"
                ],
            }
        }


def _details(account: SandboxAccount) -> JSON:
    return {
        "account": {
            "resourceId": account.account_id,
            "iban": account.iban,
            "currency": account.currency,
            "ownerName": account.owner_name,
            "name": "Main Account",
            "product": "Business Current Account",
            "cashAccountType": "CACC",
        }
    }


def _balance(amount: Decimal, currency: str, kind: str, today: date) -> JSON:
    return {
        "balanceAmount": {"amount": f"{amount:.2f}", "currency": currency},
        "balanceType": kind,
        "referenceDate": today.isoformat(),
    }
