"""Bank connections against the GoCardless sandbox over real HTTP, on SQLite and PostgreSQL:
the wizard through the service and through `recon bank`, idempotent linking, who may do it,
consent expiry warnings, last sync, quota left today, and connectivity checks."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import Engine, select

from apps.cli.main import main
from connectors.gocardless import GoCardlessClient
from connectors.quota import QuotaGuard
from connectors.sandbox.serve import RunningServer
from recon.db.models import AuditEntry, ProviderQuota, RawFetch, SourceAccount
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import PermissionDeniedError, ReconError, RuleViolationError
from recon.redaction import register_secret
from recon.review import connections as service
from recon.review.access import Role
from recon.review.connection_views import ConsentState
from recon.tenants import add_tenant, parse_settings
from tests.integration.gocardless_fixtures import (
    SECRET_ID,
    SECRET_KEY,
    TENANT,
    FakeClock,
    bad_state,
    bank_seed,
    clock,
    gc_server,
    payments_state,
)
from tests.integration.whmcs_fixtures import API_SECRET, IDENTIFIER
from tests.people import make_user

__all__ = ["bad_state", "bank_seed", "clock", "gc_server", "payments_state"]

ADMIN = "adm@acme.test"
FIN = "fin@acme.test"
AUD = "aud@acme.test"
ING = "ING_INGBNL2A"
REDIRECT = "https://recon.example/bank/done"


@dataclass(frozen=True)
class Bank:
    """The application engine of a database whose tenant reads the sandbox, and the sandbox."""

    app: Engine
    server: RunningServer
    clock: FakeClock


@pytest.fixture(params=["sqlite", "postgresql"])
def bank(
    request: pytest.FixtureRequest,
    gc_server: RunningServer,
    whmcs_server: RunningServer,
    clock: FakeClock,
) -> Iterator[Bank]:
    """Tenant acme with GoCardless and WHMCS at the sandboxes and Stripe enabled (its key is
    never set), an admin, a finance user and an auditor."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    settings = parse_settings(
        {
            "gocardless": {"enabled": True, "base_url": gc_server.url},
            "whmcs": {"base_url": whmcs_server.url},
            "stripe": {"enabled": True, "api_base": "http://127.0.0.1:9"},
        },
        production=False,
    )
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", settings, actor="test")
    make_user(app, ADMIN, Role.ADMIN, (TENANT,))
    make_user(app, FIN, Role.FINANCE, (TENANT,))
    make_user(app, AUD, Role.AUDITOR, (TENANT,))
    yield Bank(app, gc_server, clock)


@pytest.fixture
def client(bank: Bank) -> Iterator[GoCardlessClient]:
    """A client as the entry points build it: quota counted in the tenant's database."""
    quota = QuotaGuard(bank.app, TENANT, clock=bank.clock)
    with GoCardlessClient(
        bank.server.url, SECRET_ID, SECRET_KEY, quota=quota, clock=bank.clock
    ) as made:
        yield made


def _consent(link: str, *, allow: bool = True) -> None:
    with httpx.Client() as browser:
        assert browser.get(link).status_code == 200
        answer = browser.get(f"{link}/{'allow' if allow else 'deny'}")
    assert answer.status_code == 302


def _ing_accounts(bank_seed: tuple[list[object], object]) -> list[str]:
    return [a.account_id for a in bank_seed[0] if a.institution_id == ING]  # type: ignore[attr-defined]


def _audit(engine: Engine) -> list[tuple[str, str, str]]:
    with tenant_session(engine, TENANT) as session:
        return [
            (e.actor, e.action, e.entity_id)
            for e in session.scalars(
                select(AuditEntry).where(AuditEntry.action.like("bank.%")).order_by(AuditEntry.seq)
            )
        ]


# -- the service -----------------------------------------------------------------------------------


