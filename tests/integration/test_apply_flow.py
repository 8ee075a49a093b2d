"""Apply inside the reconcile flow (which holds the tenant's lock) on the sandbox: new money once,
nothing WHMCS already records, and nothing at all on the next run."""

from __future__ import annotations

import datetime as dt

from flows.reconcile import reconcile
from tests.pipeline.conftest import (  # noqa: F401 - fixtures used by name
    AS_OF,
    TENANT,
    Pipeline,
    pipeline,
    prefect_harness,
    sandbox,
)

WINDOW = (AS_OF - dt.timedelta(days=59), AS_OF)


def test_the_flow_applies_new_money_once_and_then_nothing(pipeline: Pipeline) -> None:  # noqa: F811
    whmcs = pipeline.sandbox.whmcs
    before = len(whmcs.tables()["tblaccounts"])
    first = reconcile(tenant=TENANT, date_from=WINDOW[0], date_to=WINDOW[1], apply=True)
    assert first.apply is not None
    applied = first.apply
    assert applied.applied > 0 and applied.failed == 0
    assert len(whmcs.tables()["tblaccounts"]) == before + applied.applied
    invoices = whmcs.tables()["tblinvoices"]
    assert [i["id"] for i in invoices if whmcs.balance(int(i["id"])) < 0] == []
    second = reconcile(tenant=TENANT, date_from=WINDOW[0], date_to=WINDOW[1], apply=True)
    assert second.apply is None or second.apply.applied == 0
    assert len(whmcs.tables()["tblaccounts"]) == before + applied.applied
