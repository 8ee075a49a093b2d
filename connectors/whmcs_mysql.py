"""Read WHMCS straight from its MySQL/MariaDB database, read-only, into the canonical frames.

The queries read `tblinvoices`, `tblclients`, `tblcurrencies` and `tblaccounts` (providers.md §4.5)
and shape their rows like the API's (GetInvoices, GetTransactions), so `connectors.whmcs`'s parsers
give frames identical to the API mode's on the same data: the invoice currency is the client's
(WHMCS's default currency when the client has none), and the balance is derived as WHMCS derives
it. Both tables are read in one `READ ONLY` transaction with a consistent snapshot, and the session
itself is set read-only; give the database user SELECT rights only.

TLS: with `ssl_ca` the connection is TLS-only, the server's certificate verified against that CA
bundle and its name against `host` (never a silent fall-back to clear text). In production
(`RECON_ENV`) a connection without a CA bundle is refused before anything is sent.

Failures raise `WhmcsDatabaseError` subclasses naming host, port and database, never the password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
import pymysql
import pymysql.cursors

from connectors.whmcs import parse_invoices, parse_recorded
from recon.errors import ConfigError, ReconError
from recon.redaction import redact, register_secret

if TYPE_CHECKING:
    from recon.tenants import WhmcsSettings

_INVOICES_SQL = """
SELECT i.id, i.userid, c.firstname, c.lastname, c.companyname, i.invoicenum,
       DATE_FORMAT(i.date, '%%Y-%%m-%%d') AS date,
       DATE_FORMAT(i.duedate, '%%Y-%%m-%%d') AS duedate,
       CAST(i.total AS CHAR) AS total, i.status,
       COALESCE(cur.code,
                (SELECT d.code FROM tblcurrencies d WHERE d.`default` = 1 ORDER BY d.id LIMIT 1)) AS currencycode
FROM tblinvoices i
JOIN tblclients c ON c.id = i.userid
LEFT JOIN tblcurrencies cur ON cur.id = c.currency
WHERE %(status)s IS NULL
   OR (%(status)s = 'Overdue' AND i.status = 'Unpaid' AND i.duedate < CURDATE())
   OR i.status = %(status)s
ORDER BY i.id
"""
_TRANSACTIONS_SQL = """
SELECT a.id, a.userid, a.currency, a.gateway,
       DATE_FORMAT(a.date, '%%Y-%%m-%%d %%H:%%i:%%s') AS date,
       CAST(a.amountin AS CHAR) AS amountin, CAST(a.fees AS CHAR) AS fees,
       CAST(a.amountout AS CHAR) AS amountout, a.transid, a.invoiceid,
       CASE WHEN a.currency <> 0 THEN own.code
            WHEN a.userid <> 0 THEN COALESCE(cc.code,
                (SELECT d.code FROM tblcurrencies d WHERE d.`default` = 1 ORDER BY d.id LIMIT 1))
       END AS currencycode
