"""Helpers and fixtures for the HTTP-policy and WHMCS tests: seeds, fast policies, servers, MariaDB.

Import the fixtures you use into the test module (`from tests.integration.whmcs_fixtures import
whmcs_server, ...`); pytest then finds them there.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pymysql
import pytest

from connectors.http import HttpPolicy
from connectors.sandbox.app import RouteGroup, compose
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.vault import VaultState
from connectors.sandbox.vault import routes as vault_routes
from connectors.sandbox.whmcs import WhmcsState
from connectors.sandbox.whmcs import routes as whmcs_routes
from connectors.whmcs import INVOICE_FRAME_COLUMNS, RECORDED_FRAME_COLUMNS, WhmcsClient
from recon.money import to_minor
from tests.services import MARIADB_START, require_service
from tests.tls import write_self_signed_cert

CANARY = f"CANARY-{uuid.uuid4()}"
IDENTIFIER = f"{CANARY}-identifier"
API_SECRET = f"{CANARY}-api-secret"
ACCESS_KEY = f"{CANARY}-access-key"
TODAY = date(2025, 3, 31)

MARIADB_HOST = "127.0.0.1"
MARIADB_PORT = 3306
MARIADB_USER = "root"


# -- seed data --------------------------------------------------------------------------------------

_CLIENTS = [
    (1, "Ada Lovelace", "Analytical Engines Ltd", "EUR"),
    (2, "Grace Hopper", "", "USD"),
    (3, "Alan Mathison Turing", "Bletchley Hosting", "GBP"),
    (4, "Katherine Johnson", "", "USD"),
    (5, "Hedy Lamarr", "Spread Spectrum GmbH", "EUR"),
    (6, "Yukihiro Matsumoto", "Ruby Cloud KK", "JPY"),
    (7, "Margaret Hamilton", "", "EUR"),
]
_STATUSES = ["Unpaid"] * 5 + ["Paid"] * 6 + ["Cancelled", "Refunded", "Collections", "Draft"]


def make_seed(n_invoices: int = 230, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic `invoices` and `recorded` frames (DESIGN §4.3) that WHMCS could hold."""
    rng = random.Random(seed)
    invoices: list[dict[str, Any]] = []
    recorded: list[dict[str, Any]] = []
    txn_id = 500
    for n in range(n_invoices):
        invoice_id = 1000 + n * 3 + rng.randrange(3)  # ids with gaps, like a real install
        client_id, name, company, currency = rng.choice(_CLIENTS)
        issued = date(2025, 1, 1) + timedelta(days=rng.randrange(80))
        if currency == "JPY":
            total = Decimal(rng.randrange(1_000, 90_000))
        else:
            total = Decimal(rng.randrange(500, 250_000)) / 100
        status = rng.choice(_STATUSES)
        payments: list[Decimal] = []
        if status == "Paid":
            part = (total / 3).quantize(Decimal(1) if currency == "JPY" else Decimal("0.01"))
            payments = [part, total - part] if rng.random() < 0.3 else [total]
        elif status == "Unpaid" and rng.random() < 0.3:
            payments = [(total / 2).quantize(Decimal(1) if currency == "JPY" else Decimal("0.01"))]
        elif status == "Refunded":
            payments = [total, -total]
        for amount in payments:
            txn_id += 1 + rng.randrange(2)
            fees = Decimal(0) if currency == "JPY" or amount < 0 else Decimal("0.30")
            recorded.append(
                {
                    "whmcs_txn_id": txn_id,
                    "invoice_id": invoice_id,
                    "recorded_on": (issued + timedelta(days=rng.randrange(20))).isoformat(),
                    "amount": _text(amount, currency),
                    "fees": _text(fees, currency),
                    "currency": currency,
                    "gateway": rng.choice(["stripe", "banktransfer", "paypal"]),
                    "transid": f"ch_{seed}_{txn_id:06d}" if amount > 0 else f"re_{seed}_{txn_id}",
                }
            )
        invoices.append(
            {
                "invoice_id": invoice_id,
                "invoice_num": f"INV-2025-{n:04d}" if n % 4 else "",
                "client_id": client_id,
                "client_name": name,
                "company_name": company,
                "issued_on": issued.isoformat(),
                "due_on": (issued + timedelta(days=14)).isoformat(),
                "total": _text(total, currency),
                "balance": _text(total - sum(payments, Decimal(0)), currency),
                "currency": currency,
                "status": status,
            }
        )
    return pd.DataFrame(invoices), pd.DataFrame(recorded)


def _text(amount: Decimal, currency: str) -> str:
    return f"{amount:.0f}" if currency == "JPY" else f"{amount:.2f}"


