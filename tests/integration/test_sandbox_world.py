"""The whole synthetic world served by the sandbox and read back by the real connectors over HTTP,
and `recon sandbox serve` as a real process."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from pydantic import SecretStr

from apps.cli.main import main
from apps.cli.sandbox import apply_fault, parse_fault
from connectors.gocardless import ConsentExpiredError, GoCardlessClient, parse_transactions
from connectors.gocardless_payments import GoCardlessPaymentsClient
from connectors.http import HttpPolicy
from connectors.pages import Page
from connectors.sandbox.gocardless import ReferenceStyle
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.stripe import balance_transaction_id
from connectors.sandbox.synth import SynthConfig, World, generate
from connectors.sandbox.world import (
    PENDING_PREFIX,
    SandboxCredentials,
    SandboxWorld,
    account_uuid,
    world_as_of,
)
from connectors.stripe import StripeClient
from connectors.vault import secret_resolver
from connectors.whmcs import WhmcsClient
from recon.errors import ConfigError
from recon.money import to_minor
from recon.secrets import required_for_tenant
from recon.settings import Settings
from recon.tenants import TenantSettings
from tasks.land import StoredPage
from tasks.normalise_gocardless import bank_batch, payments_batches
from tasks.normalise_stripe import normalise
from tests.integration.whmcs_fixtures import fast_policy

TENANT = "acme"
TODAY = dt.datetime.now(dt.UTC).date()
# Invoices issued from 150 to 31 days ago; the payments that trail them run past today and are cut.
# Refunds, disputes and payouts declared off are made common enough to be sure to occur.
CONFIG = SynthConfig(
    n_invoices=800,
    seed=11,
    start=(TODAY - dt.timedelta(days=150)).isoformat(),
    days=120,
    refund=0.04,
    dispute=0.03,
    payout_breakdown_off=0.15,
)


def policy() -> HttpPolicy:
    return fast_policy(read_timeout=10.0)


def noop(_page: Page) -> None:
    return None


def minor(frame: pd.DataFrame, column: str = "amount") -> pd.Series:
    return pd.Series(
        [to_minor(str(a), str(c)) for a, c in zip(frame[column], frame["currency"], strict=True)],
        index=frame.index,
        dtype="int64",
    )


def per_currency(amounts: pd.Series, currencies: pd.Series) -> dict[str, tuple[int, int]]:
    """currency -> (count, sum) of integer amounts."""
    frame = pd.DataFrame({"a": amounts.astype("int64").to_numpy(), "c": currencies.astype(str)})
    grouped = frame.groupby("c")["a"].agg(["count", "sum"])
    return {str(c): (int(r["count"]), int(r["sum"])) for c, r in grouped.iterrows()}


def sums(amounts: pd.Series, currencies: pd.Series) -> dict[str, int]:
    """currency -> sum of integer amounts."""
    return {c: total for c, (_, total) in per_currency(amounts, currencies).items()}


def lines_of(world: World, source: str) -> pd.DataFrame:
    tx = world.transactions
    found = tx[tx["source"] == source].copy()
    found["minor"] = minor(found)
    return found


@pytest.fixture(scope="module")
def raw_world() -> World:
    return generate(CONFIG)


@pytest.fixture(scope="module")
def sandbox(raw_world: World) -> SandboxWorld:
    return SandboxWorld(raw_world, tenant=TENANT, bank_daily_limit=50)


@pytest.fixture(scope="module")
def server(sandbox: SandboxWorld) -> Iterator[RunningServer]:
    with run_in_thread(sandbox.build_app()) as running:
        yield running


@pytest.fixture(scope="module")
def window(sandbox: SandboxWorld) -> tuple[dt.date, dt.date]:
    """Every day of the served world; payouts are created up to two days ahead of today."""
    first = dt.date.fromisoformat(str(sandbox.world.transactions["booked_on"].min()))
    return first - dt.timedelta(days=1), TODAY + dt.timedelta(days=3)


# -- the world as of today ----------------------------------------------------------------------


def test_the_world_is_served_as_it_stands_today(raw_world: World, sandbox: SandboxWorld) -> None:
    assert (raw_world.transactions["booked_on"] > TODAY.isoformat()).any(), "runs past today"
    check_cut(raw_world, sandbox.world, TODAY)
    # a world with nothing after the day is served exactly as it is
    assert world_as_of(sandbox.world, TODAY) is sandbox.world
    # in the middle of the world, payouts already created arrive after the day: in transit
    middle = dt.date.fromisoformat(CONFIG.start) + dt.timedelta(days=60)
    in_transit = check_cut(raw_world, world_as_of(raw_world, middle), middle)
    assert in_transit > 0


def check_cut(raw: World, served: World, day: dt.date) -> int:
    """Assert `served` is `raw` as of `day`; returns how many payouts are still in transit."""
    cut, raw_tx = day.isoformat(), raw.transactions
    pd.testing.assert_frame_equal(
        served.transactions, raw_tx[raw_tx["booked_on"] <= cut].reset_index(drop=True)
    )
    # a payout is served once all it pays out is; one arriving later is still in transit
    kept = set(served.transactions["transaction_id"])
    lines = raw.payout_lines
    whole = lines.groupby("payout_id")["transaction_id"].agg(lambda ids: set(ids) <= kept)
    assert set(served.payouts["payout_id"]) == set(whole.index[whole.astype(bool)])
    late = served.payouts["arrival_on"] > cut
    assert (served.payouts.loc[late, "status"] == "in_transit").all()
    assert set(served.payout_lines["transaction_id"]) <= kept
    # a payment WHMCS records later is not recorded yet: its invoice is open again
    raw_rec = raw.recorded
    assert (served.recorded["recorded_on"] <= cut).all()
    later = raw_rec[raw_rec["recorded_on"] > cut]
    assert len(later) > 0
    invoices = served.invoices.set_index("invoice_id")
    before = raw.invoices.set_index("invoice_id")
    before = before[before["issued_on"] <= cut]
    later = later[later["invoice_id"].isin(before.index)]
    for row in later.to_dict("records"):
        invoice_id, currency = str(row["invoice_id"]), str(row["currency"])
        expected = to_minor(str(before.at[invoice_id, "balance"]), currency) + to_minor(
            str(row["amount"]), currency
        )
        assert to_minor(str(invoices.at[invoice_id, "balance"]), currency) == expected
        assert invoices.at[invoice_id, "status"] == "Unpaid"
    untouched = ~before.index.isin(later["invoice_id"])
    pd.testing.assert_frame_equal(invoices[untouched], before[untouched])
    truth = served.truth
    assert set(truth["transaction_id"]) <= kept
    assert not truth["confirms"][truth["invoice_id"].astype(str).isin(later["invoice_id"])].any()
    return int(late.sum())


# -- each provider reads the world back ---------------------------------------------------------


def test_whmcs_serves_the_worlds_invoices_and_recorded_payments(
    sandbox: SandboxWorld, server: RunningServer
) -> None:
    c = sandbox.credentials
    with WhmcsClient(server.url, c.whmcs_identifier, c.whmcs_secret, policy=policy()) as client:
        invoices = client.invoices_frame()
        recorded = client.recorded_frame(invoices)
    world = sandbox.world
    want = world.invoices.copy()
    want["invoice_id"] = want["invoice_id"].astype("int64")
    want["client_id"] = want["client_id"].astype("int64")
    want["total_minor"] = minor(want, "total")
    want["balance_minor"] = minor(want, "balance")
    got = invoices.set_index("invoice_id").sort_index()
    want = want.set_index("invoice_id").sort_index()[list(got.columns)]
    pd.testing.assert_frame_equal(got, want, check_dtype=False)

    opening = sandbox.whmcs.opening_payment_ids()
    assert opening, "invoices paid before the world began hold an opening payment"
    got_rec = recorded[~recorded["whmcs_txn_id"].isin(opening)].set_index("whmcs_txn_id")
    want_rec = world.recorded.copy()
    want_rec["whmcs_txn_id"] = want_rec["whmcs_txn_id"].astype("int64")
    want_rec["invoice_id"] = want_rec["invoice_id"].astype("int64")
    want_rec["amount_minor"] = minor(want_rec)
    want_rec["fees_minor"] = minor(want_rec, "fees")
    want_rec = want_rec.set_index("whmcs_txn_id").sort_index()[list(got_rec.columns)]
    pd.testing.assert_frame_equal(got_rec.sort_index(), want_rec, check_dtype=False)
    # the opening payments are exactly what the balances need, and no more
    openings = recorded[recorded["whmcs_txn_id"].isin(opening)]
    assert (openings["transid"].str.startswith("sandbox-opening-")).all()
    assert len(openings) == int((got["balance_minor"] < got["total_minor"]).sum()) - len(
        set(got_rec["invoice_id"])
    )


def test_the_bank_feed_serves_the_worlds_bank_lines(
    sandbox: SandboxWorld, server: RunningServer, window: tuple[dt.date, dt.date]
) -> None:
    bank = lines_of(sandbox.world, "bank")
    c = sandbox.credentials
    assert sandbox.account_ids == {account_uuid(i): i for i in set(bank["account_id"])}
    account = sandbox.bank.accounts[0]
    assert account.reference_style is ReferenceStyle.UNSTRUCTURED
    assert str(uuid.uuid5(uuid.NAMESPACE_URL, f"recon-sandbox/bank-account/{account.iban}")) == (
        account.account_id
    )
    rows = []
    with GoCardlessClient(
        server.url, c.gocardless_secret_id, c.gocardless_secret_key, policy=policy()
    ) as client:
        for acc in sandbox.bank.accounts:
            page = client.fetch_transactions(acc.account_id, (window[0], TODAY), noop)
            batch = bank_batch([StoredPage(1, page)], acc.account_id)
            assert batch.rejects == []
            frame = batch.rows.assign(world_account=sandbox.account_ids[acc.account_id])
            rows.append(frame)
    got = pd.concat(rows, ignore_index=True)
    assert per_currency(got["amount_minor"], got["currency"]) == per_currency(
        bank["minor"], bank["currency"]
    )
    assert got.groupby("world_account").size().to_dict() == (
        bank.groupby("account_id").size().to_dict()
    )
    pending = got[got["status"] == "pending"]
    assert 0 < len(pending) == len(sandbox.bank.pending) < len(got) // 10
    assert set(got["status"]) == {"booked", "pending"}
    # the first account's bank renders references as written (the feed strips the ends)
    mine = got[got["account_ref"] == account.account_id]
    want_refs = sorted(bank[bank["account_id"] == account.iban]["reference"].str.strip())
    assert sorted(mine["reference"].fillna("")) == want_refs


def test_pending_lines_book_under_another_id_and_keep_their_content_key(
    raw_world: World,
) -> None:
    sandbox = SandboxWorld(raw_world, tenant=TENANT, bank_daily_limit=50)
    c = sandbox.credentials
    acc = sandbox.bank.accounts[0].account_id
    days = (TODAY - dt.timedelta(days=30), TODAY)
    with (
        run_in_thread(sandbox.build_app()) as running,
        GoCardlessClient(
            running.url, c.gocardless_secret_id, c.gocardless_secret_key, policy=policy()
        ) as client,
    ):

        def read() -> tuple[dict[str, str], set[str], set[str | None]]:
            page = client.fetch_transactions(acc, days, noop)
            by_content, _ = parse_transactions(page.body, acc)
            by_id, _ = parse_transactions(page.body, acc, id_policy="transaction_id")
            return (
                {r.source_id: r.status for r in by_content},
                {r.source_id for r in by_id},
                {r.transaction_id for r in by_content if r.status == "pending"},
            )

        content_before, ids_before, pending_ids = read()
        assert pending_ids == {PENDING_PREFIX + t for t in sandbox.bank.pending}
        assert sandbox.book_pending() == len(sandbox.bank.pending) > 0
        content_after, ids_after, _ = read()
    assert content_after.keys() == content_before.keys()  # the content key survives booking
    assert set(content_after.values()) == {"booked"}
    changed = ids_before ^ ids_after  # trusting the ids would see new lines
    assert len(changed) == 2 * len(sandbox.bank.pending)


def test_stripe_serves_the_worlds_charges_fees_refunds_disputes_and_payouts(
    sandbox: SandboxWorld, server: RunningServer, window: tuple[dt.date, dt.date]
) -> None:
    world = sandbox.world
    stripe_lines = lines_of(world, "stripe")
    ids = stripe_lines["transaction_id"]
    charges = stripe_lines[ids.str.startswith("ch_") & ~ids.str.contains(":")]
    fees = stripe_lines[ids.str.endswith(":fee")]
    backs = stripe_lines[ids.str.startswith("txn_")]
    disputed = backs["reference"].str.contains("Dispute")
    assert disputed.any() and (~disputed).any(), "the test world needs refunds and disputes"
    with StripeClient(
        sandbox.credentials.stripe_secret_key, base_url=server.url, policy=policy()
    ) as client:
        pages = client.fetch_window(*window)
    batches = normalise([StoredPage(n, p) for n, p in enumerate(pages)], "acct")
    assert batches.transactions.rejects == [] and batches.payouts.rejects == []
    got = batches.transactions.rows
    got_charges = got[got["kind"] == "charge"]
    assert set(got_charges["charge_id"]) == set(charges["transaction_id"])
    assert per_currency(got_charges["amount_minor"], got_charges["currency"]) == per_currency(
        charges["minor"], charges["currency"]
    )
    assert per_currency(got_charges["fee_minor"], got_charges["currency"]) == per_currency(
        -fees["minor"], fees["currency"]
    )
    got_backs = got[got["kind"].isin(["refund", "dispute"])].copy()
    # rows are balance transactions (txn_...); the sandbox derives their ids from its objects'
    world_of = {balance_transaction_id(o): w for o, w in sandbox.world_ids.items()}
    got_backs["world_id"] = got_backs["source_id"].map(world_of)
    assert dict(zip(got_backs["world_id"], got_backs["amount_minor"], strict=True)) == dict(
        zip(backs["transaction_id"], backs["minor"], strict=True)
    )
    assert set(got_backs.loc[got_backs["kind"] == "dispute", "world_id"]) == set(
        backs.loc[disputed, "transaction_id"]
    )
    assert len(got) == len(charges) + len(backs)
    # payouts by id and declared amount: those whose breakdown is off stay off
    want_payouts = world.payouts[world.payouts["source"] == "stripe"]
    served = batches.payouts.rows
    assert dict(zip(served["payout_id"], served["amount_minor"], strict=True)) == {
        p: to_minor(a, c)
        for p, a, c in zip(
            want_payouts["payout_id"], want_payouts["amount"], want_payouts["currency"], strict=True
        )
    }
    net = (got["amount_minor"] - got["fee_minor"]).groupby(got["payout_id"]).sum()
    off = served[served["amount_minor"].to_numpy() != net.reindex(served["payout_id"]).to_numpy()]
    assert len(off) > 0, "payouts declared off are served off"
    lines = world.payout_lines.merge(stripe_lines, on="transaction_id")
    breakdown = lines.groupby("payout_id")["minor"].sum()
    declared = served.set_index("payout_id")["amount_minor"]
    assert set(off["payout_id"]) == set(breakdown.index[breakdown != declared[breakdown.index]])


def test_gocardless_payments_serves_what_its_sandbox_can_hold(
    sandbox: SandboxWorld, server: RunningServer, window: tuple[dt.date, dt.date]
) -> None:
    world = sandbox.world
    gc = lines_of(world, "gocardless")
    payments = gc[gc["transaction_id"].str.startswith("PM") & (gc["minor"] > 0)]
    fees = gc[gc["transaction_id"].str.endswith(":fee")]
    backs = gc[gc["transaction_id"].str.startswith("txn_")]
    assert len(backs) > 0, "the test world needs GoCardless refunds"
    omitted = sandbox.omitted
    assert set(omitted["transaction_id"]) >= set(backs["transaction_id"])
    assert (omitted["source"] == "gocardless").all()
    fees = fees[~fees["transaction_id"].isin(omitted["transaction_id"])]
    base = f"{server.url}/gocardless-payments"
    token = sandbox.credentials.gocardless_payments_access_token
    pages: list[Page] = []
    with GoCardlessPaymentsClient(base, token, policy=policy()) as client:
        client.fetch_window(window, pages.append)
    transactions, payouts, payout_lines = payments_batches(
        [StoredPage(n, p) for n, p in enumerate(pages)], sandbox.creditor_id
    )
    assert transactions.rejects == [] and payouts.rejects == []
    got = transactions.rows
    got_payments = got[got["kind"] == "payment"]
    assert per_currency(got_payments["amount_minor"], got_payments["currency"]) == per_currency(
        payments["minor"], payments["currency"]
    )
    assert set(got_payments["source_id"]) == set(payments["transaction_id"])
    got_fees = got[got["kind"] == "fee"]  # one per payout: its deducted fees
    assert len(got_fees) > 0
    assert sums(got_fees["amount_minor"], got_fees["currency"]) == sums(
        fees["minor"], fees["currency"]
    )
    # payouts by id and amount, except those the sandbox cannot hold as the world declares them
    gaps = sandbox.payout_gaps.set_index("payout_id")
    assert len(gaps) > 0
    declared = world.payouts[world.payouts["source"] == "gocardless"]
    want = {
        p: to_minor(a, c)
        for p, a, c in zip(
            declared["payout_id"], declared["amount"], declared["currency"], strict=True
        )
    }
    served = dict(zip(payouts.rows["payout_id"], payouts.rows["amount_minor"], strict=True))
    for payout_id, row in gaps.iterrows():
        assert want[str(payout_id)] == row["world_amount_minor"]
        if row["served_amount_minor"] is None:
            assert payout_id not in served
        else:
            assert served[str(payout_id)] == row["served_amount_minor"] != want[str(payout_id)]
    assert {p: a for p, a in served.items() if p not in gaps.index} == {
        p: a for p, a in want.items() if p not in gaps.index
    }
    # every served payout is its lines, exactly
    net = got.groupby("payout_id")["amount_minor"].sum()
    assert all(net[p] == a for p, a in served.items())
    assert len(payout_lines.rows) == len(got_payments) + len(got_fees)


# -- credentials and the Vault -------------------------------------------------------------------


def test_the_vault_holds_the_tenants_secrets_under_the_names_the_app_resolves(
    sandbox: SandboxWorld, server: RunningServer
) -> None:
    tenant = TenantSettings.model_validate(sandbox.tenant_settings(server.url))
    assert tenant.gocardless.account_ids == list(sandbox.account_ids)
    assert str(tenant.gocardless_payments.base_url).rstrip("/").endswith("/gocardless-payments")
    settings = Settings(
        vault_addr=server.url,
        vault_role_id=SecretStr(sandbox.credentials.vault_role_id),
        vault_secret_id=SecretStr(sandbox.credentials.vault_secret_id),
    )
    resolver = secret_resolver(settings)
    needed = required_for_tenant(tenant)
    document = sandbox.vault_document()
    assert {spec.name for spec in needed} == set(document)
    assert {spec.name: resolver.get(spec, TENANT) for spec in needed} == document
    assert resolver.check(needed, "someone-else") != []  # the secrets are the tenant's alone
    # fresh credentials every time, shaped like the providers' own
    other = SandboxCredentials.generate()
    assert other != sandbox.credentials
    assert document["stripe_secret_key"].startswith("sk_test_")
    assert document["stripe_webhook_secret"].startswith("whsec_")
    assert sandbox.credentials.stripe_secret_key not in repr(sandbox.credentials)


# -- faults ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("stripe", "at least PROVIDER:FAULT"),
        ("paypal:500", "unknown provider 'paypal'"),
        ("stripe:42", "not an error status"),
        ("stripe:explode", "unknown fault 'explode'"),
        ("stripe:429:rate=2", "rate must be between 0 and 1"),
        ("stripe:429:rate", "not of the form NAME=VALUE"),
        ("whmcs:timeout:keep=0.5", "option 'keep' does not apply"),
        ("stripe:500:action=GetInvoices", "action= only applies to whmcs"),
        ("whmcs:malform", "malform 'missing_amount' is available for"),
        ("all:expired-consent", "expired-consent only applies to gocardless"),
        ("gocardless:timeout:count=0", "count must be at least 1"),
    ],
)
def test_a_bad_fault_spec_is_one_sentence(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fault(spec)
    text = str(caught.value)
    assert message in text and "\n" not in text and spec in text


def test_fault_specs_land_on_the_providers_plans(raw_world: World) -> None:
    sandbox = SandboxWorld(raw_world, tenant=TENANT)
    described = [
        apply_fault(parse_fault(text), sandbox)
        for text in (
            "whmcs:503:action=GetCurrencies:count=1",
            "all:truncate:rate=0.05",
            "stripe:429:rate=0.1:retry-after=2",
            "all:malform",
            "gocardless:expired-consent",
        )
    ]
    assert len(described) == 5 and all(line for line in described)
    rules = {name: [r.kind.value for r in plan.rules()] for name, plan in sandbox.faults.items()}
    assert rules == {
        "whmcs": ["status", "truncate"],
        "stripe": ["truncate", "rate_limit", "malform"],
        "gocardless": ["truncate", "malform"],
        "gocardless_payments": ["truncate"],
    }
    sandbox.faults["stripe"].clear()
    sandbox.faults["gocardless"].clear()
    sandbox.faults["whmcs"].rules()[1].rate = 0.0
    c = sandbox.credentials
    with run_in_thread(sandbox.build_app()) as running:
        form = {
            "action": "GetCurrencies",
            "responsetype": "json",
            "identifier": c.whmcs_identifier,
            "secret": c.whmcs_secret,
        }
        api = f"{running.url}/includes/api.php"
        assert [httpx.post(api, data=form).status_code for _ in range(2)] == [503, 200]
        with (
            GoCardlessClient(
                running.url, c.gocardless_secret_id, c.gocardless_secret_key, policy=policy()
            ) as client,
            pytest.raises(ConsentExpiredError),
        ):
            client.fetch_transactions(sandbox.bank.accounts[0].account_id, (TODAY, TODAY), noop)


@pytest.fixture
def _cli_logging() -> Iterator[None]:
    """In-process `main()` points the root log handler at the captured stderr: drop it after."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_recon_handler", False):
            root.removeHandler(handler)