def test_the_wizard_links_the_accounts_once_through_the_service(
    bank: Bank, client: GoCardlessClient, bank_seed: tuple[list[object], object]
) -> None:
    banks = service.list_institutions(bank.app, ADMIN, TENANT, client, "nl")
    assert {b.id for b in banks} == {ING, "ABNAMRO_ABNANL2A"}
    started = service.start_connection(
        bank.app, ADMIN, TENANT, client, country="NL", institution_id=ING,
        redirect=REDIRECT, access_valid_for_days=180,
    )  # fmt: skip
    assert started.access_valid_for_days == 180 and started.link.startswith(bank.server.url)
    waiting = service.requisition_state(bank.app, ADMIN, TENANT, client, started.requisition_id)
    assert (waiting.status, waiting.linked) == ("CR", False)
    with pytest.raises(RuleViolationError, match="is not linked yet"):
        service.link_accounts(bank.app, ADMIN, TENANT, client, started.requisition_id)
    _consent(started.link)
    linked = service.link_accounts(bank.app, ADMIN, TENANT, client, started.requisition_id)
    ing = _ing_accounts(bank_seed)
    assert [(a.external_id, a.currency, a.change) for a in linked.accounts] == [
        (i, "EUR", "added") for i in ing
    ]
    again = service.link_accounts(bank.app, ADMIN, TENANT, client, started.requisition_id)
    assert [a.change for a in again.accounts] == ["unchanged"] * len(ing)
    with tenant_session(bank.app, TENANT) as session:
        rows = session.scalars(select(SourceAccount)).all()
        assert sorted(r.external_id for r in rows) == sorted(ing)
        assert {(r.provider, r.institution_id, r.requisition_id, r.status) for r in rows} == {
            ("gocardless", ING, started.requisition_id, "active")
        }
    # GoCardless's date: 180 days from the agreement's acceptance (the sandbox's clock at consent)
    expected_end = bank.clock.now + dt.timedelta(days=180)
    assert {a.consent_expires_at for a in linked.accounts} == {expected_end}
    assert _audit(bank.app) == [
        (ADMIN, service.STARTED, started.requisition_id),
        (ADMIN, service.LINKED, started.requisition_id),  # once: the second link changed nothing
    ]
    status = service.connection_status(bank.app, FIN, TENANT, now=bank.clock.now)
    first = status.accounts[0]
    assert first.consent is ConsentState.OK and first.warning is None
    quota = {q.scope: (q.used, q.left) for q in first.quota}
    assert quota == {"details": (1, 3), "balances": (0, 4), "transactions": (0, 4)}


def test_a_bank_of_another_country_and_too_long_a_consent_are_refused(
    bank: Bank, client: GoCardlessClient
) -> None:
    with pytest.raises(ReconError, match="there is no bank 'ING_INGBNL2A' in GB"):
        service.start_connection(bank.app, ADMIN, TENANT, client, country="gb", institution_id=ING)
    with pytest.raises(RuleViolationError, match="allows 1 to 180 days of access, not 365"):
        service.start_connection(
            bank.app, ADMIN, TENANT, client, country="NL", institution_id=ING,
            access_valid_for_days=365,
        )  # fmt: skip
    with pytest.raises(RuleViolationError, match="not a two-letter ISO code"):
        service.list_institutions(bank.app, ADMIN, TENANT, client, "NLD")
    assert _audit(bank.app) == []


def test_finance_and_auditors_may_read_the_status_but_not_connect(
    bank: Bank, client: GoCardlessClient
) -> None:
    calls: list[Callable[[str], object]] = [
        lambda who: service.list_institutions(bank.app, who, TENANT, client, "NL"),
        lambda who: service.start_connection(
            bank.app, who, TENANT, client, country="NL", institution_id=ING
        ),
        lambda who: service.link_accounts(bank.app, who, TENANT, client, "any"),
        lambda who: service.check_connectivity(bank.app, who, TENANT, {"x": lambda: "up"}),
    ]
    for who in (FIN, AUD):
        for call in calls:
            with pytest.raises(PermissionDeniedError, match="admins only"):
                call(who)
        assert service.connection_status(bank.app, who, TENANT).accounts == ()
    assert _audit(bank.app) == []