FROM tblaccounts a
LEFT JOIN tblcurrencies own ON own.id = a.currency
LEFT JOIN tblclients c ON c.id = a.userid
LEFT JOIN tblcurrencies cc ON cc.id = c.currency
ORDER BY a.id
"""
# Both queries go through pymysql's %-formatting (always with an args dict), hence the %% above.
_ACCESS_DENIED = frozenset({1044, 1045, 1142, 1143, 1227})


class WhmcsDatabaseError(ReconError):
    """The WHMCS database could not be read; names host, port and database, never the password."""


class WhmcsDatabaseUnavailableError(WhmcsDatabaseError):
    """The database did not answer (refused, timed out, gone away)."""


class WhmcsDatabaseAccessError(WhmcsDatabaseError):
    """The database refused the user (bad password, missing SELECT grant)."""


class WhmcsDatabaseTlsRequiredError(WhmcsDatabaseError, ConfigError):
    """Production reaches the database only over verified TLS, and no CA bundle is configured."""


def _production() -> bool:
    from recon.settings import load_settings

    return load_settings().is_production


@dataclass(frozen=True)
class WhmcsDatabase:
    """Connection settings of a WHMCS database, and read-only readers of its invoices and payments."""

    host: str
    user: str
    password: str = field(repr=False)
    database: str
    port: int = 3306
    ssl_ca: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    require_tls: bool | None = None
    """Refuse to connect without `ssl_ca`; None: only in production, as RECON_ENV says now."""

    def __post_init__(self) -> None:
        register_secret(self.password)

    @classmethod
    def from_settings(cls, whmcs: WhmcsSettings, *, password: str) -> WhmcsDatabase:
        """From a tenant's WHMCS settings (`mysql_*`, with `mysql_ssl_ca`) and the password."""
        if not (whmcs.mysql_host and whmcs.mysql_database and whmcs.mysql_user):
            raise ConfigError(
                "WHMCS MySQL mode needs whmcs.mysql_host, whmcs.mysql_database and whmcs.mysql_user"
            )
        return cls(
            host=whmcs.mysql_host,
            user=whmcs.mysql_user,
            password=password,
            database=whmcs.mysql_database,
            port=whmcs.mysql_port,
            ssl_ca=whmcs.mysql_ssl_ca,
        )

    @classmethod
    def from_url(cls, url: str) -> WhmcsDatabase:
        """From `mysql://user:password@host:port/database?ssl_ca=/path/ca.pem`."""
        parts = urlsplit(url)
        if not parts.scheme.startswith(("mysql", "mariadb")) or not parts.path.strip("/"):
            raise WhmcsDatabaseError(
                "the WHMCS database URL must look like mysql://user:password@host:port/database."
            )
        if parts.password:
            register_secret(unquote(parts.password))
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname or "127.0.0.1",
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=parts.path.strip("/"),
            port=parts.port or 3306,
            ssl_ca=query.get("ssl_ca", [None])[0],
        )

    @property
    def where(self) -> str:
        """`host:port/database`, for messages."""
        return f"{self.host}:{self.port}/{self.database}"

    @contextmanager
    def snapshot(self) -> Iterator[pymysql.cursors.DictCursor]:
        """A dict cursor inside a read-only transaction with a consistent snapshot."""
        connection = self._connect()
        try:
            with connection.cursor() as cursor:
                self._execute(cursor, "SET SESSION TRANSACTION READ ONLY")
                self._execute(cursor, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
                yield cursor
        finally:
            try:
                connection.rollback()
            finally:
                connection.close()

    def snapshot_rows(
        self, status: str | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The raw invoice and ledger rows (API-shaped), read in one read-only snapshot."""
        with self.snapshot() as cursor:
            invoices = self._rows(cursor, _INVOICES_SQL, {"status": status})
            transactions = self._rows(cursor, _TRANSACTIONS_SQL, {})
        return invoices, transactions

    def frames(self, status: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Canonical invoices (optionally of one status) and all recorded payments, one snapshot."""
        invoices, transactions = self.snapshot_rows(status)
        invoice_frame = parse_invoices(invoices, transactions)
        recorded = parse_recorded(
            transactions,
            invoice_currency={int(r["id"]): str(r["currencycode"]) for r in invoices},
        )
        return invoice_frame, recorded

    def invoices_frame(self, status: str | None = None) -> pd.DataFrame:
        """Canonical invoices, as `WhmcsClient.invoices_frame` returns them."""
        return self.frames(status)[0]

    def recorded_frame(self) -> pd.DataFrame:
        """Canonical recorded payments, as `WhmcsClient.recorded_frame` returns them."""
        return self.frames()[1]

    # -- internals -----------------------------------------------------------------------------

    def _connect(self) -> pymysql.connections.Connection[pymysql.cursors.DictCursor]:
        required = self.require_tls if self.require_tls is not None else _production()
        if required and not self.ssl_ca:
            raise WhmcsDatabaseTlsRequiredError(
                f"the WHMCS database at {self.where} must be reached over TLS in production; "
                "set whmcs.mysql_ssl_ca to the CA bundle that signs the server's certificate."
            )
        try:
            return pymysql.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                database=self.database,
                charset="utf8mb4",
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                write_timeout=self.read_timeout,
                # with a CA: TLS required (no clear-text fall-back), certificate and name checked
                ssl_ca=self.ssl_ca,
                ssl_verify_cert=True if self.ssl_ca else None,
                ssl_verify_identity=True if self.ssl_ca else None,
                autocommit=False,
                cursorclass=pymysql.cursors.DictCursor,
            )
        except pymysql.MySQLError as exc:
            raise self._error(exc, "connect") from None

    def _execute(
        self, cursor: pymysql.cursors.DictCursor, sql: str, args: dict[str, Any] | None = None
    ) -> None:
        try:
            cursor.execute(sql, args)
        except pymysql.MySQLError as exc:
            raise self._error(exc, "read") from None

    def _rows(
        self, cursor: pymysql.cursors.DictCursor, sql: str, args: dict[str, Any]
    ) -> list[dict[str, Any]]:
        self._execute(cursor, sql, args)
        return list(cursor.fetchall())

    def _error(self, exc: pymysql.MySQLError, doing: str) -> WhmcsDatabaseError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        detail = redact(str(exc.args[1] if len(exc.args) > 1 else exc))
        if code in _ACCESS_DENIED:
            return WhmcsDatabaseAccessError(
                f"the WHMCS database at {self.where} refused user {self.user!r} ({code}: {detail}); "
                "check the user, its password and its SELECT grants."
            )
        if isinstance(exc, pymysql.OperationalError) and doing == "connect":
            return WhmcsDatabaseUnavailableError(
                f"could not connect to the WHMCS database at {self.where} ({code}: {detail}); "
                "check that it is running and reachable."
            )
        return WhmcsDatabaseError(
            f"could not {doing} the WHMCS database at {self.where} ({code}: {detail})."
        )
