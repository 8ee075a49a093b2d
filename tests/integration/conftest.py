"""Fixtures for the HTTP sandbox: fresh in-memory provider state served by a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.app import build_app
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.vault import VaultState
from tests.tls import write_self_signed_cert

SANDBOX_EPOCH = 1_800_000_000.0
"""The sandbox clock's start; it only moves when a test calls `advance`."""


@pytest.fixture
def sandbox_vault() -> VaultState:
    """An empty fake Vault whose clock stands still until the test advances it."""
    return VaultState(clock=lambda: SANDBOX_EPOCH)


@pytest.fixture
def vault_server(sandbox_vault: VaultState) -> Iterator[RunningServer]:
    """The sandbox app serving `sandbox_vault` over real HTTP on a free local port."""
    with run_in_thread(build_app(vault=sandbox_vault)) as server:
        yield server


@pytest.fixture
def production_vault(
    sandbox_vault: VaultState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    """`sandbox_vault` over verified TLS, as production requires; RECON_VAULT_CA_CERT trusts it
    (point RECON_VAULT_ADDR at its url when the test is ready to use Vault)."""
    cert, key = write_self_signed_cert(tmp_path, "vault sandbox")
    app = build_app(vault=sandbox_vault)
    with run_in_thread(app, ssl_certfile=cert, ssl_keyfile=key) as server:
        monkeypatch.setenv("RECON_VAULT_CA_CERT", cert)
        yield server