def test_consent_warns_from_14_days_before_it_ends(bank: Bank) -> None:
    now = dt.datetime(2026, 11, 5, 12, 0, tzinfo=dt.UTC)
    ends = {
        "far": now + dt.timedelta(days=14, seconds=1),
        "near": now + dt.timedelta(days=14),
        "gone": now - dt.timedelta(seconds=1),
        "never": None,
    }
    with tenant_session(bank.app, TENANT) as session:
        for name, end in ends.items():
            session.add(SourceAccount(tenant_id=TENANT, provider="gocardless", external_id=name,
                                      name=name, currency="EUR", consent_expires_at=end))  # fmt: skip
        session.add(ProviderQuota(tenant_id=TENANT, provider="gocardless", account_ref="near",
                                  endpoint="transactions", day=now.date(), calls=3, limit=4))  # fmt: skip
        for done in (now - dt.timedelta(days=2), now - dt.timedelta(hours=3)):
            session.add(RawFetch(tenant_id=TENANT, provider="gocardless", account_ref="near",
                                 dataset="transactions", window_from=now.date(),
                                 window_to=now.date(), run_id="r-1", completed_at=done))  # fmt: skip
        session.add(RawFetch(tenant_id=TENANT, provider="gocardless", account_ref="near",
                             dataset="transactions", window_from=now.date(),
                             window_to=now.date(), run_id="r-2", completed_at=None))  # fmt: skip
    status = service.connection_status(bank.app, AUD, TENANT, now=now)
    by_name = {a.external_id: a for a in status.accounts}
    assert {n: a.consent for n, a in by_name.items()} == {
        "far": ConsentState.OK,
        "near": ConsentState.EXPIRING,
        "gone": ConsentState.EXPIRED,
        "never": ConsentState.UNKNOWN,
    }
    assert status.warnings == (
        "the bank consent of gone expired on 2026-11-05; connect it again",
        "the bank consent of near ends on 2026-11-19 (14 days left); connect it again before then",
    )
    near = by_name["near"]
    assert (near.last_sync_at, near.last_sync_run) == (now - dt.timedelta(hours=3), "r-1")
    assert [(q.scope, q.left) for q in near.quota] == [
        ("details", 4), ("balances", 4), ("transactions", 1),
    ]  # fmt: skip
    assert by_name["far"].last_sync_at is None


def test_connectivity_failures_are_sentences_without_secrets(bank: Bank) -> None:
    canary = "sk_test_CANARY_connectivity_0123456789"
    register_secret(canary)

    def leaky() -> str:
        raise ReconError(f"Stripe refused key {canary}")

    def broken() -> str:
        raise RuntimeError("socket exploded")

    results = service.check_connectivity(
        bank.app,
        ADMIN,
        TENANT,
        {"WHMCS": lambda: "answered", "Stripe": leaky, "GoCardless": broken},
    )
    assert [(r.name, r.ok) for r in results] == [
        ("WHMCS", True), ("Stripe", False), ("GoCardless", False),
    ]  # fmt: skip
    assert canary not in results[1].detail and "Stripe refused key" in results[1].detail
    assert results[2].detail == "GoCardless failed (RuntimeError)"


