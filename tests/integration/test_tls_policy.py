"""TLS in production, user info nowhere: Vault's address and every provider base URL.

In production every URL must be https; plain http is allowed only for a loopback sandbox
(127.0.0.0/8, localhost, ::1) in development. A URL carrying a user name or password is refused
everywhere, because `tenant show` prints the settings and the audit log keeps them forever.
Tenant URLs are checked when a tenant is added and again when a run starts (RECON_ENV may have
changed in between).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from apps.cli.main import main
from connectors.sandbox.app import build_app
from connectors.sandbox.serve import run_in_thread
from connectors.sandbox.vault import VaultState
from recon.db.engine import make_engine
from recon.db.models import AuditEntry, Run, Tenant
from recon.errors import ConfigError
from recon.settings import get_settings, load_settings
from recon.tenants import parse_settings
from tests.tls import write_self_signed_cert

pytestmark = pytest.mark.timeout(60)

PASSWORD = "s3cret-Pw-9"
URL_SETTINGS = (
    "whmcs.base_url",
    "stripe.api_base",
    "gocardless.base_url",
    "gocardless_payments.base_url",
)
LOOPBACK_HTTP = (
    "http://127.0.0.1:8200",
    "http://127.8.9.10:8200",
    "http://localhost:8200",
    "http://[::1]:8200",
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_ENV", "production")
    get_settings.cache_clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """A migrated database (SQLite or PostgreSQL) that the CLI uses; yields the owner's URL.

    On PostgreSQL the application connects as a non-owner role, as production requires.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tls.db'}"
        monkeypatch.setenv("RECON_DATABASE_URL", url)
    else:
        url = request.getfixturevalue("pg_owner_url")
        monkeypatch.setenv("RECON_DATABASE_URL", request.getfixturevalue("pg_app_url"))
        monkeypatch.setenv("RECON_MIGRATION_DATABASE_URL", url)
    assert main(["db", "upgrade"]) == 0
    yield url


def stored(url: str) -> tuple[int, int]:
    """(tenants, audit entries) in the database."""
    engine: Engine = make_engine(url)
    try:
        with engine.connect() as connection:
            tenants = connection.scalar(select(func.count()).select_from(Tenant))
            entries = connection.scalar(select(func.count()).select_from(AuditEntry))
    finally:
        engine.dispose()
    return int(tenants or 0), int(entries or 0)


# -- Vault ---------------------------------------------------------------------------------------