@pytest.mark.usefixtures("_cli_logging")
def test_a_port_in_use_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["sandbox", "serve", "--port", str(port)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"port {port} on 127.0.0.1 is already in use" in err
    assert len(err.splitlines()) == 1


# -- `recon sandbox serve` as a process -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env["RECON_DATA_DIR"] = str(tmp_path / "var")
    return subprocess.Popen(
        [sys.executable, "-m", "apps", "sandbox", "serve", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_signals_ready_answers_and_stops_cleanly(tmp_path: Path) -> None:
    """Started twice, stopped once by SIGTERM and once by SIGINT. Readiness is the banner, which
    is printed only once the server listens: the first request after it must be answered (no
    polling, no wall-clock budget; the startup time is a figure for bench/, not an assertion)."""
    for stop in (signal.SIGTERM, signal.SIGINT):
        _serve_and_stop(tmp_path / stop.name, stop)


def _serve_and_stop(tmp_path: Path, stop: signal.Signals) -> None:
    tmp_path.mkdir()
    port = _free_port()
    health = f"http://127.0.0.1:{port}/v1/sys/health"
    process = _spawn(tmp_path, "--port", str(port), "--fault", "stripe:429:rate=0.1")
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline()]  # blocks until ready (or "" if it died)
        while banner[-1] and not banner[-1].startswith("press Ctrl-C"):
            banner.append(process.stdout.readline())
        assert banner[0].startswith(f"sandbox serving on http://127.0.0.1:{port} "), (
            f"{banner=} {process.poll()=}"
        )
        assert httpx.get(health, timeout=30).status_code == 200  # answers once it says ready
        if stop is signal.SIGTERM:
            _check_credentials_file(tmp_path / "var" / "sandbox" / "credentials.json", port)
        process.send_signal(stop)
        rest, err = process.communicate(timeout=10)
        out = "".join(banner) + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stripe: HTTP 429 with Retry-After 1, on a share 0.1 of requests" in out
    assert out.rstrip().endswith("sandbox stopped")
    assert "Traceback" not in err
    with pytest.raises(httpx.TransportError):
        httpx.get(health, timeout=0.5)


def _check_credentials_file(path: Path, port: int) -> None:
    """Owner-only, and enough to reach the tenant's secrets through the Vault AppRole."""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document: dict[str, Any] = json.loads(path.read_text())
    url = f"http://127.0.0.1:{port}"
    assert document["base_url"] == url and document["tenant"] == "demo"
    tenant = TenantSettings.model_validate(document["tenant_settings"])
    vault = document["vault"]
    settings = Settings(
        vault_addr=vault["addr"],
        vault_role_id=SecretStr(vault["role_id"]),
        vault_secret_id=SecretStr(vault["secret_id"]),
    )
    resolved = {
        spec.name: secret_resolver(settings).get(spec, "demo")
        for spec in required_for_tenant(tenant)
    }
    assert resolved == document["secrets"]
    form = {
        "action": "GetCurrencies",
        "responsetype": "json",
        "identifier": resolved["whmcs_api_identifier"],
        "secret": resolved["whmcs_api_secret"],
    }
    assert httpx.post(f"{url}/includes/api.php", data=form).json()["result"] == "success"


def test_a_bad_fault_spec_exits_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    process = _spawn(tmp_path, "--port", str(_free_port()), "--fault", "stripe:42")
    out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert len(err.strip().splitlines()) == 1, err
    assert "fault spec 'stripe:42' is not valid" in err and "Traceback" not in err
    assert out == ""