# -- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def cli(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> Bank:
    """Point `recon` at the bank's database and give the tenant its GoCardless secrets."""
    monkeypatch.setenv("RECON_DATABASE_URL", bank.app.url.render_as_string(hide_password=False))
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_ID", SECRET_ID)
    monkeypatch.setenv("RECON_SECRET_ACME__GOCARDLESS_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("RECON_SECRET_ACME__WHMCS_API_IDENTIFIER", IDENTIFIER)
    monkeypatch.setenv("RECON_SECRET_ACME__WHMCS_API_SECRET", API_SECRET)
    return bank


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["bank", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_connects_links_and_reports_the_status(
    cli: Bank, capsys: pytest.CaptureFixture[str], bank_seed: tuple[list[object], object]
) -> None:
    tenant = ("--tenant", TENANT)
    code, out, err = _run(capsys, "connect", *tenant, "--country", "NL", "--institution", ING,
                          "--as", FIN)  # fmt: skip
    assert code == 13 and "admins only" in err and "Traceback" not in err and out == ""
    code, out, err = _run(capsys, "institutions", *tenant, "--country", "NL", "--as", ADMIN,
                          "--json")  # fmt: skip
    assert code == 0, err
    assert {i["id"] for i in json.loads(out)} == {ING, "ABNAMRO_ABNANL2A"}
    code, out, err = _run(capsys, "connect", *tenant, "--country", "NL", "--institution", ING,
                          "--as", ADMIN, "--redirect", REDIRECT)  # fmt: skip
    assert code == 0, err
    link = next(line for line in out.splitlines() if line.startswith(cli.server.url))
    requisition = link.rstrip("/").split("/")[-2]
    assert f"--requisition {requisition}" in out
    code, _, err = _run(capsys, "link", *tenant, "--requisition", requisition, "--as", ADMIN)
    assert code == 15 and "is not linked yet" in err
    _consent(link)
    code, out, err = _run(capsys, "connect", *tenant, "--requisition", requisition,
                          "--as", ADMIN, "--json")  # fmt: skip
    assert code == 0, err
    ing = _ing_accounts(bank_seed)
    assert [(a["external_id"], a["change"]) for a in json.loads(out)["accounts"]] == [
        (i, "added") for i in ing
    ]
    code, out, _ = _run(capsys, "link", *tenant, "--requisition", requisition, "--as", ADMIN)
    assert code == 0 and out.count("unchanged:") == len(ing)
    code, out, err = _run(capsys, "status", *tenant, "--as", FIN, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert sorted(a["external_id"] for a in shown["accounts"]) == sorted(ing)
    assert {a["consent"] for a in shown["accounts"]} == {"ok"}
    code, out, _ = _run(capsys, "status", *tenant, "--as", FIN)
    assert code == 0 and "EUR" in out
    bases = {a["consent_basis"] for a in shown["accounts"]}
    assert len(bases) == 1 and None not in bases
    assert f"consent dates: {bases.pop()}" in " ".join(out.split())
    code, out, err = _run(capsys, "check", *tenant, "--as", ADMIN)
    shown = " ".join(out.split())  # rich wraps long lines
    assert code == 9 and err.strip().endswith("1 of 3 connectivity checks failed: Stripe")
    assert re.match(r"ok WHMCS: WHMCS answered with \d+ currencies FAIL Stripe: .*"
                    r"stripe_secret_key.* ok GoCardless: GoCardless issued an access token$",
                    shown), shown  # fmt: skip
    for secret in (SECRET_KEY, SECRET_ID, API_SECRET, IDENTIFIER):
        assert secret not in out + err
    code, _, err = _run(capsys, "check", *tenant, "--as", FIN)
    assert code == 13 and "admins only" in err


def test_an_account_linked_without_its_details_gets_them_on_a_later_link(
    bank: Bank, client: GoCardlessClient, bank_seed: tuple[list[object], object]
) -> None:
    ing = _ing_accounts(bank_seed)
    with tenant_session(bank.app, TENANT) as session:  # today's details calls are used up
        for account in ing:
            session.add(ProviderQuota(tenant_id=TENANT, provider="gocardless", account_ref=account,
                                      endpoint="details", day=bank.clock.now.date(), calls=4,
                                      limit=4))  # fmt: skip
    started = service.start_connection(
        bank.app, ADMIN, TENANT, client, country="NL", institution_id=ING
    )
    _consent(started.link)
    first = service.link_accounts(bank.app, ADMIN, TENANT, client, started.requisition_id)
    assert [(a.change, a.currency) for a in first.accounts] == [("added", None)] * len(ing)
    bank.clock.advance(days=1)
    later = service.link_accounts(bank.app, ADMIN, TENANT, client, started.requisition_id)
    assert [(a.change, a.currency) for a in later.accounts] == [("updated", "EUR")] * len(ing)
    assert [a for _, a, _ in _audit(bank.app)] == [service.STARTED, service.LINKED, service.LINKED]
