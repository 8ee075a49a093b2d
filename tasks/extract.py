"""Bring one source of one tenant up to date for a window: land (or replay) the provider's
pages, normalise them, validate every batch and load the good rows, in that order.

A source is one WHMCS installation, one bank account (GoCardless Bank Account Data), one Stripe
account or one GoCardless Payments creditor. Each runs on its own and loads in one database
transaction (with its validation verdicts), so sources can run concurrently and a failure in
one leaves the others' loads intact.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from connectors.gocardless import GoCardlessClient, IdPolicy
from connectors.gocardless_payments import GoCardlessPaymentsClient
from connectors.http import HttpPolicy
from connectors.pages import Page
from connectors.quota import QuotaGuard
from connectors.stripe import StripeClient
from connectors.whmcs import whmcs_client_for
from connectors.whmcs_mysql import WhmcsDatabase
from recon.db.models import SourceAccount
from recon.db.tenancy import tenant_session
from recon.errors import ConfigError
from recon.secrets import (
    GOCARDLESS_PAYMENTS_TOKEN,
    GOCARDLESS_SECRET_ID,
    GOCARDLESS_SECRET_KEY,
    STRIPE_SECRET_KEY,
    WHMCS_DB_PASSWORD,
    SecretResolver,
)
from recon.tenants import TenantSettings
from tasks.balances import balances_fetcher, capture_balances
from tasks.land import FetchScope, ServedPages, StoredPage, serve
from tasks.load import Batch, LoadResult, load_batch_in, restrict, restrict_lines
from tasks.normalise_gocardless import bank_batch, payments_batches
from tasks.normalise_stripe import normalise as stripe_normalise
from tasks.normalise_whmcs import fetch_all, page_callback, whmcs_batches
from tasks.validate import (
    SUITE_FOR,
    ValidationOutcome,
    ValidationPolicy,
    check_for,
    definition_digest,
    find_verdicts,
    prepare,
    raise_if_held,
    store_outcome,
    validate_check,
    validation_parameters,
)

log = logging.getLogger("recon.extract")

SOURCE_NAMES = ("whmcs", "bank", "stripe", "gocardless")
"""What `--source` accepts: WHMCS, bank feeds, Stripe, GoCardless Payments."""


@dataclass(frozen=True)
class Source:
    """One thing to read for a tenant."""

    kind: str  # whmcs | bank | stripe | gocardless
    provider: str  # the provider name raw pages and quarantined rows are filed under
    account_ref: str
    dataset: str


@dataclass
class SourceResult:
    """What bringing one source up to date did."""

    source: Source
    replayed: bool
    pages: int
    loads: list[LoadResult] = field(default_factory=list)
    validations: list[ValidationOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent per stage (serve, normalise, validate, load), for the run's counts."""

    @property
    def loaded(self) -> int:
        """Rows now in the tables for this window of this source."""
        return sum(r.loaded for r in self.loads)

    @property
    def quarantined(self) -> int:
        """Records quarantined (unreadable or breaking an expectation)."""
        return sum(r.quarantined for r in self.loads)


def linked_bank_accounts(engine: Engine, tenant_id: str) -> list[str]:
    """The tenant's active GoCardless bank accounts linked through `recon bank link` (stored as
    source accounts), in the order they were first linked."""
    with tenant_session(engine, tenant_id) as session:
        return list(
            session.scalars(
                select(SourceAccount.external_id)
                .where(SourceAccount.provider == "gocardless", SourceAccount.status == "active")
                .order_by(SourceAccount.id)
            )
        )


