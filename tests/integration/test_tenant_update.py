"""`recon tenant update|disable|enable` through the real CLI, on SQLite and PostgreSQL: changes
are audited with the before and after of each changed key, secrets are refused as settings
without being echoed, and a disabled tenant's runs and applies stop with one sentence (exit 12)."""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from apps.cli.main import main
from apps.webhooks.app import ReceiverConfig, build_receiver
from apps.webhooks.signatures import stripe_signature_header
from connectors.sandbox.serve import run_in_thread
from flows.reconcile import reconcile
from recon.db.models import AuditEntry, Tenant, WebhookEvent
from recon.db.tenancy import admin_session, tenant_session
from recon.secrets import STRIPE_WEBHOOK_SECRET, SecretResolver, env_var_name
from recon.settings import Settings
from recon.tenant_admin import TenantDisabledError
from recon.tenants import GoCardlessSettings, TenantSettings, add_tenant


@dataclass(frozen=True)
class Backend:
    owner: Engine
    app: Engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "sqlite":
        engine: Engine = request.getfixturevalue("sqlite_engine")
        url = request.getfixturevalue("sqlite_url")
        found, owner_url = Backend(engine, engine), url
    else:
        found = Backend(
            request.getfixturevalue("pg_owner_engine"), request.getfixturevalue("pg_app_engine")
        )
        url, owner_url = (
            request.getfixturevalue("pg_app_url"),
            request.getfixturevalue("pg_owner_url"),
        )
    monkeypatch.setenv("RECON_DATABASE_URL", url)
    monkeypatch.setenv("RECON_MIGRATION_DATABASE_URL", owner_url)
    settings = TenantSettings(
        gocardless=GoCardlessSettings(account_ids=["acc-1"]), webhooks_enabled=True
    )
    with admin_session(found.owner) as session:
        add_tenant(session, "acme", "Acme", settings, actor="test")
    return found


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def entries(engine: Engine, action: str) -> list[dict[str, Any]]:
    with tenant_session(engine, "acme") as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        ).all()
        return [dict(row.details, actor=row.actor) for row in rows]


def stored(engine: Engine) -> Tenant:
    with admin_session(engine) as session:
        tenant = session.get(Tenant, "acme")
        assert tenant is not None
        return tenant


