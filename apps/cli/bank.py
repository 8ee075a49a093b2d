"""`recon bank`: connect a tenant's bank accounts through GoCardless, and see their consent.

`recon bank connect --country CC --institution ID` prints the consent link; once the account
holder has allowed access, `recon bank connect --requisition ID` (or `recon bank link`) stores the
accounts as the tenant's source accounts. Each command parses its arguments, builds the tenant's
provider clients here (the entry point), calls one function of `recon.review.connections` and
prints its typed result. The UI's Connections page builds its clients with the same helpers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from apps.cli.context import acting_user, console, runtime
from recon.errors import ConfigError, ReconError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from connectors.gocardless import Account, Agreement, GoCardlessClient, Institution, Requisition
    from recon.review.connection_views import ConnectionStatus, Probe
    from recon.secrets import SecretResolver
    from recon.tenants import TenantSettings

app = typer.Typer(
    help="Bank connections (GoCardless): consent links, linked accounts, consent expiry.",
    no_args_is_help=True,
)

Tenant = Annotated[str, typer.Option("--tenant", help="The tenant's id.")]
AsOption = Annotated[
    str | None, typer.Option("--as", help="Act as this user (else RECON_USER); must be an admin.")
]


class ConnectivityFailedError(ReconError):
    """At least one provider did not answer a connectivity check (exit 9, as a provider error)."""

    exit_code = 9


JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]


# -- the tenant's clients (shared with the UI's Connections page) ----------------------------------


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


# -- printing --------------------------------------------------------------------------------------


def _json(value: Any) -> None:
    document = _plain(value) if dataclasses.is_dataclass(value) else value
    typer.echo(json.dumps(document, sort_keys=True, default=_plain))


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


def _day(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


# -- commands --------------------------------------------------------------------------------------


@app.command("institutions")
def institutions_command(
    tenant: Tenant,
    country: Annotated[str, typer.Option(help="Two-letter country code, e.g. GB.")],
    as_json: JsonOption = False,
    as_: AsOption = None,
) -> None:
    """List the banks of a country the tenant can connect."""
    from recon.review.connections import list_institutions

    rt = runtime()
    engine = rt.checked_engine()
    with TenantBank(engine, tenant, rt.secrets) as client:
        found = list_institutions(engine, acting_user(as_), tenant, client, country)
    if as_json:
        _json([dataclasses.asdict(i) for i in found])
        return
    table = Table("institution", "name", "BIC", "history days", "access days")
    for item in found:
        table.add_row(
            item.id,
            item.name,
            item.bic,
            str(item.transaction_total_days),
            str(item.max_access_valid_for_days),
        )
    console.print(table)


@app.command("connect")
def connect_command(
    tenant: Tenant,
    country: Annotated[str | None, typer.Option(help="Two-letter country code.")] = None,
    institution: Annotated[str | None, typer.Option(help="The bank's institution id.")] = None,
    redirect: Annotated[
        str | None, typer.Option(help="Where the bank sends the account holder afterwards.")
    ] = None,
    history_days: Annotated[
        int | None, typer.Option(help="Days of history to read (default: all the bank gives).")
    ] = None,
    access_days: Annotated[int, typer.Option(help="Days the consent lasts.")] = 90,
    requisition: Annotated[
        str | None, typer.Option(help="Finish a started connection: store its accounts.")
    ] = None,
    as_json: JsonOption = False,
    as_: AsOption = None,
) -> None:
    """Start a bank connection (prints the consent link), or finish one with --requisition."""
    if requisition:
        link_command(tenant, requisition, as_json, as_)
        return
    if not country or not institution:
        raise ConfigError("pass --country and --institution to start, or --requisition to finish")
    from recon.review.connections import DEFAULT_REDIRECT, start_connection

    rt = runtime()
    engine = rt.checked_engine()
    with TenantBank(engine, tenant, rt.secrets) as client:
        started = start_connection(
            engine,
            acting_user(as_),
            tenant,
            client,
            country=country,
            institution_id=institution,
            redirect=redirect or DEFAULT_REDIRECT,
            max_historical_days=history_days,
            access_valid_for_days=access_days,
        )
    if as_json:
        _json(started)
        return
    console.print(
        f"requisition {started.requisition_id} started for {started.institution_id} "
        f"({started.max_historical_days} days of history, consent for "
        f"{started.access_valid_for_days} days)",
        highlight=False,
    )
    console.print("send the account holder to this consent link:", highlight=False)
    typer.echo(started.link)
    typer.echo(  # unwrapped, so it can be copied whole
        f"then finish with: recon bank connect --tenant {tenant} --requisition "
        f"{started.requisition_id}"
    )


@app.command("link")
def link_command(
    tenant: Tenant,
    requisition: Annotated[str, typer.Option(help="The requisition id `connect` printed.")],
    as_json: JsonOption = False,
    as_: AsOption = None,
) -> None:
    """Store a linked requisition's accounts as the tenant's source accounts (idempotent)."""
    from recon.review.connections import link_accounts

    rt = runtime()
    engine = rt.checked_engine()
    with TenantBank(engine, tenant, rt.secrets) as client:
        result = link_accounts(engine, acting_user(as_), tenant, client, requisition)
    if as_json:
        _json(result)
        return
    for account in result.accounts:
        console.print(
            f"{account.change}: {account.external_id} ({account.name or '-'}, "
            f"{account.currency or 'currency unknown'}), consent until "
            f"{_day(account.consent_expires_at)}",
            highlight=False,
        )


@app.command("status")
def status_command(tenant: Tenant, as_json: JsonOption = False, as_: AsOption = None) -> None:
    """Each bank account: consent expiry (warned 14 days before), last sync, quota left today."""
    from recon.review.connections import connection_status

    status = connection_status(runtime().checked_engine(), acting_user(as_), tenant)
    if as_json:
        _json(status)
        return
    _print_status(status)


def _print_status(status: ConnectionStatus) -> None:
    if not status.accounts:
        console.print(
            f"tenant {status.tenant_id} has no bank account yet; start with `recon bank connect`"
        )
        return
    table = Table("account", "name", "currency", "consent until", "consent", "last sync", "quota")
    for a in status.accounts:
        table.add_row(
            a.external_id,
            a.name or "-",
            a.currency or "-",
            _day(a.consent_expires_at),
            a.consent.value,
            _day(a.last_sync_at),
            ", ".join(f"{q.scope} {q.left}/{q.limit}" for q in a.quota),
        )
    console.print(table)
    for warning in status.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@app.command("check")
def check_command(tenant: Tenant, as_json: JsonOption = False, as_: AsOption = None) -> None:
    """Check the tenant's WHMCS, Stripe and GoCardless connectivity (one cheap read each)."""
    from recon.review.connections import check_connectivity

    rt = runtime()
    engine = rt.checked_engine()
    results = check_connectivity(
        engine, acting_user(as_), tenant, probes(engine, tenant, rt.secrets)
    )
    if as_json:
        _json([dataclasses.asdict(r) for r in results])
    else:
        for result in results:
            mark = "[green]ok[/green]" if result.ok else "[red]FAIL[/red]"
            console.print(f"{mark} {result.name}: {result.detail}", highlight=False)
        if not results:
            console.print("no provider is configured for this tenant")
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise ConnectivityFailedError(
            f"{len(failed)} of {len(results)} connectivity checks failed: {', '.join(failed)}"
        )
