"""WHMCS through the landing path: the frames rebuilt from landed pages equal the client's, in
API mode and in direct MySQL mode, and a replay calls WHMCS zero times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd
import pytest
from sqlalchemy import Engine

from connectors.pages import Page
from connectors.sandbox.serve import RunningServer
from connectors.sandbox.whmcs import WhmcsState
from connectors.whmcs import WhmcsClient
from connectors.whmcs_mysql import WhmcsDatabase
from recon.db.tenancy import admin_session
from recon.tenants import TenantSettings, add_tenant
from tasks.land import FetchScope, land_or_replay
from tasks.load import load_batches
from tasks.normalise_whmcs import fetch_all, fetch_mysql, page_callback, whmcs_batches
from tests.integration.whmcs_fixtures import (
    API_SECRET,
    IDENTIFIER,
    MARIADB_HOST,
    MARIADB_PORT,
    MARIADB_USER,
    fast_policy,
    load_whmcs_tables,
)

SCOPE = FetchScope("whmcs", "whmcs", "whmcs", dt.date(2025, 3, 1), dt.date(2025, 3, 31))


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    with admin_session(sqlite_engine) as session:
        add_tenant(session, "acme", "Acme", TenantSettings(), actor="test")
    return sqlite_engine


def _comparable(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    return sorted(
        tuple(str(v)[:10] if v is not None else "" for v in row)
        for row in frame.itertuples(index=False)
    )


def test_landed_pages_rebuild_the_clients_frames_and_replay_without_calls(
    engine: Engine, whmcs_server: RunningServer, whmcs_state: WhmcsState
) -> None:
    def client(on_page: Callable[[Page], None]) -> WhmcsClient:
        return WhmcsClient(whmcs_server.url, IDENTIFIER, API_SECRET, policy=fast_policy(),
                           on_page=page_callback(on_page))  # fmt: skip

    landed = land_or_replay(engine, "acme", SCOPE, fetch_all(client))
    invoices, recorded = whmcs_batches(landed.pages)
    with WhmcsClient(whmcs_server.url, IDENTIFIER, API_SECRET, policy=fast_policy()) as direct:
        expected_invoices = direct.invoices_frame()
        expected_recorded = direct.recorded_frame(expected_invoices)
    assert _comparable(invoices.rows) == _comparable(expected_invoices)
    assert _comparable(recorded.rows) == _comparable(expected_recorded)
    sent = whmcs_state.faults.count()
    replay = land_or_replay(engine, "acme", SCOPE, fetch_all(client))
    assert replay.replayed and whmcs_state.faults.count() == sent
    first = load_batches(engine, "acme", whmcs_batches(replay.pages))
    again = load_batches(engine, "acme", whmcs_batches(replay.pages))
    assert first[0].inserted == len(expected_invoices) and first[1].inserted == len(
        expected_recorded
    )
    assert [(r.inserted, r.updated) for r in again] == [(0, 0), (0, 0)]


@pytest.mark.mariadb
def test_mysql_snapshot_lands_and_rebuilds_the_same_frames(
    engine: Engine, whmcs_database: str, whmcs_state: WhmcsState
) -> None:
    load_whmcs_tables(whmcs_database, whmcs_state.tables())
    database = WhmcsDatabase(
        host=MARIADB_HOST,
        user=MARIADB_USER,
        password="",
        database=whmcs_database,
        port=MARIADB_PORT,
    )
    landed = land_or_replay(engine, "acme", SCOPE, fetch_mysql(database))
    (page,) = landed.pages
    assert page.page.endpoint == "mysql:snapshot"
    invoices, recorded = whmcs_batches(landed.pages)
    expected_invoices, expected_recorded = database.frames()
    assert _comparable(invoices.rows) == _comparable(expected_invoices)
    assert _comparable(recorded.rows) == _comparable(expected_recorded)
