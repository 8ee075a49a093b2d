"""Anchors keep the chain's head outside the database: deleting the newest entries, emptying the
chain or rewriting it after the anchor is caught, and so is a changed anchor; through the CLI
too (exit 7). The chain key is a secret: without it production stops and names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.cli.main import main
from connectors.sandbox.serve import RunningServer
from connectors.sandbox.vault import VaultState
from recon import audit
from recon.db.tenancy import admin_session, tenant_session
from recon.errors import SecretUnavailableError
from recon.secrets import AUDIT_CHAIN_KEY
from tests.integration.audit_helpers import TENANT, Backend, backend, tamper, write_chain

__all__ = ["backend"]  # the fixture, imported for pytest


def _check(b: Backend, anchor: audit.Anchor) -> audit.AnchorCheck:
    with tenant_session(b.app, TENANT) as session:
        return audit.check_anchor(session, anchor)


def _append(b: Backend, n: int) -> None:
    for i in range(n):
        with tenant_session(b.app, TENANT) as session:
            audit.append(session, actor="bob", action="x", entity="e", entity_id=f"late-{i}")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_anchor_of_the_head_checks_and_survives_later_entries(backend: Backend) -> None:
    write_chain(backend)
    anchor = audit.anchor_for(backend.app, TENANT)
    assert (anchor.tenant_id, anchor.seq) == (TENANT, 6)
    assert anchor.key_id == audit.resolve_chain_key().key_id
    assert _check(backend, anchor).ok
    _append(backend, 2)  # the chain grows; what the anchor saw is still there
    check = _check(backend, anchor)
    assert check.ok and check.report is not None and check.report.entries == 8


def test_deleting_the_newest_entries_is_caught_by_the_anchor(backend: Backend) -> None:
    write_chain(backend)
    anchor = audit.anchor_for(backend.app, TENANT)
    tamper(backend, "DELETE FROM audit_log WHERE seq >= 5")
    with tenant_session(backend.app, TENANT) as session:
        assert audit.verify_chain(session, TENANT).ok  # the chain alone cannot tell
    check = _check(backend, anchor)
    assert not check.ok and check.problem is not None
    assert "saw entry seq 6" in check.problem and "ends at seq 4" in check.problem


def test_deleted_entries_written_again_are_caught_as_a_rewrite(backend: Backend) -> None:
    """Delete the newest two, then let the application append two new ones: every link and
    HMAC verifies, but entry 6 is not the entry the anchor saw."""
    write_chain(backend)
    anchor = audit.anchor_for(backend.app, TENANT)
    tamper(backend, "DELETE FROM audit_log WHERE seq >= 5")
    _append(backend, 2)
    check = _check(backend, anchor)
    assert check.report is not None and check.report.ok
    assert check.problem is not None and "was rewritten" in check.problem


def test_an_emptied_chain_fails_the_anchor_and_cannot_be_anchored(backend: Backend) -> None:
    write_chain(backend, 2)
    anchor = audit.anchor_for(backend.app, TENANT)
    tamper(backend, "DELETE FROM audit_log")
    check = _check(backend, anchor)
    assert check.problem is not None and "no audit entries" in check.problem
    with pytest.raises(audit.AuditChainBrokenError, match="no audit entries"):
        audit.anchor_for(backend.app, TENANT)


def test_a_changed_anchor_does_not_verify(backend: Backend) -> None:
    write_chain(backend)
    anchor = audit.anchor_for(backend.app, TENANT)
    fields = anchor.to_dict()
    lowered = audit.Anchor.from_dict({**fields, "seq": 4})  # to fit a chain cut at seq 4
    check = _check(backend, lowered)
    assert check.problem is not None and "signature does not verify" in check.problem
    other_key = audit.ChainKey.from_secret("z" * 48)
    resigned = audit.Anchor.from_dict({**fields, "key_id": other_key.key_id})
    check = _check(backend, resigned)
    assert check.problem is not None and f"id {other_key.key_id}" in check.problem
    assert _check(backend, audit.Anchor.from_dict(json.loads(anchor.to_json()))).ok


def test_the_cli_anchors_and_fails_with_exit_7_when_the_chain_lost_it(
    backend: Backend,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", backend.app_url)
    write_chain(backend)
    anchor_file = tmp_path / "anchors" / "acme.json"
    code, out, err = run(capsys, "audit", "anchor", "--tenant", TENANT, "--out", str(anchor_file))
    assert code == 0, err
    saved = json.loads(anchor_file.read_text())
    assert saved["seq"] == 6 and saved["tenant"] == TENANT and len(saved["signature"]) == 64
    code, out, err = run(capsys, "audit", "verify", "--anchor", str(anchor_file))
    assert code == 0, err
    assert "anchored entry seq 6" in out

    tamper(backend, "DELETE FROM audit_log WHERE seq >= 5")
    code, out, err = run(capsys, "audit", "verify")
    assert code == 0, err  # the chain alone still verifies ...
    code, out, err = run(capsys, "audit", "verify", "--anchor", str(anchor_file))
    assert code == audit.AuditChainBrokenError.exit_code == 7  # ... the anchor does not
    assert "newer entries were deleted" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err

    anchor_file.write_text(json.dumps({**saved, "seq": 4}))
    code, _, err = run(capsys, "audit", "verify", "--anchor", str(anchor_file))
    assert code == 7 and "signature does not verify" in err

    anchor_file.write_text("{not json")
    code, _, err = run(capsys, "audit", "verify", "--anchor", str(anchor_file))
    assert code == 6 and "not JSON" in err
    code, _, err = run(capsys, "audit", "verify", "--anchor", str(tmp_path / "missing.json"))
    assert code == 5 and "does not exist" in err


def test_the_cli_says_an_empty_chain_is_broken(
    backend: Backend, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", backend.app_url)
    write_chain(backend, 2)
    tamper(backend, "DELETE FROM audit_log")
    code, _, err = run(capsys, "audit", "verify", "--tenant", TENANT)
    assert code == 7 and "no audit entries" in err
    code, _, err = run(capsys, "audit", "anchor", "--tenant", TENANT, "--out", "a.json")
    assert code == 7 and not Path("a.json").exists()
    code, _, err = run(capsys, "audit", "seal", "--tenant", TENANT)
    assert code == 7 and "not sealed" in err  # sealing must not hide the truncation


def test_production_without_the_key_stops_naming_it(
    sqlite_url: str,
    sqlite_engine: object,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECON_DATABASE_URL", sqlite_url)

    def in_production(*args: str) -> None:
        monkeypatch.setenv("RECON_ENV", "production")  # the env fallback (conftest's) is off
        code, _, err = run(capsys, *args)
        monkeypatch.delenv("RECON_ENV")
        assert code == SecretUnavailableError.exit_code, (args, err)
        assert "audit_chain_key" in err and "RECON_VAULT_ADDR" in err, (args, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err

    in_production("tenant", "add", TENANT, "--name", "Acme")
    assert TENANT not in run(capsys, "tenant", "list")[1]  # no tenant without its first entry
    assert run(capsys, "tenant", "add", TENANT, "--name", "Acme")[0] == 0  # development
    in_production("audit", "verify")
    in_production("audit", "anchor", "--tenant", TENANT, "--out", "a.json")
    in_production("run", "--tenant", TENANT, "--from", "2026-11-01", "--to", "2026-11-02")


def test_production_reads_the_key_from_vault(
    sqlite_engine: object,
    production_vault: RunningServer,  # production refuses Vault over http
    sandbox_vault: VaultState,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from recon.db.engine import make_engine

    credentials = sandbox_vault.add_approle()
    monkeypatch.setenv("RECON_ENV", "production")
    monkeypatch.setenv("RECON_VAULT_ADDR", production_vault.url)
    monkeypatch.setenv("RECON_VAULT_ROLE_ID", credentials.role_id)
    monkeypatch.setenv("RECON_VAULT_SECRET_ID", credentials.secret_id)
    with pytest.raises(SecretUnavailableError, match="'recon/global' \\(key 'audit_chain_key'\\)"):
        audit.resolve_chain_key()
    value = "v" * 16 + "a" * 32
    sandbox_vault.put_secret("recon/global", {AUDIT_CHAIN_KEY.name: value})
    key = audit.resolve_chain_key()
    assert key.key_id == audit.ChainKey.from_secret(value).key_id
    assert value not in repr(key)
    engine = make_engine(str(sqlite_engine.url))  # type: ignore[attr-defined]
    from recon.tenants import TenantSettings, add_tenant

    with admin_session(engine) as session:
        entry_key = add_tenant(session, TENANT, "Acme", TenantSettings(), actor="t")
    assert entry_key.id == TENANT
    with tenant_session(engine, TENANT) as session:
        assert audit.verify_chain(session, TENANT, key).ok
    engine.dispose()