def plan_sources(
    settings: TenantSettings, only: set[str] | None = None, linked: Sequence[str] = ()
) -> list[Source]:
    """The sources a tenant's settings enable, optionally only some kinds. Bank accounts are
    those of `gocardless.account_ids` then the `linked` ones (`linked_bank_accounts`), each
    once."""
    unknown = (only or set()) - set(SOURCE_NAMES)
    if unknown:
        raise ConfigError(
            f"unknown source {sorted(unknown)[0]!r}; choose from {', '.join(SOURCE_NAMES)}"
        )
    wanted = only or set(SOURCE_NAMES)
    sources: list[Source] = []
    if "whmcs" in wanted:
        sources.append(Source("whmcs", "whmcs", "whmcs", "whmcs"))
    if "bank" in wanted and settings.gocardless.enabled:
        sources += [
            Source("bank", "gocardless", account, "transactions")
            for account in dict.fromkeys([*settings.gocardless.account_ids, *linked])
        ]
    if "stripe" in wanted and settings.stripe.enabled:
        sources.append(
            Source("stripe", "stripe", settings.stripe.account_id or "stripe", "activity")
        )
    if "gocardless" in wanted and settings.gocardless_payments.enabled:
        creditor = settings.gocardless_payments.creditor_id or "gocardless"
        sources.append(Source("gocardless", "gocardless_payments", creditor, "activity"))
    return sources


def _url(value: object, what: str) -> str:
    if value is None:
        raise ConfigError(
            f"the tenant has no {what} base URL; set it with `recon tenant add --set`"
        )
    return str(value)


@dataclass
class SourceContext:
    """Everything extraction needs besides the source itself."""

    engine: Engine
    tenant_id: str
    settings: TenantSettings
    secrets: SecretResolver
    policy: HttpPolicy = field(default_factory=HttpPolicy)
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)


def _fetcher(
    ctx: SourceContext, source: Source, window: tuple[dt.date, dt.date]
) -> Callable[[Callable[[Page], None]], None]:
    """The provider call that hands every raw page of the window to the lander.

    Settings are checked now; secrets are resolved only when the call really runs, so a replay
    from the store needs no provider secret (and no Vault)."""
    s, tenant = ctx.settings, ctx.tenant_id
    if source.kind == "whmcs":
        if s.whmcs.mode != "api":
            raise ConfigError(
                "WHMCS direct MySQL mode is read by `recon` only through its API mode yet"
            )
        _url(s.whmcs.base_url, "WHMCS")  # checked now; secrets only when it runs
        return fetch_all(
            lambda on_page: whmcs_client_for(
                tenant,
                s.whmcs,
                ctx.secrets,
                policy=ctx.policy,
                on_page=page_callback(on_page),
            )
        )
    if source.kind == "bank":
        base = _url(s.gocardless.base_url, "GoCardless")

        def fetch_bank(on_page: Callable[[Page], None]) -> None:
            quota = QuotaGuard(ctx.engine, tenant)
            with GoCardlessClient(
                base,
                ctx.secrets.get(GOCARDLESS_SECRET_ID, tenant),
                ctx.secrets.get(GOCARDLESS_SECRET_KEY, tenant),
                policy=ctx.policy,
                quota=quota,
            ) as client:
                client.fetch_transactions(source.account_ref, window, on_page)

        return fetch_bank
    if source.kind == "stripe":
        base = _url(s.stripe.api_base, "Stripe")

        def fetch_stripe(on_page: Callable[[Page], None]) -> None:
            key = ctx.secrets.get(STRIPE_SECRET_KEY, tenant)
            with StripeClient(key, base_url=base, policy=ctx.policy) as client:
                client.fetch_window(window[0], window[1], on_page)

        return fetch_stripe
    base = _url(s.gocardless_payments.base_url, "GoCardless Payments")

    def fetch_payments(on_page: Callable[[Page], None]) -> None:
        token = ctx.secrets.get(GOCARDLESS_PAYMENTS_TOKEN, tenant)
        with GoCardlessPaymentsClient(base, token, policy=ctx.policy) as client:
            client.fetch_window(window, on_page)

    return fetch_payments


def _balances_fetcher(
    ctx: SourceContext, source: Source
) -> Callable[[Callable[[Page], None]], None]:
    base = _url(ctx.settings.gocardless.base_url, "GoCardless")
    return balances_fetcher(
        ctx.engine, ctx.tenant_id, base, ctx.secrets, source.account_ref, policy=ctx.policy
    )


