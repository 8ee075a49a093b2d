"""The demo provisions the export signing key the way it provisions the chain key: served by the
sandbox Vault, kept in a private file beside the demo database, named (never printed) in the
lines the demo prints."""

from __future__ import annotations

from pathlib import Path

from apps.demo import demo_export_key, follow_up_exports
from connectors.sandbox.world import SandboxCredentials
from recon.secrets import AUDIT_EXPORT_SIGNING_KEY
from recon.settings import Settings


def test_the_demo_keeps_its_export_key_and_prints_how_to_read_it(tmp_path: Path) -> None:
    key = demo_export_key(tmp_path)
    path = tmp_path / "sandbox" / "export-signing-key"
    assert demo_export_key(tmp_path) == key and len(key) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    lines = follow_up_exports(Settings(data_dir=tmp_path))
    line = next(x for x in lines if "RECON_SECRET_AUDIT_EXPORT_SIGNING_KEY" in x)
    assert str(path) in line and key not in "\n".join(lines)


def test_the_sandbox_vault_serves_the_export_key() -> None:
    import datetime as dt

    from connectors.sandbox.world import SandboxWorld, world_ending

    credentials = SandboxCredentials.generate()
    world = world_ending(dt.date(2026, 10, 31), n_invoices=20, days=5, seed=1)
    sandbox = SandboxWorld(
        world, tenant="acme", as_of=dt.date(2026, 10, 31), credentials=credentials
    )
    document = sandbox.global_vault_document()
    assert document[AUDIT_EXPORT_SIGNING_KEY.name] == credentials.audit_export_signing_key
