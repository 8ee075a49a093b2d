"""Secrets resolve from Vault (the sandbox, over HTTP), fall back to the environment only in
development, fail closed in production, and never show their values."""

from __future__ import annotations

import io
import logging
import os
import uuid

import pytest

from connectors.sandbox.serve import RunningServer
from connectors.sandbox.vault import VaultState
from connectors.vault import secret_resolver
from recon.errors import SecretUnavailableError
from recon.logs import configure_logging
from recon.redaction import redact
from recon.secrets import (
    AUDIT_EXPORT_SIGNING_KEY,
    REGISTRY,
    STRIPE_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET,
    WHMCS_API_IDENTIFIER,
    WHMCS_API_SECRET,
    Scope,
    env_var_name,
    required_for_tenant,
)
from recon.settings import Environment, Settings
from recon.tenants import TenantSettings


def _settings(**overrides: object) -> Settings:
    return Settings.model_validate(overrides)


def _canary() -> str:
    return f"CANARY-{uuid.uuid4()}"


def test_every_secret_is_registered_once_and_none_has_a_value() -> None:
    names = [spec.name for spec in REGISTRY]
    assert len(names) == len(set(names))
    assert {s.scope for s in REGISTRY} == {Scope.GLOBAL, Scope.TENANT}
    assert all(not hasattr(spec, "default") for spec in REGISTRY)


def test_tenant_needs_only_the_secrets_of_what_it_uses() -> None:
    plain = required_for_tenant(TenantSettings())
    assert plain == (WHMCS_API_IDENTIFIER, WHMCS_API_SECRET)
    with_stripe = required_for_tenant(
        TenantSettings.model_validate({"stripe": {"enabled": True}, "webhooks_enabled": True})
    )
    assert STRIPE_SECRET_KEY in with_stripe and STRIPE_WEBHOOK_SECRET in with_stripe


def test_development_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    value = _canary()
    monkeypatch.setenv(env_var_name(STRIPE_SECRET_KEY, "acme-hosting"), value)
    assert env_var_name(STRIPE_SECRET_KEY, "acme-hosting") == (
        "RECON_SECRET_ACME_HOSTING__STRIPE_SECRET_KEY"
    )
    resolver = secret_resolver(_settings())
    assert resolver.get(STRIPE_SECRET_KEY, "acme-hosting") == value
    assert value not in redact(f"key={value}")  # resolved values are masked from then on


def test_production_ignores_the_environment_and_names_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = _canary()
    monkeypatch.setenv(env_var_name(AUDIT_EXPORT_SIGNING_KEY), value)
    resolver = secret_resolver(_settings(env=Environment.PRODUCTION))
    with pytest.raises(SecretUnavailableError) as caught:
        resolver.get(AUDIT_EXPORT_SIGNING_KEY)
    message = str(caught.value)
    assert "audit_export_signing_key" in message and "RECON_VAULT_ADDR" in message
    assert value not in message


def _vault_settings(server: RunningServer, state: VaultState, **extra: object) -> Settings:
    credentials = state.add_approle()
    return _settings(
        vault_addr=server.url,
        vault_ca_cert=os.environ.get("RECON_VAULT_CA_CERT"),  # set by production_vault
        vault_role_id=credentials.role_id,
        vault_secret_id=credentials.secret_id,
        **extra,
    )


def test_vault_resolves_global_and_tenant_secrets(
    production_vault: RunningServer, sandbox_vault: VaultState
) -> None:
    signing, stripe_key = _canary(), _canary()
    sandbox_vault.put_secret("recon/global", {"audit_export_signing_key": signing})
    sandbox_vault.put_secret("recon/tenants/acme", {"stripe_secret_key": stripe_key})
    resolver = secret_resolver(
        _vault_settings(production_vault, sandbox_vault, env=Environment.PRODUCTION)
    )
    assert resolver.get(AUDIT_EXPORT_SIGNING_KEY) == signing
    assert resolver.get(STRIPE_SECRET_KEY, "acme") == stripe_key
    reads = sandbox_vault.count("/v1/secret/data/recon/tenants/acme")
    resolver.get(STRIPE_SECRET_KEY, "acme")
    assert sandbox_vault.count("/v1/secret/data/recon/tenants/acme") == reads  # cached


def test_production_secret_missing_from_vault_is_named_without_values(
    production_vault: RunningServer, sandbox_vault: VaultState, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = _canary()
    sandbox_vault.put_secret("recon/tenants/acme", {"whmcs_api_identifier": present})
    monkeypatch.setenv(env_var_name(WHMCS_API_SECRET, "acme"), _canary())  # must be ignored
    settings = _vault_settings(production_vault, sandbox_vault, env=Environment.PRODUCTION)
    problems = secret_resolver(settings).check(required_for_tenant(TenantSettings()), "acme")
    assert len(problems) == 1
    assert "whmcs_api_secret" in problems[0] and "acme" in problems[0]
    assert present not in problems[0]


def test_vault_failures_fail_closed_and_leak_nothing(
    production_vault: RunningServer, sandbox_vault: VaultState
) -> None:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", "human", stream)
    try:
        settings = _vault_settings(production_vault, sandbox_vault, env=Environment.PRODUCTION)
        assert settings.vault_secret_id is not None
        secret_id = settings.vault_secret_id.get_secret_value()
        sandbox_vault.inject_fault(503, count=10)
        with pytest.raises(SecretUnavailableError) as caught:
            secret_resolver(settings).get(AUDIT_EXPORT_SIGNING_KEY)
        logging.getLogger("recon.test").info("settings were %s", settings.model_dump_json())
    finally:
        logging.getLogger().removeHandler(handler)
    assert "audit_export_signing_key" in str(caught.value)
    assert secret_id not in str(caught.value) and secret_id not in stream.getvalue()


def test_vault_without_credentials_is_a_clear_error() -> None:
    resolver = secret_resolver(_settings(vault_addr="http://127.0.0.1:9"))
    with pytest.raises(SecretUnavailableError, match="RECON_VAULT_TOKEN"):
        resolver.get(AUDIT_EXPORT_SIGNING_KEY)


def test_core_resolver_reads_vault_through_the_store_the_runtime_installs(
    production_vault: RunningServer, sandbox_vault: VaultState
) -> None:
    import connectors.runtime  # noqa: F401  (installs Vault as the default store)
    from recon.secrets import SecretResolver

    signing = _canary()
    sandbox_vault.put_secret("recon/global", {"audit_export_signing_key": signing})
    settings = _vault_settings(production_vault, sandbox_vault, env=Environment.PRODUCTION)
    # what core code that resolves a secret itself does (the audit chain key)
    assert SecretResolver(settings).get(AUDIT_EXPORT_SIGNING_KEY) == signing


def test_vault_configured_without_a_store_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    import recon.secrets
    from recon.secrets import SecretResolver

    monkeypatch.setattr(recon.secrets, "_default_store_factory", None)  # no layer above installed
    value = _canary()
    monkeypatch.setenv(env_var_name(AUDIT_EXPORT_SIGNING_KEY), value)
    resolver = SecretResolver(_settings(vault_addr="https://127.0.0.1:9"))
    with pytest.raises(SecretUnavailableError, match="no secret store") as caught:
        resolver.get(AUDIT_EXPORT_SIGNING_KEY)  # never the environment's value instead
    assert value not in str(caught.value)
