"""Per-account daily provider quotas, counted in the database so re-runs never burn them.

GoCardless Bank Account Data lets a bank limit reads to as few as 4 *successful* calls per account,
per scope (details, balances, transactions), per day (shared/reference/providers.md §1.6). A
`QuotaGuard` keeps one `ProviderQuota` row per (tenant, provider, account, endpoint, day) and plugs
into `PolicyClient` as its `before_request`/`after_response` hooks:

* `before_request` *reserves* a call with one conditional `UPDATE ... SET calls = calls + 1 WHERE
  calls < limit`: the database serialises concurrent runs, so two processes can never both take
  the last call. When nothing is left it raises `QuotaExhaustedError` before anything is sent.
* `after_response` gives the reservation back when the provider answered with anything but 2xx
  (the provider only counts successful calls). A 2xx whose body turns out to be cut still counts,
  as it does at the provider. An attempt that got no answer at all (timeout, dropped connection)
  keeps its reservation: the provider may have served it, so the guard assumes it did.
* `learn` takes the provider's own view from a successful response's headers
  (`HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT/REMAINING/RESET`): the limit, the calls used (never
  lowering ours) and when the window resets. `PolicyClient` hooks do not see headers, so the
  connector calls `learn` with the final response.

A *retry* of a limited call after an attempt that counted (a 2xx whose body came back cut, a
timeout) may only use the first half of the day's calls: it is refused with
`QuotaRetryRefusedError` when taking it would leave fewer than half the limit, so one bad answer
never spends the calls the day's next run needs.

Days are UTC days of the injected clock. A window the provider says resets later than midnight
keeps refusing until its learned reset time.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import CursorResult, Engine, Table, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from connectors.http import CallInfo, ProviderError
from recon.db.models import ProviderQuota
from recon.db.tenancy import tenant_session

DEFAULT_DAILY_LIMIT = 4
"""GoCardless's documented floor: four successful calls per account and scope per day."""

LIMIT_HEADER = "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_LIMIT"
REMAINING_HEADER = "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_REMAINING"
RESET_HEADER = "HTTP_X_RATELIMIT_ACCOUNT_SUCCESS_RESET"

_ACCOUNT_SCOPE = re.compile(
    r"/accounts/(?P<account>[^/?#]+)/(?P<scope>details|balances|transactions)/?$"
)


@dataclass(frozen=True)
class QuotaKey:
    """What one quota counts: an account and one of its rate-limited endpoints."""

    account_ref: str
    endpoint: str


ScopeOf = Callable[[CallInfo], "QuotaKey | None"]
"""Which quota an attempt draws on (None: the call is not limited per account)."""


def bad_account_scope(info: CallInfo) -> QuotaKey | None:
    """Bank Account Data: `GET .../accounts/{id}/{details|balances|transactions}/` draw on the
    account's daily limit for that scope; every other call (tokens, metadata) does not."""
    match = _ACCOUNT_SCOPE.search(urlsplit(info.url).path)
    if match is None or info.method != "GET":
        return None
    return QuotaKey(match["account"], match["scope"])


@dataclass(frozen=True)
class QuotaUsage:
    """How much of one day's quota is used."""

    account_ref: str
    endpoint: str
    day: dt.date
    calls: int
    limit: int
    reset_at: dt.datetime

    @property
    def remaining(self) -> int:
        """Calls still allowed today."""
        return max(self.limit - self.calls, 0)


