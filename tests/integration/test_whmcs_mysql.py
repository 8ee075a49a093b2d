"""The direct read-only database mode against a real MariaDB holding the fake WHMCS's tables."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import date

import pandas as pd
import pymysql
import pytest
from starlette.applications import Starlette

from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.whmcs import WhmcsState, routes
from connectors.whmcs import WhmcsClient
from connectors.whmcs_mysql import (
    WhmcsDatabase,
    WhmcsDatabaseAccessError,
    WhmcsDatabaseUnavailableError,
)
from recon.money import to_minor
from tests.integration.whmcs_fixtures import (
    API_SECRET,
    CANARY,
    IDENTIFIER,
    MARIADB_HOST,
    MARIADB_PORT,
    MARIADB_USER,
    canonical,
    fast_policy,
    load_whmcs_tables,
    make_seed,
    mariadb_connect,
    whmcs_database,
)

__all__ = ["whmcs_database"]

pytestmark = pytest.mark.mariadb

Seed = tuple[pd.DataFrame, pd.DataFrame]


@pytest.fixture
def seed() -> Seed:
    return make_seed(160, seed=11)


@pytest.fixture
def state(seed: Seed) -> WhmcsState:
    """A fake WHMCS whose 'today' is the database's (the Overdue filter compares with it)."""
    return WhmcsState(*seed, identifier=IDENTIFIER, secret=API_SECRET, today=date.today)


@pytest.fixture
def api(state: WhmcsState) -> Iterator[WhmcsClient]:
    server: RunningServer
    with (
        run_in_thread(Starlette(routes=routes(state))) as server,
        WhmcsClient(server.url, IDENTIFIER, API_SECRET, policy=fast_policy()) as client,
    ):
        yield client


@pytest.fixture
def database(whmcs_database: str, state: WhmcsState) -> WhmcsDatabase:
    """The fake WHMCS's tables mirrored into the session's MariaDB database."""
    load_whmcs_tables(whmcs_database, state.tables())
    return WhmcsDatabase(
        host=MARIADB_HOST,
        port=MARIADB_PORT,
        user=MARIADB_USER,
        password="",
        database=whmcs_database,
    )


def test_database_mode_returns_what_the_api_returns(
    database: WhmcsDatabase, api: WhmcsClient, seed: Seed
) -> None:
    db_invoices, db_recorded = database.frames()
    api_invoices = api.invoices_frame()
    api_recorded = api.recorded_frame(api_invoices)

    pd.testing.assert_frame_equal(db_invoices, api_invoices)
    pd.testing.assert_frame_equal(db_recorded, api_recorded)
    expected_invoices, expected_recorded = canonical(*seed)
    pd.testing.assert_frame_equal(db_invoices, expected_invoices)
    pd.testing.assert_frame_equal(db_recorded, expected_recorded)
    assert db_invoices["balance_minor"].dtype == "int64"


@pytest.mark.parametrize("status", ["Unpaid", "Overdue", "Paid", "Payment Pending"])
def test_status_filters_agree(database: WhmcsDatabase, api: WhmcsClient, status: str) -> None:
    pd.testing.assert_frame_equal(database.invoices_frame(status), api.invoices_frame(status))


def test_they_still_agree_after_a_payment_is_written_back(
    database: WhmcsDatabase, api: WhmcsClient, state: WhmcsState, seed: Seed, whmcs_database: str
) -> None:
    invoices, recorded = seed
    row = invoices[
        (invoices["status"] == "Unpaid") & ~invoices["invoice_id"].isin(recorded["invoice_id"])
    ].iloc[0]
    api.add_invoice_payment(
        int(row["invoice_id"]),
        "ch_writeback",
        to_minor(row["total"], row["currency"]),
        row["currency"],
        0,
        "stripe",
        date(2025, 3, 30),
    )
    load_whmcs_tables(whmcs_database, state.tables())
    db_invoices, db_recorded = database.frames()
    pd.testing.assert_frame_equal(db_invoices, api.invoices_frame())
    pd.testing.assert_frame_equal(db_recorded, api.recorded_frame())
    paid = db_invoices.set_index("invoice_id").loc[int(row["invoice_id"])]
    assert paid["status"] == "Paid" and paid["balance_minor"] == 0
    assert (db_recorded["transid"] == "ch_writeback").sum() == 1


def test_a_client_without_currency_is_billed_in_the_default_currency(
    database: WhmcsDatabase, api: WhmcsClient, whmcs_database: str
) -> None:
    with mariadb_connect(whmcs_database) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT id FROM tblcurrencies WHERE `default` = 1")
        (default_id,) = cursor.fetchone()
        changed = cursor.execute(
            "UPDATE tblclients SET currency = 0 WHERE currency = %s", (default_id,)
        )
    assert changed > 0
    invoices, recorded = database.frames()
    pd.testing.assert_frame_equal(invoices, api.invoices_frame())
    pd.testing.assert_frame_equal(recorded, api.recorded_frame())


def test_reads_run_in_a_read_only_transaction(database: WhmcsDatabase) -> None:
    with database.snapshot() as cursor:
        cursor.execute("SELECT @@session.tx_read_only AS ro")
        assert cursor.fetchone() == {"ro": 1}
        with pytest.raises(pymysql.MySQLError) as caught:
            cursor.execute("UPDATE tblinvoices SET status = 'Paid' WHERE status = 'Unpaid'")
        assert caught.value.args[0] == 1792  # cannot execute statement in a READ ONLY transaction
    assert (database.invoices_frame("Unpaid")["status"] == "Unpaid").all()


def test_refused_credentials_fail_without_showing_the_password(whmcs_database: str) -> None:
    password = f"{CANARY}-db-password"
    database = WhmcsDatabase(
        host=MARIADB_HOST,
        port=MARIADB_PORT,
        user="whmcs_nobody",
        password=password,
        database=whmcs_database,
    )
    with pytest.raises(WhmcsDatabaseAccessError) as caught:
        database.frames()
    message = str(caught.value)
    assert f"{MARIADB_HOST}:{MARIADB_PORT}/{whmcs_database}" in message and "1045" in message
    assert CANARY not in message and CANARY not in repr(database)


def test_an_unreachable_database_fails_clearly() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = WhmcsDatabase.from_url(f"mysql://reader:{CANARY}@127.0.0.1:{port}/whmcs")
    assert (database.port, database.database, database.user) == (port, "whmcs", "reader")
    with pytest.raises(WhmcsDatabaseUnavailableError, match="could not connect") as caught:
        database.invoices_frame()
    assert CANARY not in str(caught.value)
