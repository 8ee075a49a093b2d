"""Validation verdicts reused on a replay, on SQLite and PostgreSQL: a batch whose fingerprint
(suite, GX version, parameters, the exact frame) a run of the same tenant and window already
validated takes that verdict without starting GX, and everything it leads to (quarantine, hold,
the stored rows) is what a fresh validation gives; any change, or another tenant, runs GX."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import DateTime, Engine, select

from connectors.runtime import Runtime
from connectors.sandbox.serve import RunningServer
from recon.canonical import TRANSACTIONS
from recon.db.base import Base
from recon.db.models import Run, ValidationResult
from recon.db.tenancy import admin_session, tenant_session
from recon.settings import get_settings
from recon.tenants import GoCardlessSettings, TenantSettings, add_tenant
from tasks import extract, validate
from tasks.extract import Source, SourceContext, extract_source
from tasks.load import Batch
from tasks.runs import finish_run, start_run
from tasks.validate import (
    ExpectationOutcome,
    ValidationPolicy,
    check_for,
    find_verdicts,
    store_outcome,
    validate_check,
)
from tests.integration.gocardless_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    WINDOW,
    RecordingSleep,
    account_id,
    bad_state,
    bank_seed,
    clock,
    fast_policy,
    gc_server,
    payments_state,
    sleep,
)

__all__ = ["bad_state", "bank_seed", "clock", "gc_server", "payments_state", "sleep"]

TENANTS = ("acme", "beta")
ACCOUNT = account_id(0)
# Low enough that some sandbox lines break `amount_sane`, and no hold, so rejects are exercised.
POLICY = ValidationPolicy(hold_threshold=1.0, max_abs_amount_minor=150_000)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database with two tenants, as the application connects to it."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        for tenant in TENANTS:
            add_tenant(session, tenant, tenant.title(), TenantSettings(), actor="test")
    yield app


def bank_rows(n: int = 12, **overrides: Any) -> pd.DataFrame:
    rows = [
        {
            "source": "bank",
            "account_ref": "acc-1",
            "source_id": f"line-{i}",
            "kind": "payment",
            "status": "booked",
            "booked_on": dt.date(2026, 10, 1 + i),
            "value_on": None,
            "amount_minor": 20_000 * (i + 1),
            "fee_minor": 0,
            "currency": "EUR",
            "counterparty": "Jane",
            "reference": f"INV-{i}",
            "payout_id": None,
        }
        for i in range(n)
    ]
    rows[3]["currency"] = "EURO"  # one row breaks currency_iso4217 whatever the policy
    frame = pd.DataFrame(rows)
    for column, value in overrides.items():
        frame[column] = value
    return frame


def _check(frame: pd.DataFrame, policy: ValidationPolicy = POLICY) -> validate.Check:
    batch = Batch("gocardless", TRANSACTIONS, frame)
    return check_for(batch, window_from=WINDOW[0], window_to=WINDOW[1], policy=policy)


def _store(engine: Engine, tenant: str, run_id: str, check: validate.Check) -> None:
    outcome = validate_check(check, POLICY)
    with tenant_session(engine, tenant) as session:
        session.add(Run(id=run_id, window_from=WINDOW[0], window_to=WINDOW[1]))
        session.flush()
        store_outcome(session, run_id, outcome)


def _found(engine: Engine, tenant: str, check: validate.Check) -> dict[str, Any]:
    assert check.suite and check.fingerprint
    with tenant_session(engine, tenant) as session:
        wanted = [(check.suite, check.batch.dataset.name, check.fingerprint)]
        return dict(find_verdicts(session, WINDOW, wanted))


def _no_gx(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> list[ExpectationOutcome]:
        raise AssertionError("GX ran although the verdict was stored")

    monkeypatch.setattr(validate, "run_suite", refuse)
    monkeypatch.setattr(validate, "prepare", lambda: refuse())
    monkeypatch.setattr(extract, "prepare", lambda: refuse())


def test_a_stored_verdict_is_reused_without_gx_and_gives_the_same_rejects(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = validate_check(_check(bank_rows()), POLICY)
    assert fresh.rows_failed >= 2  # the bad currency and the amounts over 150,000
    _store(db, "acme", "run-1", _check(bank_rows()))
    again = _check(bank_rows())
    found = _found(db, "acme", again)
    assert list(found) == [again.fingerprint]
    _no_gx(monkeypatch)
    reused = validate_check(again, POLICY, found[again.fingerprint])
    assert reused.reused_from == "run-1"
    assert (reused.rows_evaluated, reused.rows_failed, reused.held) == (
        fresh.rows_evaluated, fresh.rows_failed, fresh.held
    )  # fmt: skip
    assert reused.expectations == fresh.expectations
    assert reused.batch.rejects == fresh.batch.rejects
    pd.testing.assert_frame_equal(reused.batch.rows, fresh.batch.rows)
    summary = reused.summary()
    assert summary.pop("reused_from") == "run-1"
    assert summary == fresh.summary()


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(lambda: _check(bank_rows(amount_minor=[1000] * 11 + [1001])), id="a-row"),
        pytest.param(
            lambda: _check(bank_rows(reference=[f"{n}" for n in range(12)])), id="a-reference"
        ),
        pytest.param(  # same text, other type: pandas hashes object values as text
            lambda: _check(bank_rows(booked_on=[str(dt.date(2026, 10, 1 + i)) for i in range(12)])),
            id="a-type",
        ),
        pytest.param(lambda: _check(bank_rows().drop(columns=["payout_id"])), id="a-column"),
        pytest.param(
            lambda: _check(bank_rows(), ValidationPolicy(1.0, max_abs_amount_minor=6_000)),
            id="a-parameter",
        ),
        pytest.param(
            lambda: _check(
                bank_rows(), ValidationPolicy(1.0, grace_days=4, max_abs_amount_minor=150_000)
            ),
            id="the-grace",
        ),
    ],
)
def test_a_changed_batch_or_parameter_is_validated_anew(db: Engine, changed: Any) -> None:
    _store(db, "acme", "run-1", _check(bank_rows()))
    other = changed()
    assert other.fingerprint and other.fingerprint != _check(bank_rows()).fingerprint
    assert _found(db, "acme", other) == {}


def test_a_changed_suite_or_gx_version_is_validated_anew(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(db, "acme", "run-1", _check(bank_rows()))
    assert _found(db, "acme", _check(bank_rows()))
    source = validate._suite_source("bank_transactions")
    monkeypatch.setattr(
        validate, "_suite_source", lambda suite: source.replace(b"Jane", b"Joe") + b" "
    )
    assert _found(db, "acme", _check(bank_rows())) == {}
    monkeypatch.undo()
    monkeypatch.setattr(validate, "_gx_version", lambda: "0.0.1")
    assert _found(db, "acme", _check(bank_rows())) == {}


def test_a_verdict_of_another_day_or_window_is_not_reused(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _store(db, "acme", "run-1", _check(bank_rows()))
    check = _check(bank_rows())
    assert check.fingerprint
    with tenant_session(db, "acme") as session:  # the same batch checked for another window
        wanted = [(str(check.suite), "transactions", check.fingerprint)]
        assert find_verdicts(session, (WINDOW[0], WINDOW[1] + dt.timedelta(days=1)), wanted) == {}
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)

    class Later(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Later:  # type: ignore[override]
            return cls.fromtimestamp(tomorrow.timestamp(), tz)

    monkeypatch.setattr(validate.dt, "datetime", Later)  # latest_day moves on
    assert _found(db, "acme", _check(bank_rows())) == {}


def test_another_tenants_identical_batch_is_not_reused(db: Engine) -> None:
    _store(db, "acme", "run-1", _check(bank_rows()))
    assert _found(db, "acme", _check(bank_rows()))
    assert _found(db, "beta", _check(bank_rows())) == {}


# --- end to end: extract_source against the GoCardless sandbox -----------------------------


def _ctx(db: Engine, server: RunningServer, sleep: RecordingSleep, tenant: str) -> SourceContext:
    settings = TenantSettings(
        gocardless=GoCardlessSettings(enabled=True, base_url=server.url, account_ids=[ACCOUNT])
    )
    return SourceContext(
        db, tenant, settings, Runtime().secrets, policy=fast_policy(sleep), validation=POLICY
    )


@pytest.fixture
def contexts(
    db: Engine, gc_server: RunningServer, sleep: RecordingSleep, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, SourceContext]]:
    for tenant in TENANTS:
        monkeypatch.setenv(f"RECON_SECRET_{tenant.upper()}__GOCARDLESS_SECRET_ID", SECRET_ID)
        monkeypatch.setenv(f"RECON_SECRET_{tenant.upper()}__GOCARDLESS_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY", secrets.token_hex(32))
    get_settings.cache_clear()
    yield {tenant: _ctx(db, gc_server, sleep, tenant) for tenant in TENANTS}
    get_settings.cache_clear()


def _run(ctx: SourceContext) -> str:
    source = Source("bank", "gocardless", ACCOUNT, "transactions")
    run_id = start_run(ctx.engine, ctx.tenant_id, WINDOW, ["bank"])
    extract_source(ctx, source, WINDOW, run_id=run_id)
    finish_run(ctx.engine, ctx.tenant_id, run_id, status="completed")
    return run_id


def _without(value: Any, dropped: set[str]) -> Any:
    return (
        {k: v for k, v in value.items() if k not in dropped} if isinstance(value, dict) else value
    )


def _tables(engine: Engine, tenant: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every tenant table's rows, without what differs by nature between two tenants' runs
    (surrogate and foreign keys, run ids, timestamps, the audit chain naming the tenant, the
    sandbox's quota shared by both, the stored page ids a frame carries and so its fingerprint)
    and without the reuse marker."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    dropped = {"reused_from", "fingerprint", "raw_payload_id"}
    with tenant_session(engine, tenant) as session:
        for table in Base.metadata.sorted_tables:
            if "tenant_id" not in table.c or table.name in {"audit_log", "provider_quotas"}:
                continue
            kept = [
                c for c in table.c
                if not (c.primary_key and c.name == "id") and not c.foreign_keys
                and c.name not in {"tenant_id", "run_id"} and not isinstance(c.type, DateTime)
            ]  # fmt: skip
            rows = []
            for row in session.execute(select(*kept).where(table.c.tenant_id == tenant)):
                rows.append(tuple(repr(_without(value, dropped)) for value in row))
            tables[table.name] = sorted(rows)
    return tables


def test_a_replay_reuses_every_verdict_and_leaves_the_tables_as_a_fresh_validation(
    contexts: dict[str, SourceContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    acme, beta = contexts["acme"], contexts["beta"]
    first = _run(acme)
    runs = []
    gx_calls: list[str] = []
    real = validate.run_suite

    def counted(suite: str, *args: Any, **kwargs: Any) -> list[ExpectationOutcome]:
        gx_calls.append(suite)
        return real(suite, *args, **kwargs)

    monkeypatch.setattr(validate, "run_suite", counted)
    runs.append(_run(beta))  # the same batch of another tenant: validated with GX
    assert gx_calls == ["bank_transactions"]
    with monkeypatch.context() as inner:  # beta's replay without reuse
        inner.setattr(extract, "find_verdicts", lambda *args, **kwargs: {})
        runs.append(_run(beta))
    assert gx_calls == ["bank_transactions"] * 2
    with monkeypatch.context() as inner:
        _no_gx(inner)
        replay = _run(acme)
    with tenant_session(acme.engine, "acme") as session:
        verdicts = session.scalars(
            select(ValidationResult).where(ValidationResult.run_id == replay)
        ).all()
    assert [v.result.get("reused_from") for v in verdicts] == [first]
    assert verdicts[0].rows_failed > 0  # the reused verdict quarantines rows
    with tenant_session(beta.engine, "beta") as session:
        marked = session.scalars(select(ValidationResult.result)).all()
    assert not any("reused_from" in r for r in marked)
    assert _tables(acme.engine, "acme") == _tables(beta.engine, "beta")