class QuotaExhaustedError(ProviderError):
    """The provider's per-account daily quota is used up; the call was not sent."""

    def __init__(
        self,
        usage: QuotaUsage,
        *,
        provider: str,
        method: str,
        path: str,
        endpoint: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(
            f"{provider} allows {usage.limit} successful {usage.endpoint} calls per day for "
            f"account {usage.account_ref} and {usage.calls} were already made on {usage.day}; "
            f"the quota resets at {usage.reset_at:%Y-%m-%d %H:%M} UTC, so replay the data "
            "already landed or try again after that.",
            provider=provider,
            method=method,
            path=path or "/",
            endpoint=endpoint,
            attempts=attempts,
        )
        self.usage = usage


class QuotaRetryRefusedError(QuotaExhaustedError):
    """A failed limited call is not retried: the retry would spend calls kept for the next run."""

    def __init__(
        self,
        usage: QuotaUsage,
        *,
        provider: str,
        method: str,
        path: str,
        endpoint: str | None,
        attempts: int,
    ) -> None:
        ProviderError.__init__(
            self,
            f"{provider} {usage.endpoint} call for account {usage.account_ref} failed and is not "
            f"retried: {usage.calls} of the {usage.limit} calls allowed on {usage.day} are used "
            "and retries may use only the first half, so the rest is kept for the next run.",
            provider=provider,
            method=method,
            path=path or "/",
            endpoint=endpoint,
            attempts=attempts,
        )
        self.usage = usage


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands datetimes back naive; they were written as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


class QuotaGuard:
    """A provider's per-account daily quota for one tenant, in the database; thread-safe."""

    def __init__(
        self,
        engine: Engine,
        tenant_id: str,
        *,
        provider: str = "gocardless",
        provider_label: str = "GoCardless",
        default_limit: int = DEFAULT_DAILY_LIMIT,
        clock: Callable[[], dt.datetime] = _utcnow,
        scope_of: ScopeOf = bad_account_scope,
    ) -> None:
        if default_limit < 1:
            raise ValueError("default_limit must be at least 1")
        self._engine = engine
        self._tenant = tenant_id
        self.provider = provider
        self.provider_label = provider_label
        self.default_limit = default_limit
        self._clock = clock
        self._scope_of = scope_of
        self._local = threading.local()

    # -- PolicyClient hooks --------------------------------------------------------------------

    def before_request(self, info: CallInfo) -> None:
        """Reserve one call of the attempt's quota, or raise `QuotaExhaustedError`."""
        self._local.reserved = None
        if info.attempt <= 1:
            self._local.spent = 0
        key = self._scope_of(info)
        if key is None:
            return
        where: dict[str, Any] = {
            "method": info.method,
            "path": urlsplit(info.url).path,
            "endpoint": info.endpoint,
            "attempts": info.attempt,
        }
        now = self._now()
        blocked = self._blocked_by_earlier_window(key, now)
        if blocked is not None:
            raise QuotaExhaustedError(blocked, provider=self.provider_label, **where)
        # A retry after attempts that all gave their call back (429, 5xx) spends nothing more
        # than the first try would; one after a call that counted (a cut 2xx body, a timeout)
        # may only use the first half of the day's calls.
        retry = info.attempt > 1 and getattr(self._local, "spent", 0) > 0
        if not self._reserve(key, now.date(), retry=retry):
            if retry:
                raise QuotaRetryRefusedError(
                    self.usage(key.account_ref, key.endpoint, now.date()),
                    provider=self.provider_label,
                    **where,
                )
            raise QuotaExhaustedError(
                self.usage(key.account_ref, key.endpoint, now.date()),
                provider=self.provider_label,
                **where,
            )
        self._local.reserved = (key, now.date())
        self._local.spent = getattr(self._local, "spent", 0) + 1

    def check(
        self, account_ref: str, endpoint: str, *, method: str = "GET", path: str = ""
    ) -> None:
        """Raise `QuotaExhaustedError` now if no call is left (reserves nothing): lets a
        connector skip the work around a call (fetching a token) that would be refused."""
        key = QuotaKey(account_ref, endpoint)
        now = self._now()
        usage = self._blocked_by_earlier_window(key, now) or self.usage(
            account_ref, endpoint, now.date()
        )
        if usage.calls >= usage.limit:
            raise QuotaExhaustedError(
                usage, provider=self.provider_label, method=method, path=path, endpoint=endpoint
            )

    def after_response(self, info: CallInfo, status: int) -> None:
        """Give the reservation back unless the provider answered 2xx (only successes count)."""
        reserved: tuple[QuotaKey, dt.date] | None = getattr(self._local, "reserved", None)
        self._local.reserved = None
        if reserved is None or 200 <= status < 300:
            return
        self._local.spent = max(getattr(self._local, "spent", 0) - 1, 0)
        key, day = reserved
        table = self._table()
        with tenant_session(self._engine, self._tenant) as session:
            session.execute(
                update(ProviderQuota)
                .where(*self._match(table, key, day), table.c.calls > 0)
                .values(calls=table.c.calls - 1)
                .execution_options(synchronize_session=False)
            )

    # -- learning and reading ------------------------------------------------------------------

    def learn(self, account_ref: str, endpoint: str, headers: Mapping[str, str]) -> None:
        """Take the provider's limit, used calls and reset time from a successful response."""
        limit = _header_int(headers, LIMIT_HEADER)
        remaining = _header_int(headers, REMAINING_HEADER)
        reset = _header_int(headers, RESET_HEADER)
        if limit is None and remaining is None and reset is None:
            return
        now = self._now()
        key = QuotaKey(account_ref, endpoint)
        table = self._table()
        values: dict[str, Any] = {}
        if limit is not None:
            values["limit"] = limit
        if reset is not None:
            values["reset_at"] = now + dt.timedelta(seconds=reset)
        if remaining is not None:
            used = max((limit if limit is not None else self.default_limit) - remaining, 0)
            values["calls"] = case((table.c.calls < used, used), else_=table.c.calls)
        with tenant_session(self._engine, self._tenant) as session:
            self._ensure_row(session, key, now.date())
            session.execute(
                update(ProviderQuota)
                .where(*self._match(table, key, now.date()))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def usage(self, account_ref: str, endpoint: str, day: dt.date | None = None) -> QuotaUsage:
        """Calls used, the limit and the reset time of one account's endpoint on `day`."""
        now = self._now()
        day = day or now.date()
        with tenant_session(self._engine, self._tenant) as session:
            row = session.scalars(
                select(ProviderQuota).where(
                    ProviderQuota.provider == self.provider,
                    ProviderQuota.account_ref == account_ref,
                    ProviderQuota.endpoint == endpoint,
                    ProviderQuota.day == day,
                )
            ).one_or_none()
        midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
        if row is None:
            return QuotaUsage(account_ref, endpoint, day, 0, self.default_limit, midnight)
        return QuotaUsage(
            account_ref,
            endpoint,
            day,
            row.calls,
            row.limit if row.limit is not None else self.default_limit,
            _aware(row.reset_at) or midnight,
        )

    # -- internals -----------------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        now = self._clock()
        return now.astimezone(dt.UTC) if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)

    @staticmethod
    def _table() -> Table:
        table = ProviderQuota.__table__
        assert isinstance(table, Table)
        return table

    def _match(self, table: Table, key: QuotaKey, day: dt.date) -> tuple[Any, ...]:
        return (
            table.c.tenant_id == self._tenant,
            table.c.provider == self.provider,
            table.c.account_ref == key.account_ref,
            table.c.endpoint == key.endpoint,
            table.c.day == day,
        )

    def _ensure_row(self, session: Session, key: QuotaKey, day: dt.date) -> None:
        table = self._table()
        dialect = session.get_bind().dialect.name
        values = {
            "tenant_id": self._tenant,
            "provider": self.provider,
            "account_ref": key.account_ref,
            "endpoint": key.endpoint,
            "day": day,
            "calls": 0,
        }
        conflict = ["tenant_id", "provider", "account_ref", "endpoint", "day"]
        if dialect == "postgresql":
            session.execute(
                postgresql.insert(table)
                .values(values)
                .on_conflict_do_nothing(index_elements=conflict)
            )
        elif dialect == "sqlite":
            session.execute(
                sqlite.insert(table).values(values).on_conflict_do_nothing(index_elements=conflict)
            )
        else:  # pragma: no cover - the project supports SQLite and PostgreSQL
            raise NotImplementedError(f"quotas are not implemented for {dialect}")

    def _reserve(self, key: QuotaKey, day: dt.date, *, retry: bool = False) -> bool:
        """Atomically count one more call if the day's limit allows it (a retry: only while,
        with it, at most half the limit is used)."""
        table = self._table()
        limit = func.coalesce(table.c.limit, self.default_limit)
        allowed = 2 * (table.c.calls + 1) <= limit if retry else table.c.calls < limit
        with tenant_session(self._engine, self._tenant) as session:
            self._ensure_row(session, key, day)
            result = session.execute(
                update(ProviderQuota)
                .where(*self._match(table, key, day), allowed)
                .values(calls=table.c.calls + 1)
                .execution_options(synchronize_session=False)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    def _blocked_by_earlier_window(self, key: QuotaKey, now: dt.datetime) -> QuotaUsage | None:
        """An earlier day's exhausted window whose learned reset time is still ahead."""
        with tenant_session(self._engine, self._tenant) as session:
            rows = session.scalars(
                select(ProviderQuota).where(
                    ProviderQuota.provider == self.provider,
                    ProviderQuota.account_ref == key.account_ref,
                    ProviderQuota.endpoint == key.endpoint,
                    ProviderQuota.day < now.date(),
                    ProviderQuota.day >= now.date() - dt.timedelta(days=2),
                    ProviderQuota.reset_at.is_not(None),
                )
            ).all()
        for row in rows:
            limit = row.limit if row.limit is not None else self.default_limit
            reset_at = _aware(row.reset_at)
            if reset_at is not None and reset_at > now and row.calls >= limit:
                return QuotaUsage(
                    key.account_ref, key.endpoint, row.day, row.calls, limit, reset_at
                )
        return None


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    """An integer rate-limit header, under its literal `HTTP_X_...` name or the `x-...` form."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.removeprefix("HTTP_").replace("_", "-"))
    if value is None:
        return None
    try:
        return max(int(str(value).strip()), 0)
    except ValueError:
        return None