def test_update_stores_the_change_and_audits_only_the_changed_keys(
    backend: Backend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_ACTOR", "ops:alice")
    code, out, err = cli(
        capsys,
        "tenant", "update", "acme",
        "--set", "auto_threshold=95",
        "--set", "stripe.enabled=true",
        "--set", "gocardless.account_ids=[\"acc-1\", \"acc-2\"]",
        "--name", "Acme Hosting",
    )  # fmt: skip
    assert code == 0, err
    assert "auto_threshold" in out and "95" in out
    tenant = stored(backend.owner)
    assert tenant.name == "Acme Hosting"
    assert tenant.settings["auto_threshold"] == 95 and tenant.settings["stripe"]["enabled"] is True
    assert tenant.settings["gocardless"]["account_ids"] == ["acc-1", "acc-2"]
    (entry,) = entries(backend.owner, "tenant.updated")
    assert entry["actor"] == "ops:alice"
    assert entry["settings"] == {
        "auto_threshold": {"before": 90, "after": 95},
        "stripe.enabled": {"before": False, "after": True},
        "gocardless.account_ids": {"before": ["acc-1"], "after": ["acc-1", "acc-2"]},
    }
    assert entry["name"] == {"before": "Acme", "after": "Acme Hosting"}
    assert cli(capsys, "audit", "verify", "--tenant", "acme")[0] == 0


def test_a_settings_file_is_merged_and_a_no_op_writes_nothing(
    backend: Backend, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    partial = tmp_path / "change.toml"
    partial.write_text('timezone = "Europe/Berlin"\n[whmcs]\ngateway = "sepa"\n')
    code, _, err = cli(capsys, "tenant", "update", "acme", "--settings-file", str(partial))
    assert code == 0, err
    settings = stored(backend.owner).settings
    assert settings["timezone"] == "Europe/Berlin" and settings["whmcs"]["gateway"] == "sepa"
    assert settings["gocardless"]["account_ids"] == ["acc-1"]  # untouched keys stay
    code, out, _ = cli(capsys, "tenant", "update", "acme", "--settings-file", str(partial))
    assert code == 0 and "unchanged" in out
    assert len(entries(backend.owner, "tenant.updated")) == 1


@pytest.mark.parametrize(
    "assignment",
    [
        "whmcs.api_secret=hunter2-very-secret",
        "stripe_secret_key=hunter2-very-secret",
        "whmcs.mysql_password=hunter2-very-secret",
        "stripe.account_id=sk_live_hunter2verysecret",
    ],
)
def test_secrets_are_refused_as_settings_and_never_echoed(
    backend: Backend, capsys: pytest.CaptureFixture[str], assignment: str
) -> None:
    before = stored(backend.owner).settings
    code, out, err = cli(capsys, "tenant", "update", "acme", "--set", assignment)
    assert code == 2 and "Vault" in err and "Traceback" not in err
    assert "hunter2" not in err + out
    assert stored(backend.owner).settings == before
    assert entries(backend.owner, "tenant.updated") == []


def test_a_secret_in_a_settings_file_is_refused(
    backend: Backend, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    document = tmp_path / "s.json"
    document.write_text(json.dumps({"gocardless": {"secret_key": "hunter2-very-secret"}}))
    code, _, err = cli(capsys, "tenant", "update", "acme", "--settings-file", str(document))
    assert code == 2 and "gocardless.secret_key" in err and "hunter2" not in err


def test_invalid_values_unknown_tenant_and_empty_update_are_one_sentence(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "tenant", "update", "acme", "--set", "auto_threshold=200")
    assert code == 2 and "auto_threshold" in err
    assert stored(backend.owner).settings["auto_threshold"] == 90
    code, _, err = cli(capsys, "tenant", "update", "nobody", "--set", "auto_threshold=95")
    assert code == 5 and "recon tenant list" in err
    code, _, err = cli(capsys, "tenant", "update", "acme")
    assert code == 2 and "--set" in err


def test_a_disabled_tenant_refuses_runs_and_applies_until_enabled(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "tenant", "disable", "acme")
    assert code == 0 and "disabled" in out, err
    assert stored(backend.owner).active is False
    (entry,) = entries(backend.owner, "tenant.disabled")
    assert entry["active"] == {"before": True, "after": False}
    code, out, _ = cli(capsys, "tenant", "disable", "acme")
    assert code == 0 and "already" in out and len(entries(backend.owner, "tenant.disabled")) == 1

    run = ("run", "--tenant", "acme", "--from", "2026-03-01", "--to", "2026-03-02")
    for args in (run, ("apply", "--tenant", "acme"), ("backfill", *run[1:])):
        code, _, err = cli(capsys, *args)
        assert code == 12, (args, err)
        assert "disabled" in err and "recon tenant enable acme" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    with pytest.raises(TenantDisabledError):  # a deployment's flow run refuses too
        reconcile.fn(tenant="acme", date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 2))
    code, out, _ = cli(capsys, "tenant", "list")
    assert code == 0 and "no" in out

    code, out, _ = cli(capsys, "tenant", "enable", "acme")
    assert code == 0 and "enabled" in out and stored(backend.owner).active is True
    assert len(entries(backend.owner, "tenant.enabled")) == 1
    assert cli(capsys, "audit", "verify", "--tenant", "acme")[0] == 0


def test_a_disabled_tenants_webhooks_are_refused(
    backend: Backend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "whsec_tenant_update_test_1"
    monkeypatch.setenv(env_var_name(STRIPE_WEBHOOK_SECRET, "acme"), secret)
    requests: list[object] = []
    config = ReceiverConfig(
        backend.app, SecretResolver(Settings()), requests.append, run_emitter=False
    )

    def post(server_url: str, event_id: str) -> int:
        body = json.dumps(
            {
                "id": event_id,
                "type": "payout.paid",
                "created": 1_798_761_600,
                "data": {
                    "object": {"id": "po_1", "object": "payout", "arrival_date": 1_798_761_600}
                },
            }
        ).encode()
        header = stripe_signature_header(body, secret, int(time.time()))
        response = httpx.post(
            f"{server_url}/webhooks/stripe/acme", content=body, headers={"Stripe-Signature": header}
        )
        return response.status_code

    def stored() -> int:
        with tenant_session(backend.app, "acme") as session:
            return int(session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)

    with run_in_thread(build_receiver(config)) as server:
        assert post(server.url, "evt_before") == 200 and stored() == 1
        assert cli(capsys, "tenant", "disable", "acme")[0] == 0
        assert post(server.url, "evt_after") == 400
        assert stored() == 1