def _whmcs_database(ctx: SourceContext) -> WhmcsDatabase:
    # from_settings passes whmcs.mysql_ssl_ca: TLS is verified, and required in production
    password = ctx.secrets.get(WHMCS_DB_PASSWORD, ctx.tenant_id)
    return WhmcsDatabase.from_settings(ctx.settings.whmcs, password=password)


def normalise(ctx: SourceContext, source: Source, pages: list[StoredPage]) -> list[Batch]:
    """The canonical batches of a source's landed pages."""
    if source.kind == "whmcs":
        return whmcs_batches(pages)
    if source.kind == "bank":
        policy: IdPolicy = (
            "transaction_id"
            if source.account_ref in ctx.settings.gocardless.stable_id_accounts
            else "content"
        )
        return [bank_batch(pages, source.account_ref, id_policy=policy)]
    if source.kind == "stripe":
        return stripe_normalise(pages, source.account_ref).batches()
    return payments_batches(pages, source.account_ref)


WINDOWED = frozenset({"bank", "stripe", "gocardless"})
"""Sources whose provider answers for a window of days; WHMCS answers with its whole ledger."""


def _scope(source: Source, window: tuple[dt.date, dt.date]) -> FetchScope:
    return FetchScope(source.provider, source.account_ref, source.dataset, *window)


def refetch_allowed(ctx: SourceContext, source: Source) -> bool:
    """Whether an asked-for refetch may call the provider. A bank account's GoCardless calls
    are few (as few as 4 a day): a refetch of a window the store covers is a wish, not a need,
    so it may use only the first half of the day's calls; past that the store serves it."""
    if source.kind != "bank":
        return True
    usage = QuotaGuard(ctx.engine, ctx.tenant_id).usage(source.account_ref, "transactions")
    if 2 * (usage.calls + 1) <= usage.limit:
        return True
    log.warning(
        "bank %s: not refetched, %d of the %d GoCardless calls allowed today are used and the "
        "rest is kept for windows the store does not cover; the store serves it if it can",
        source.account_ref,
        usage.calls,
        usage.limit,
    )
    return False


def land_source(
    ctx: SourceContext,
    source: Source,
    window: tuple[dt.date, dt.date],
    *,
    run_id: str | None = None,
    refetch: bool = False,
) -> ServedPages:
    """Make sure the store covers `window` for `source`: nothing is fetched when stored fetches
    cover it (unless `refetch`), else the whole window is fetched once (a backfill lands its
    range this way, then serves every period from the store)."""
    return serve(
        ctx.engine,
        ctx.tenant_id,
        _scope(source, window),
        _fetcher(ctx, source, window),
        refetch=refetch and refetch_allowed(ctx, source),
        run_id=run_id,
        newest_only=source.kind not in WINDOWED,
    )


def served_batches(
    ctx: SourceContext, source: Source, window: tuple[dt.date, dt.date], served: ServedPages
) -> list[Batch]:
    """The canonical batches a window reads from its pages. A fresh fetch is the provider's own
    answer for the window and is validated as it came; a replay from the store is cut to the
    window and its grace days, so a shorter window than the stored one (or a window served by
    several stored fetches) loads what belongs to it and nothing else."""
    batches = normalise(ctx, source, served.pages)
    if not served.replayed or source.kind not in WINDOWED:
        return batches
    grace = dt.timedelta(days=ctx.validation.grace_days)
    first, last = window[0] - grace, window[1] + grace
    cut = [restrict(b, first, last) for b in batches]
    pairs = [(whole, part) for whole, part in zip(batches, cut, strict=True)]
    payouts = next(((w, p) for w, p in pairs if w.dataset.name == "payouts"), None)
    return [
        restrict_lines(b, *payouts) if b.dataset.name == "payout_lines" and payouts else b
        for b in cut
    ]


