"""A tenant's real provider clients for the services of people: the GoCardless Bank Account Data
client behind `recon.review.connection_views.BankDirectory` (the bank-connection wizard), and one
cheap connectivity probe per configured provider (WHMCS, Stripe, GoCardless).

Built here, in the connectors layer, so the CLI (`recon bank`) and the UI's Connections page use
the same code and neither entry point imports the other. Secrets are resolved only when a client
is first used, so a user the service refuses never has the tenant's secrets read."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from recon.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from connectors.gocardless import Account, Agreement, GoCardlessClient, Institution, Requisition
    from recon.review.connection_views import Probe
    from recon.secrets import SecretResolver
    from recon.tenants import TenantSettings

__all__ = ["TenantBank", "probes", "tenant_settings"]


def tenant_settings(engine: Engine, tenant_id: str) -> TenantSettings:
    """The tenant's stored settings (NotFoundError for an unknown tenant)."""
    from recon.db.tenancy import admin_session
    from recon.tenants import get_tenant, parse_settings

    with admin_session(engine) as session:
        return parse_settings(get_tenant(session, tenant_id).settings, production=False)


class TenantBank:
    """The tenant's GoCardless Bank Account Data client, built on first use (so a refused user
    never has the tenant's secrets resolved), its daily quota counted in the database (the
    details call of a newly linked account draws on it). A context manager; satisfies
    `recon.review.connections.BankDirectory`."""

    def __init__(self, engine: Engine, tenant_id: str, secrets: SecretResolver) -> None:
        self._engine, self._tenant, self._secrets = engine, tenant_id, secrets
        self._client: GoCardlessClient | None = None

    def __enter__(self) -> TenantBank:
        return self

    def __exit__(self, *_: object) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> GoCardlessClient:
        """The real client (built now if it was not yet)."""
        if self._client is None:
            self._client = _bank_client(self._engine, self._tenant, self._secrets)
        return self._client

    def list_institutions(self, country: str) -> list[Institution]:
        """Banks of a country."""
        return self.client.list_institutions(country)

    def create_agreement(
        self, institution_id: str, *, max_historical_days: int = 90, access_valid_for_days: int = 90
    ) -> Agreement:
        """An end-user agreement."""
        return self.client.create_agreement(
            institution_id,
            max_historical_days=max_historical_days,
            access_valid_for_days=access_valid_for_days,
        )

    def create_requisition(
        self, redirect: str, institution_id: str, *, reference: str, agreement: str | None = None
    ) -> Requisition:
        """A requisition with its consent link."""
        return self.client.create_requisition(
            redirect, institution_id, reference=reference, agreement=agreement
        )

    def get_agreement(self, agreement_id: str) -> Agreement:
        """An end-user agreement (its `accepted` starts the consent's days)."""
        return self.client.get_agreement(agreement_id)

    def get_requisition(self, requisition_id: str) -> Requisition:
        """A requisition's status and accounts."""
        return self.client.get_requisition(requisition_id)

    def get_account(self, account_id: str) -> Account:
        """Account metadata."""
        return self.client.get_account(account_id)

    def get_details(self, account_id: str) -> dict[str, Any]:
        """Account details (one of the day's calls)."""
        return self.client.get_details(account_id)


def _bank_client(engine: Engine, tenant_id: str, secrets: SecretResolver) -> GoCardlessClient:
    from connectors.gocardless import GoCardlessClient
    from connectors.quota import QuotaGuard
    from recon.secrets import GOCARDLESS_SECRET_ID, GOCARDLESS_SECRET_KEY

    base = tenant_settings(engine, tenant_id).gocardless.base_url
    if base is None:
        raise ConfigError(
            f"tenant {tenant_id!r} has no GoCardless base URL; set gocardless.base_url with "
            "`recon tenant update`"
        )
    return GoCardlessClient(
        str(base),
        secrets.get(GOCARDLESS_SECRET_ID, tenant_id),
        secrets.get(GOCARDLESS_SECRET_KEY, tenant_id),
        quota=QuotaGuard(engine, tenant_id),
    )


def probes(engine: Engine, tenant_id: str, secrets: SecretResolver) -> dict[str, Probe]:
    """One cheap read per configured provider; secrets are resolved only when a probe runs."""
    settings = tenant_settings(engine, tenant_id)
    found: dict[str, Probe] = {}
    if settings.whmcs.base_url is not None or settings.whmcs.mode == "mysql":
        found["WHMCS"] = lambda: _whmcs_probe(tenant_id, settings, secrets)
    if settings.stripe.enabled or settings.stripe.api_base is not None:
        found["Stripe"] = lambda: _stripe_probe(tenant_id, settings, secrets)
    if settings.gocardless.base_url is not None:
        found["GoCardless"] = lambda: _bank_probe(engine, tenant_id, secrets)
    return found


def _whmcs_probe(tenant_id: str, settings: TenantSettings, secrets: SecretResolver) -> str:
    if settings.whmcs.mode == "mysql":
        from connectors.whmcs_mysql import WhmcsDatabase
        from recon.secrets import WHMCS_DB_PASSWORD

        database = WhmcsDatabase.from_settings(
            settings.whmcs, password=secrets.get(WHMCS_DB_PASSWORD, tenant_id)
        )
        with database.snapshot():
            return f"the WHMCS database at {database.where} answered"
    from connectors.whmcs.client import whmcs_client_for

    with whmcs_client_for(tenant_id, settings.whmcs, secrets) as client:
        currencies = client.get_currencies()
    return f"WHMCS answered with {len(currencies)} currencies"


def _stripe_probe(tenant_id: str, settings: TenantSettings, secrets: SecretResolver) -> str:
    from connectors.stripe.client import StripeClient
    from connectors.stripe.wire import DEFAULT_API_BASE
    from recon.secrets import STRIPE_SECRET_KEY

    base = str(settings.stripe.api_base or DEFAULT_API_BASE)
    since = int((dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).timestamp())
    with StripeClient(secrets.get(STRIPE_SECRET_KEY, tenant_id), base_url=base) as client:
        pages = client.list_payouts(created={"gte": since})
    return f"Stripe answered ({len(pages)} page(s) of payouts from the last day)"


def _bank_probe(engine: Engine, tenant_id: str, secrets: SecretResolver) -> str:
    with TenantBank(engine, tenant_id, secrets) as bank:
        bank.client.access_token()
    return "GoCardless issued an access token"