def canonical(invoices: pd.DataFrame, recorded: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The canonical frames the connectors should return for a seed, built independently."""
    inv = pd.DataFrame(
        {
            "invoice_id": invoices["invoice_id"].astype("int64"),
            "invoice_num": invoices["invoice_num"].astype(object),
            "client_id": invoices["client_id"].astype("int64"),
            "client_name": invoices["client_name"].astype(object),
            "company_name": invoices["company_name"].astype(object),
            "issued_on": invoices["issued_on"].astype(object),
            "due_on": invoices["due_on"].astype(object),
            "total_minor": [
                to_minor(t, c) for t, c in zip(invoices["total"], invoices["currency"], strict=True)
            ],
            "balance_minor": [
                to_minor(b, c)
                for b, c in zip(invoices["balance"], invoices["currency"], strict=True)
            ],
            "currency": invoices["currency"].astype(object),
            "status": invoices["status"].astype(object),
        }
    )
    rec = pd.DataFrame(
        {
            "whmcs_txn_id": recorded["whmcs_txn_id"].astype("int64"),
            "invoice_id": recorded["invoice_id"].astype("int64"),
            "recorded_on": recorded["recorded_on"].astype(object),
            "amount_minor": [
                to_minor(a, c)
                for a, c in zip(recorded["amount"], recorded["currency"], strict=True)
            ],
            "fees_minor": [
                to_minor(f, c) for f, c in zip(recorded["fees"], recorded["currency"], strict=True)
            ],
            "currency": recorded["currency"].astype(object),
            "gateway": recorded["gateway"].astype(object),
            "transid": recorded["transid"].astype(object),
        }
    )
    for frame in (inv, rec):
        for column in ("total_minor", "balance_minor", "amount_minor", "fees_minor"):
            if column in frame:
                frame[column] = frame[column].astype("int64")
    inv = inv.sort_values("invoice_id").reset_index(drop=True)[list(INVOICE_FRAME_COLUMNS)]
    rec = rec.sort_values("whmcs_txn_id").reset_index(drop=True)[list(RECORDED_FRAME_COLUMNS)]
    return inv, rec


def sums_by_currency(frame: pd.DataFrame, column: str) -> dict[str, tuple[int, int]]:
    """(row count, sum) of `column` per currency, as plain ints."""
    grouped = frame.groupby("currency")[column].agg(["count", "sum"])
    return {str(c): (int(r["count"]), int(r["sum"])) for c, r in grouped.iterrows()}


# -- policies and clocks -------------------------------------------------------------------------------


@dataclass
class RecordingSleep:
    """A `sleep` that records the delays asked for and returns at once."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def fast_policy(sleep: RecordingSleep | None = None, seed: int = 1, **overrides: Any) -> HttpPolicy:
    """A policy with short timeouts, a recording sleep and a seeded jitter source."""
    settings: dict[str, Any] = {
        "connect_timeout": 2.0,
        "read_timeout": 0.5,
        "max_attempts": 4,
        "backoff_base": 0.1,
        "backoff_cap": 2.0,
        "retry_budget": 30.0,
        "sleep": sleep if sleep is not None else RecordingSleep(),
        "random": random.Random(seed).random,
    }
    settings.update(overrides)
    return HttpPolicy(**settings)


# -- sandbox fixtures -------------------------------------------------------------------------------


@pytest.fixture
def whmcs_seed() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The default seed frames."""
    return make_seed()


@pytest.fixture
def whmcs_state(whmcs_seed: tuple[pd.DataFrame, pd.DataFrame]) -> WhmcsState:
    """A fake WHMCS seeded with `whmcs_seed`, with canary credentials and a fixed 'today'."""
    invoices, recorded = whmcs_seed
    return WhmcsState(
        invoices, recorded, identifier=IDENTIFIER, secret=API_SECRET, today=lambda: TODAY
    )


@pytest.fixture
def whmcs_server(whmcs_state: WhmcsState) -> Iterator[RunningServer]:
    """The fake WHMCS (next to a fake Vault, as in the shared sandbox) over real HTTP."""
    app = compose(
        [
            RouteGroup("vault", vault_routes(VaultState())),
            RouteGroup("whmcs", whmcs_routes(whmcs_state)),
        ]
    )
    with run_in_thread(app) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    """A recording sleep for the client's policy."""
    return RecordingSleep()


@pytest.fixture
def whmcs_client(whmcs_server: RunningServer, sleep: RecordingSleep) -> Iterator[WhmcsClient]:
    """A client for the fake WHMCS with a fast policy and the recording sleep."""
    with WhmcsClient(whmcs_server.url, IDENTIFIER, API_SECRET, policy=fast_policy(sleep)) as client:
        yield client


# -- MariaDB --------------------------------------------------------------------------------------------

WHMCS_SCHEMA = [
    """CREATE TABLE tblcurrencies (
        id int(10) unsigned NOT NULL AUTO_INCREMENT,
        code text NOT NULL,
        prefix text NOT NULL,
        suffix text NOT NULL,
        format int(1) NOT NULL DEFAULT 1,
        rate decimal(10,5) NOT NULL DEFAULT 1.00000,
        `default` int(1) NOT NULL DEFAULT 0,
        PRIMARY KEY (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tblclients (
        id int(10) unsigned NOT NULL AUTO_INCREMENT,
        uuid varchar(255) NOT NULL DEFAULT '',
        firstname text NOT NULL,
        lastname text NOT NULL,
        companyname text NOT NULL,
        email text NOT NULL,
        country text NOT NULL DEFAULT '',
        currency int(10) NOT NULL DEFAULT 0,
        defaultgateway text NOT NULL DEFAULT '',
        credit decimal(16,2) NOT NULL DEFAULT 0.00,
        groupid int(10) NOT NULL DEFAULT 0,
        status enum('Active','Inactive','Closed') NOT NULL DEFAULT 'Active',
        datecreated date NOT NULL DEFAULT '2025-01-01',
        PRIMARY KEY (id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tblinvoices (
        id int(10) unsigned NOT NULL AUTO_INCREMENT,
        userid int(10) NOT NULL,
        invoicenum text NOT NULL,
        date date DEFAULT NULL,
        duedate date DEFAULT NULL,
        datepaid datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
        last_capture_attempt datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
        date_refunded datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
        date_cancelled datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
        subtotal decimal(16,2) NOT NULL,
        credit decimal(16,2) NOT NULL,
        tax decimal(16,2) NOT NULL,
        tax2 decimal(16,2) NOT NULL,
        total decimal(16,2) NOT NULL DEFAULT 0.00,
        taxrate decimal(10,3) NOT NULL DEFAULT 0.000,
        taxrate2 decimal(10,3) NOT NULL DEFAULT 0.000,
        status text NOT NULL,
        paymentmethod text NOT NULL,
        paymethodid int(10) unsigned DEFAULT NULL,
        notes text NOT NULL DEFAULT '',
        created_at timestamp NOT NULL DEFAULT '0000-00-00 00:00:00',
        updated_at timestamp NOT NULL DEFAULT '0000-00-00 00:00:00',
        PRIMARY KEY (id),
        KEY userid (userid),
        KEY status (status(3))
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """CREATE TABLE tblaccounts (
        id int(10) unsigned NOT NULL AUTO_INCREMENT,
        userid int(10) NOT NULL,
        currency int(10) NOT NULL,
        gateway text NOT NULL,
        date datetime DEFAULT NULL,
        description text NOT NULL,
        amountin decimal(16,2) NOT NULL DEFAULT 0.00,
        fees decimal(16,2) NOT NULL DEFAULT 0.00,
        amountout decimal(16,2) NOT NULL DEFAULT 0.00,
        rate decimal(16,5) NOT NULL DEFAULT 1.00000,
        transid text NOT NULL,
        invoiceid int(10) unsigned NOT NULL DEFAULT 0,
        refundid int(10) unsigned NOT NULL DEFAULT 0,
        PRIMARY KEY (id),
        KEY invoiceid (invoiceid),
        KEY userid (userid),
        KEY date (date),
        KEY transid (transid(32))
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
]
WHMCS_TABLES = ("tblaccounts", "tblinvoices", "tblclients", "tblcurrencies")


def mariadb_connect(database: str | None = None) -> pymysql.connections.Connection[Any]:
    """A root connection to the test MariaDB (autocommit)."""
    return pymysql.connect(
        host=MARIADB_HOST,
        port=MARIADB_PORT,
        user=MARIADB_USER,
        password="",
        database=database,
        charset="utf8mb4",
        autocommit=True,
    )


@pytest.fixture(scope="session")
def whmcs_database() -> Iterator[str]:
    """A uniquely named MariaDB database for this test session; dropped afterwards."""
    require_service("MariaDB", MARIADB_HOST, MARIADB_PORT, MARIADB_START)
    name = f"whmcs_test_{uuid.uuid4().hex[:12]}"
    with mariadb_connect() as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield name
    finally:
        with mariadb_connect() as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


def load_whmcs_tables(database: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    """(Re)create the WHMCS tables in `database` and fill them with `tables`' rows."""
    with mariadb_connect(database) as conn, conn.cursor() as cursor:
        cursor.execute("SET SESSION sql_mode = 'NO_ENGINE_SUBSTITUTION'")
        for table in WHMCS_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in WHMCS_SCHEMA:
            cursor.execute(statement)
        for table, rows in tables.items():
            if not rows:
                continue
            columns = list(rows[0])
            names = ", ".join(f"`{c}`" for c in columns)
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",
                [tuple(row[c] for c in columns) for row in rows],
            )


# -- TLS ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def self_signed_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its private key, as PEM file paths."""
    return write_self_signed_cert(tmp_path_factory.mktemp("whmcs-tls"), "whmcs sandbox")


def wait_for_requests(plan: Any, count: int, timeout: float = 5.0, **match: Any) -> int:
    """Wait until the plan has logged `count` matching requests (handlers may still be sleeping)."""
    import time

    deadline = time.monotonic() + timeout
    seen = plan.count(**match)
    while seen < count and time.monotonic() < deadline:
        time.sleep(0.02)
        seen = plan.count(**match)
    return int(seen)