def verdicts_expected(ctx: SourceContext, source: Source, window: tuple[dt.date, dt.date]) -> bool:
    """Whether a recent run of the tenant over this window stored a verdict of one of this
    source's suites with today's parameters: then its batches are likely the same (a replay)
    and their verdicts reused, so GX is not built ahead of time (a wrong guess costs time only:
    a batch whose verdict is missing builds it)."""
    parameters = validation_parameters(*window, ctx.validation)
    wanted = [
        (suite, dataset, definition_digest(suite, parameters))
        for (provider, dataset), suite in SUITE_FOR.items()
        if provider == source.provider
    ]
    with tenant_session(ctx.engine, ctx.tenant_id) as session:
        return bool(find_verdicts(session, window, wanted, by="definition"))


def validate_batches(
    ctx: SourceContext, window: tuple[dt.date, dt.date], batches: list[Batch]
) -> list[ValidationOutcome]:
    """Validate a source's batches, reusing the tenant's stored verdict of any batch whose
    fingerprint (suite, GX version, parameters, the exact frame) an earlier run of the same
    window validated; GX runs (and is built) only for the others."""
    checks = [
        check_for(b, window_from=window[0], window_to=window[1], policy=ctx.validation)
        for b in batches
    ]
    wanted = [(c.suite, c.batch.dataset.name, c.fingerprint) for c in checks
              if c.needs_gx and c.suite and c.fingerprint]  # fmt: skip
    stored = {}
    if wanted:
        with tenant_session(ctx.engine, ctx.tenant_id) as session:
            stored = find_verdicts(session, window, wanted)
    if any(c.needs_gx and stored.get(c.fingerprint or "") is None for c in checks):
        prepare()  # GX's import and context build, while the batches before it are checked
    return [
        validate_check(c, ctx.validation, stored.get(c.fingerprint) if c.fingerprint else None)
        for c in checks
    ]


def extract_source(
    ctx: SourceContext,
    source: Source,
    window: tuple[dt.date, dt.date],
    *,
    run_id: str,
    refetch: bool = False,
) -> SourceResult:
    """Serve (from the store or the provider), normalise, validate and load one source for
    `window`."""
    if not verdicts_expected(ctx, source, window):
        prepare()  # GX's import and context build overlap serving (tasks.validate.prepare)
    grace = ctx.validation.grace_days if source.kind in WINDOWED else 0
    clock = time.perf_counter()
    landed = serve(
        ctx.engine,
        ctx.tenant_id,
        _scope(source, window),
        _fetcher(ctx, source, window),
        refetch=refetch and refetch_allowed(ctx, source),
        run_id=run_id,
        margin_days=grace,
        newest_only=source.kind not in WINDOWED,
    )
    timings = {"serve": time.perf_counter() - clock}
    clock = time.perf_counter()
    batches = served_batches(ctx, source, window, landed)
    timings["normalise"] = time.perf_counter() - clock
    clock = time.perf_counter()
    outcomes = validate_batches(ctx, window, batches)
    timings["validate"] = time.perf_counter() - clock
    clock = time.perf_counter()
    result = SourceResult(source, landed.replayed, len(landed.pages), validations=outcomes)
    held = [o for o in outcomes if o.held]
    with tenant_session(ctx.engine, ctx.tenant_id) as session:
        for outcome in outcomes:
            store_outcome(session, run_id, outcome)
        if not held:
            watermark = (source.account_ref, window[1])
            result.loads = [
                load_batch_in(
                    session,
                    ctx.tenant_id,
                    outcome.batch,
                    run_id=run_id,
                    watermark=watermark if i == 0 else None,
                )
                for i, outcome in enumerate(outcomes)
            ]
    timings["load"] = time.perf_counter() - clock
    if source.kind == "bank":  # the bank's balances for the report's tie-out; never fails the run
        fetch = None if landed.replayed else _balances_fetcher(ctx, source)
        capture_balances(ctx.engine, ctx.tenant_id, source.account_ref, fetch, run_id=run_id)
    result.timings = {stage: round(seconds, 3) for stage, seconds in timings.items()}
    for outcome in held:
        raise_if_held(outcome, ctx.validation)
    log.info(
        "%s %s: %s %d pages, loaded %d rows, quarantined %d",
        source.kind,
        source.account_ref,
        "replayed" if landed.replayed else "fetched",
        result.pages,
        result.loaded,
        result.quarantined,
    )
    return result
