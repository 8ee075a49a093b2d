"""The direct read-only database mode against a real MariaDB holding the fake WHMCS's tables."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
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
    WhmcsDatabaseError,
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
from tests.tls import write_self_signed_cert

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


# -- TLS ---------------------------------------------------------------------------------------
# The shared MariaDB (127.0.0.1:3306) has TLS disabled (`have_ssl` = DISABLED), so the tests that
# need a TLS server start a private MariaDB with a certificate, from the same binaries.


class TlsMariaDb:
    """A private MariaDB serving TLS with a self-signed certificate for 127.0.0.1."""

    def __init__(self, port: int, ca: str, other_ca: str) -> None:
        self.port, self.ca, self.other_ca = port, ca, other_ca

    def database(self, *, host: str = "127.0.0.1", ssl_ca: str | None = None) -> WhmcsDatabase:
        """A connection to its `mysql` schema as the TLS-only user."""
        return WhmcsDatabase(
            host=host,
            port=self.port,
            user=TLS_USER,
            password=TLS_PASSWORD,
            database="mysql",
            ssl_ca=ssl_ca,
        )


TLS_USER, TLS_PASSWORD = "reader", f"{CANARY}-tls-password"
MARIADBD, INSTALL_DB = "/usr/sbin/mariadbd", "mariadb-install-db"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def tls_mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsMariaDb]:
    """A MariaDB on a free port with TLS on and a user that must use it (REQUIRE SSL)."""
    for tool in (MARIADBD, INSTALL_DB):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing; install the MariaDB server package")
    base = tmp_path_factory.mktemp("tls-mariadb")
    cert, key = write_self_signed_cert(base, "127.0.0.1")
    other = base / "other"
    other.mkdir()
    other_ca, _ = write_self_signed_cert(other, "someone else")
    data = base / "data"
    subprocess.run(
        [INSTALL_DB, "--no-defaults", f"--datadir={data}", "--skip-test-db",
         "--auth-root-authentication-method=normal"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        [MARIADBD, "--no-defaults", "--user=root", f"--datadir={data}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={base / 'sock'}", f"--pid-file={base / 'pid'}",
         f"--ssl-cert={cert}", f"--ssl-key={key}", f"--ssl-ca={cert}", "--skip-log-bin"],
        stdout=subprocess.DEVNULL, stderr=(base / "server.log").open("w"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                admin = pymysql.connect(host="127.0.0.1", port=port, user="root", ssl_disabled=True)
                break
            except pymysql.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with admin, admin.cursor() as cursor:
            cursor.execute(
                f"CREATE USER '{TLS_USER}'@'%%' IDENTIFIED BY %s REQUIRE SSL", (TLS_PASSWORD,)
            )
            cursor.execute(f"GRANT SELECT ON mysql.* TO '{TLS_USER}'@'%'")
        yield TlsMariaDb(port, cert, other_ca)
    finally:
        server.terminate()
        server.wait(timeout=60)


def _cipher(database: WhmcsDatabase) -> str:
    with database.snapshot() as cursor:
        cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        row = cursor.fetchone()
    assert row is not None
    return str(row["Value"])


def test_production_refuses_the_database_without_tls(
    database: WhmcsDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not database.frames()[0].empty  # development: the plain connection is allowed
    monkeypatch.setenv("RECON_ENV", "production")
    with pytest.raises(WhmcsDatabaseError, match="TLS") as caught:
        database.frames()
    assert caught.value.exit_code == 2 and "mysql_ssl_ca" in str(caught.value)


def test_production_never_falls_back_to_plain_text(
    whmcs_database: str, tls_mariadb: TlsMariaDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shared server has no TLS: with a CA configured the connection is refused, not
    silently made in clear text."""
    monkeypatch.setenv("RECON_ENV", "production")
    database = WhmcsDatabase(
        host=MARIADB_HOST,
        port=MARIADB_PORT,
        user=MARIADB_USER,
        password="",
        database=whmcs_database,
        ssl_ca=tls_mariadb.ca,
    )
    with pytest.raises(WhmcsDatabaseUnavailableError, match="SSL is required"):
        database.frames()


def test_production_reads_over_verified_tls(
    tls_mariadb: TlsMariaDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_ENV", "production")
    assert _cipher(tls_mariadb.database(ssl_ca=tls_mariadb.ca)).startswith("TLS_")

    # a certificate the CA bundle does not vouch for is refused ...
    with pytest.raises(WhmcsDatabaseUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        _cipher(tls_mariadb.database(ssl_ca=tls_mariadb.other_ca))
    # ... and so is a trusted certificate for another host name (identity is checked too)
    with pytest.raises(WhmcsDatabaseUnavailableError, match="CERTIFICATE_VERIFY_FAILED"):
        _cipher(tls_mariadb.database(host="localhost", ssl_ca=tls_mariadb.ca))
    with pytest.raises(WhmcsDatabaseError, match="TLS") as caught:
        _cipher(tls_mariadb.database())
    assert TLS_PASSWORD not in str(caught.value)


def test_the_ca_bundle_is_a_tenant_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from recon.tenants import parse_settings

    monkeypatch.setenv("RECON_ENV", "production")
    settings = parse_settings(
        {"whmcs": {"mode": "mysql", "mysql_host": "db.example", "mysql_database": "whmcs",
                   "mysql_user": "reader", "mysql_ssl_ca": "/etc/recon/whmcs-ca.pem"}}
    )  # fmt: skip
    database = WhmcsDatabase.from_settings(settings.whmcs, password="pw")
    assert database.ssl_ca == "/etc/recon/whmcs-ca.pem"
