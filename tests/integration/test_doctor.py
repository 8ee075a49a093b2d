"""`recon doctor` says ok only when tomorrow's scheduled run can resolve every secret it needs.

Provider secrets are resolved lazily by a run (a replay needs none), so doctor is the one place
that checks them up front: for each tenant, every secret its enabled sources need. The audit chain
key is needed by every audit write, in every environment, so a missing one fails doctor even in
development.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.cli.main import main
from connectors.sandbox.serve import RunningServer
from connectors.sandbox.vault import VaultState

GLOBAL = {
    "ui_cookie_secret": "c" * 32,
    "ui_oidc_client_secret": "o" * 32,
    "audit_export_signing_key": "k" * 32,
}
CHAIN = {"audit_chain_key": "a" * 32}
WHMCS_API = {"whmcs_api_identifier": "ident-1", "whmcs_api_secret": "s" * 20}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def line_of(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if name in line)


@pytest.fixture
def db_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'doctor.db'}"
    monkeypatch.setenv("RECON_DATABASE_URL", url)
    monkeypatch.setenv("RECON_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    return url


# (settings of the tenant, the secrets its enabled sources add to the WHMCS API pair)
SOURCES = [
    pytest.param(["stripe.enabled=true"], {"stripe_secret_key": "x" * 24}, id="stripe"),
    pytest.param(
        ["stripe.enabled=true", "webhooks_enabled=true"],
        {"stripe_secret_key": "x" * 24, "stripe_webhook_secret": "whsec_" + "w" * 20},
        id="stripe-webhooks",
    ),
    pytest.param(
        ["gocardless.enabled=true", 'gocardless.account_ids=["acc-1"]'],
        {"gocardless_secret_id": "g" * 20, "gocardless_secret_key": "h" * 40},
        id="bank",
    ),
    pytest.param(
        ["gocardless_payments.enabled=true", "webhooks_enabled=true"],
        {"gocardless_payments_access_token": "t" * 30, "gocardless_webhook_secret": "v" * 30},
        id="gocardless-payments-webhooks",
    ),
]


@pytest.mark.parametrize(("sets", "source_secrets"), SOURCES)
def test_production_doctor_fails_until_every_secret_of_every_enabled_source_is_in_vault(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    production_vault: RunningServer,
    sandbox_vault: VaultState,
    sets: list[str],
    source_secrets: dict[str, str],
) -> None:
    credentials = sandbox_vault.add_approle()
    assert run(capsys, "db", "upgrade")[0] == 0
    options = [arg for value in sets for arg in ("--set", value)]
    code, _, err = run(capsys, "tenant", "add", "acme", "--name", "Acme", *options)
    assert code == 0, err
    monkeypatch.setenv("RECON_ENV", "production")
    monkeypatch.setenv("RECON_VAULT_ADDR", production_vault.url)
    monkeypatch.setenv("RECON_VAULT_ROLE_ID", credentials.role_id)
    monkeypatch.setenv("RECON_VAULT_SECRET_ID", credentials.secret_id)
    sandbox_vault.put_secret("recon/global", {**GLOBAL, **CHAIN})
    sandbox_vault.put_secret("recon/tenants/acme", WHMCS_API)
    code, out, err = run(capsys, "doctor")
    assert code != 0
    for name in source_secrets:  # each one a scheduled run would need is named
        assert f"{name} of tenant 'acme'" in out + err, name
    assert "all checks passed" not in out
    for missing in source_secrets:  # and each one alone still fails
        partial = {k: v for k, v in source_secrets.items() if k != missing}
        sandbox_vault.put_secret("recon/tenants/acme", {**WHMCS_API, **partial})
        code, out, err = run(capsys, "doctor")
        assert code != 0 and f"{missing} of tenant 'acme'" in out + err, missing
    sandbox_vault.put_secret("recon/tenants/acme", {**WHMCS_API, **source_secrets})
    code, out, err = run(capsys, "doctor")
    assert code == 0, err
    assert "all checks passed" in out
    assert " ok " in line_of(out, "tenant acme")
    for value in source_secrets.values():
        assert value not in out + err


def test_development_doctor_fails_without_the_audit_chain_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    monkeypatch.delenv("RECON_SECRET_AUDIT_CHAIN_KEY", raising=False)
    monkeypatch.delenv("RECON_ENV", raising=False)
    assert run(capsys, "db", "upgrade")[0] == 0
    code, out, err = run(capsys, "doctor")
    assert code != 0
    chain = line_of(out, "audit_chain_key")
    assert "FAIL" in chain and "required in production" not in chain
    assert "RECON_SECRET_AUDIT_CHAIN_KEY" in err and len(err.strip().splitlines()) == 1
    # the secrets only production needs stay warnings in development
    assert "warn" in line_of(out, "ui_cookie_secret")
    assert "required in production" in line_of(out, "ui_cookie_secret")
    monkeypatch.setenv("RECON_SECRET_AUDIT_CHAIN_KEY", "a" * 64)
    code, out, err = run(capsys, "doctor")
    assert code == 0, err
    assert " ok " in line_of(out, "audit_chain_key")
