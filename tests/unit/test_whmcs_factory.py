"""`whmcs_client_for` is the one way a tenant's WHMCS client is built, and it is closed after use."""

from __future__ import annotations

import pytest

from connectors.whmcs import whmcs_client_for
from recon.errors import ConfigError
from recon.secrets import WHMCS_API_IDENTIFIER, WHMCS_API_SECRET, SecretResolver, env_var_name
from recon.settings import Settings
from recon.tenants import WhmcsSettings


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> SecretResolver:
    monkeypatch.delenv("RECON_VAULT_ADDR", raising=False)
    monkeypatch.setenv(env_var_name(WHMCS_API_IDENTIFIER, "acme"), "ident-acme")
    monkeypatch.setenv(env_var_name(WHMCS_API_SECRET, "acme"), "secret-acme-value")
    return SecretResolver(Settings())


def test_the_client_uses_the_tenants_url_and_is_closed_after_use(secrets: SecretResolver) -> None:
    settings = WhmcsSettings(base_url="https://billing.example.com/")
    with whmcs_client_for("acme", settings, secrets) as client:
        assert client.url == "https://billing.example.com/includes/api.php"
        http = client._http._client
        assert not http.is_closed
    assert http.is_closed


def test_a_tenant_without_a_whmcs_url_is_a_config_error(secrets: SecretResolver) -> None:
    with pytest.raises(ConfigError, match="'acme' has no WHMCS base URL"):
        whmcs_client_for("acme", WhmcsSettings(), secrets)
