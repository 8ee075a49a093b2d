"""The sandbox's in-memory world: seeded accounts and lines, agreements, tokens, test controls.

`BankWorld` holds the state behind one lock on an injectable clock; the endpoint mixins
(`auth`, `consent`, `quota`, `accounts`) act on it and `GoCardlessState` combines them.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from connectors.sandbox.common import cell_text
from connectors.sandbox.faults import FaultPlan
from connectors.sandbox.gocardless.model import (
    ACCESS_EXPIRES,
    DAILY_LIMIT,
    REFRESH_EXPIRES,
    SCOPES,
    TRANSACTION_COLUMNS,
    Agreement,
    Clock,
    Line,
    ReferenceStyle,
    Requisition,
    SandboxAccount,
    SandboxInstitution,
    Token,
)
from connectors.sandbox.gocardless.values import as_date
from connectors.sandbox.gocardless.wire import default_institutions
from recon.money import MoneyError, normalise_currency, to_minor


class BankWorld:
    """In-memory Bank Account Data: tokens, agreements, requisitions, accounts, lines, quotas."""

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        accounts: Sequence[SandboxAccount],
        transactions: pd.DataFrame,
        institutions: Sequence[SandboxInstitution] | None = None,
        daily_limit: int = DAILY_LIMIT,
        access_expires: int = ACCESS_EXPIRES,
        refresh_expires: int = REFRESH_EXPIRES,
        faults: FaultPlan | None = None,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        if not secret_id or not secret_key:
            raise ValueError("the sandbox needs a secret_id and a secret_key")
        if daily_limit < 1:
            raise ValueError("daily_limit must be at least 1")
        self._secret_id = secret_id
        self._secret_key = secret_key
        self._signing_key = secrets.token_bytes(32)
        self.daily_limit = daily_limit
        self.access_expires = access_expires
        self.refresh_expires = refresh_expires
        self.faults = faults if faults is not None else FaultPlan()
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self._agreements: dict[str, Agreement] = {}
        self._requisitions: dict[str, Requisition] = {}
        self._accounts: dict[str, SandboxAccount] = {}
        self._account_agreement: dict[str, str] = {}
        self._account_created: dict[str, datetime] = {}
        self._revoked: set[str] = set()
        self._lines: list[Line] = []
        self._quota: dict[tuple[str, str, date], int] = {}
        self._company: dict[int, int] = {}
        self.token_counts = {"new": 0, "refresh": 0}
        now = self._now()
        for account in accounts:
            self._add_account(account, now)
        self._institutions = {
            i.id: i for i in (institutions or default_institutions(self._accounts.values()))
        }
        self._check_institutions()
        self.add_transactions(transactions)

    # -- seeding -------------------------------------------------------------------------------

    def _check_institutions(self) -> None:
        for account in self._accounts.values():
            if account.institution_id not in self._institutions:
                raise ValueError(
                    f"account {account.account_id} is at unknown institution "
                    f"{account.institution_id}"
                )

    def _add_account(self, account: SandboxAccount, now: datetime) -> None:
        try:
            uuid.UUID(account.account_id)
        except ValueError:
            raise ValueError(f"account id {account.account_id!r} is not a UUID") from None
        if account.account_id in self._accounts:
            raise ValueError(f"account {account.account_id} appears twice in the seed")
        normalise_currency(account.currency)
        self._accounts[account.account_id] = replace(
            account, reference_style=ReferenceStyle(account.reference_style)
        )
        self._account_created[account.account_id] = now
        agreement = Agreement(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"eua/{account.account_id}")),
            created=now,
            institution_id=account.institution_id,
            max_historical_days=90,
            access_valid_for_days=account.consent_days,
            access_scope=list(SCOPES),
            accepted=now,
        )
        self._agreements[agreement.id] = agreement
        self._account_agreement[account.account_id] = agreement.id

    def add_transactions(self, frame: pd.DataFrame) -> None:
        """Add bank lines (columns `TRANSACTION_COLUMNS`, optional `pending_id`)."""
        missing = [c for c in TRANSACTION_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"the transactions frame lacks columns {', '.join(missing)}")
        with self._lock:
            known = {line.transaction_id for line in self._lines}
            for row in frame.to_dict("records"):
                line = self._line_from(row)
                if line.transaction_id in known:
                    raise ValueError(f"transaction {line.transaction_id} appears twice")
                known.add(line.transaction_id)
                self._lines.append(line)

    def _line_from(self, row: Mapping[Any, Any]) -> Line:
        transaction_id = cell_text(row["transaction_id"])
        account_id = cell_text(row["account_id"])
        if not transaction_id:
            raise ValueError("every bank line needs a transaction_id")
        if account_id not in self._accounts:
            raise ValueError(f"transaction {transaction_id} is for unknown account {account_id}")
        currency = normalise_currency(cell_text(row["currency"]))
        amount = cell_text(row["amount"])
        try:
            to_minor(amount, currency)
        except MoneyError as exc:
            raise ValueError(f"transaction {transaction_id}: {exc}") from None
        status = cell_text(row["status"])
        if status not in ("booked", "pending"):
            raise ValueError(f"transaction {transaction_id} has status {status!r}")
        booked_on = as_date(row["booked_on"])
        return Line(
            transaction_id=transaction_id,
            account_id=account_id,
            booked_on=booked_on,
            value_on=booked_on,
            amount=amount,
            currency=currency,
            counterparty=cell_text(row["counterparty"]),
            reference=cell_text(row["reference"]),
            status=status,
            pending_id=cell_text(row.get("pending_id")) or None,
        )

    # -- test controls -------------------------------------------------------------------------

    def book(self, transaction_id: str, booked_on: date | None = None) -> None:
        """Book a pending line (under its own `transaction_id`), optionally on another day."""
        with self._lock:
            line = next((x for x in self._lines if x.transaction_id == transaction_id), None)
            if line is None or line.status != "pending":
                raise KeyError(f"no pending line {transaction_id}")
            line.status = "booked"
            if booked_on is not None:
                line.booked_on = booked_on

    def expire_consent(self, account_id: str) -> None:
        """Make the account's end-user agreement expired (access ended a second ago)."""
        with self._lock:
            agreement = self._agreements[self._account_agreement[account_id]]
            agreement.accepted = self._now() - timedelta(
                days=agreement.access_valid_for_days, seconds=1
            )

    def revoke_access(self, account_id: str) -> None:
        """Revoke the account's access at the bank (`AccessExpiredError`)."""
        with self._lock:
            self._revoked.add(account_id)

    def revoke_tokens(self) -> None:
        """Forget every issued token (as after a key rotation): clients must authenticate again."""
        with self._lock:
            self._tokens.clear()

    def lines(self) -> list[dict[str, Any]]:
        """The current bank lines (for tests)."""
        with self._lock:
            return [dict(vars(line)) for line in self._lines]

    def _now(self) -> datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)