def test_production_refuses_an_http_vault_address(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", f"sqlite:///{tmp_path / 'v.db'}")
    monkeypatch.setenv("RECON_VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("RECON_VAULT_TOKEN", "hvs.not-used")
    production(monkeypatch)

    for args in (["doctor"], ["tenant", "list"], ["db", "status"]):
        code, _, err = run(capsys, *args)
        sentence = one_sentence(err)
        assert code == 2, (args, err)
        assert "RECON_VAULT_ADDR" in sentence and "https" in sentence


@pytest.mark.parametrize("addr", LOOPBACK_HTTP)
def test_development_allows_http_only_to_a_loopback_vault(
    monkeypatch: pytest.MonkeyPatch, addr: str
) -> None:
    monkeypatch.setenv("RECON_VAULT_ADDR", addr)
    assert load_settings().vault_addr == addr
    production(monkeypatch)
    with pytest.raises(ConfigError, match="https") as refused:
        load_settings()
    assert refused.value.exit_code == 2


@pytest.mark.parametrize("addr", ["http://vault.internal:8200", "http://10.0.0.5:8200"])
def test_development_refuses_http_to_a_vault_elsewhere(
    monkeypatch: pytest.MonkeyPatch, addr: str
) -> None:
    monkeypatch.setenv("RECON_VAULT_ADDR", addr)
    with pytest.raises(ConfigError, match=r"RECON_VAULT_ADDR.*https"):
        load_settings()


@pytest.mark.parametrize("env", ["development", "production"])
def test_a_vault_address_with_user_info_is_refused(
    monkeypatch: pytest.MonkeyPatch, env: str
) -> None:
    monkeypatch.setenv("RECON_ENV", env)
    monkeypatch.setenv("RECON_VAULT_ADDR", f"https://admin:{PASSWORD}@vault.example:8200")
    with pytest.raises(ConfigError, match="user name or password") as refused:
        load_settings()
    assert PASSWORD not in str(refused.value)


def test_production_accepts_an_https_vault_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_VAULT_ADDR", "https://vault.example:8200")
    production(monkeypatch)
    settings = load_settings()
    assert settings.is_production and settings.vault_addr == "https://vault.example:8200"


# -- provider base URLs at `tenant add` ----------------------------------------------------------


@pytest.mark.parametrize("setting", URL_SETTINGS)
def test_production_refuses_an_http_provider_url_at_tenant_add(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    setting: str,
) -> None:
    production(monkeypatch)
    code, _, err = run(
        capsys, "tenant", "add", "acme", "--name", "Acme", "--set", f"{setting}=http://127.0.0.1:9/"
    )
    sentence = one_sentence(err)
    assert code == 2
    assert setting in sentence and "https" in sentence and "production" in sentence
    assert stored(db_url) == (0, 0)


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("setting", URL_SETTINGS)
def test_a_provider_url_with_user_info_is_refused(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    env: str,
    setting: str,
) -> None:
    monkeypatch.setenv("RECON_ENV", env)
    get_settings.cache_clear()
    url = f"https://admin:{PASSWORD}@api.provider.example/v1"
    code, out, err = run(
        capsys, "tenant", "add", "acme", "--name", "A", "--set", f"{setting}={url}"
    )
    sentence = one_sentence(err)
    assert code == 2
    assert setting in sentence and "user name or password" in sentence
    assert PASSWORD not in out + err
    assert stored(db_url) == (0, 0)  # nothing to print with `tenant show`, nothing in the audit log


def test_development_refuses_http_to_a_provider_elsewhere(
    capsys: pytest.CaptureFixture[str], db_url: str
) -> None:
    code, _, err = run(
        capsys, "tenant", "add", "acme", "--name", "A",
        "--set", "whmcs.base_url=http://billing.acme.example",
    )  # fmt: skip
    assert code == 2 and "whmcs.base_url" in one_sentence(err)
    assert stored(db_url) == (0, 0)


@pytest.mark.parametrize("url", LOOPBACK_HTTP)
def test_development_accepts_a_loopback_sandbox_over_http(url: str) -> None:
    settings = parse_settings({"stripe": {"enabled": True, "api_base": url}}, production=False)
    assert str(settings.stripe.api_base).startswith("http://")
    with pytest.raises(ConfigError, match=r"stripe\.api_base.*https"):
        parse_settings({"stripe": {"enabled": True, "api_base": url}}, production=True)


def test_production_accepts_https_provider_urls() -> None:
    raw: dict[str, Any] = {setting.split(".")[0]: {} for setting in URL_SETTINGS}
    for setting in URL_SETTINGS:
        group, key = setting.split(".")
        raw[group][key] = f"https://{group.replace('_', '-')}.example/api"
    settings = parse_settings(raw, production=True)
    assert str(settings.whmcs.base_url) == "https://whmcs.example/api"


def test_production_refuses_whmcs_mysql_mode_without_a_ca_bundle(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    mysql = [
        "--set", "whmcs.mode=mysql", "--set", "whmcs.mysql_host=db.acme.example",
        "--set", "whmcs.mysql_database=whmcs", "--set", "whmcs.mysql_user=reader",
    ]  # fmt: skip
    production(monkeypatch)
    code, _, err = run(capsys, "tenant", "add", "acme", "--name", "A", *mysql)
    sentence = one_sentence(err)
    assert code == 2 and "whmcs.mysql_ssl_ca" in sentence and "TLS" in sentence
    assert stored(db_url) == (0, 0)
    settings = parse_settings(
        {"whmcs": {"mode": "mysql", "mysql_ssl_ca": "/etc/recon/whmcs-ca.pem"}}, production=True
    )
    assert settings.whmcs.mysql_ssl_ca == "/etc/recon/whmcs-ca.pem"


# -- again when a run starts ---------------------------------------------------------------------


@pytest.fixture
def tls_vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox_vault: VaultState
) -> Iterator[str]:
    """A sandbox Vault over verified TLS holding the audit chain key; its address is configured."""
    cert, key = write_self_signed_cert(tmp_path, "vault sandbox")
    sandbox_vault.put_secret("recon/global", {"audit_chain_key": "k" * 64})
    token = sandbox_vault.add_token(ttl=0)
    with run_in_thread(build_app(vault=sandbox_vault), ssl_certfile=cert, ssl_keyfile=key) as srv:
        monkeypatch.setenv("RECON_VAULT_ADDR", srv.url)
        monkeypatch.setenv("RECON_VAULT_TOKEN", token)
        monkeypatch.setenv("RECON_VAULT_CA_CERT", cert)
        yield srv.url


def test_a_run_started_in_production_refuses_the_http_urls_added_in_development(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    tls_vault: str,
) -> None:
    from flows.reconcile import reconcile

    code, _, err = run(
        capsys, "tenant", "add", "acme", "--name", "A",
        "--set", "stripe.enabled=true", "--set", "stripe.api_base=http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert code == 0, err  # a loopback sandbox over http is fine in development

    production(monkeypatch)
    with pytest.raises(ConfigError, match=r"stripe\.api_base.*https.*production") as refused:
        reconcile.fn(tenant="acme", date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31))
    assert refused.value.exit_code == 2
    assert stored(db_url)[0] == 1
    # the run was refused before it started: no run row, no provider call
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(Run)) == 0
    finally:
        engine.dispose()


def test_tenant_update_in_production_requires_https_and_can_fix_an_http_url(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    db_url: str,
    tls_vault: str,
) -> None:
    code, _, err = run(
        capsys, "tenant", "add", "acme", "--name", "A",
        "--set", "stripe.enabled=true", "--set", "stripe.api_base=http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert code == 0, err
    production(monkeypatch)

    code, _, err = run(
        capsys, "tenant", "update", "acme", "--set", "stripe.api_base=http://127.0.0.1:9/v2"
    )
    assert code == 2 and "stripe.api_base" in one_sentence(err) and "https" in err
    code, _, err = run(
        capsys, "tenant", "update", "acme", "--set", f"stripe.api_base=https://x:{PASSWORD}@a.b/"
    )
    assert code == 2 and "stripe.api_base" in one_sentence(err) and PASSWORD not in err
    code, _, err = run(
        capsys, "tenant", "update", "acme", "--set", "stripe.api_base=https://api.stripe.example/"
    )
    assert code == 0, err  # the stored http URL does not stand in the way of fixing it
    code, out, err = run(capsys, "tenant", "show", "acme")
    assert code == 0, err
    assert "https://api.stripe.example/" in out
    code, _, err = run(
        capsys, "tenant", "update", "acme", "--set", "gocardless.base_url=http://127.0.0.1:9/"
    )
    assert code == 2 and "gocardless.base_url" in one_sentence(err) and "https" in err
