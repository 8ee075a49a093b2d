"""Seeds, expected canonical frames, fast policies and fixtures for the Stripe tests.

Import the fixtures you use into the test module (`from tests.integration.stripe_fixtures import
stripe_server, ...`); pytest then finds them there. The expected frames are computed from the seed
frames here, independently of the connector and the normaliser.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from connectors.http import HttpPolicy
from connectors.sandbox.app import RouteGroup, compose
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.stripe import StripeState, balance_transaction_id, payment_intent_id
from connectors.sandbox.stripe import routes as stripe_routes
from connectors.sandbox.vault import VaultState
from connectors.sandbox.vault import routes as vault_routes
from connectors.stripe import StripeClient
from recon.db.tenancy import admin_session
from recon.tenants import TenantSettings, add_tenant
from tests.tls import write_self_signed_cert

CANARY = uuid.uuid4().hex
API_KEY = f"sk_test_CANARY{CANARY}"
WRONG_KEY = f"sk_test_WRONG{CANARY}"
TENANT = "acme"
ACCOUNT = "acct_sandbox"
WINDOW = (date(2026, 10, 1), date(2026, 10, 31))

_CUSTOMERS = ["Ada Lovelace", "Zoë Müller", "Grace Hopper", "Søren Kierkegaard", "山田 太郎"]
_CURRENCIES = {"EUR": (500, 90_000, 1500), "USD": (500, 120_000, 1500), "JPY": (500, 40_000, 2000)}


def _at(day: date, seconds: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


@dataclass
class World:
    """The seed frames of one Stripe account."""

    charges: pd.DataFrame
    refunds: pd.DataFrame
    disputes: pd.DataFrame
    payouts: pd.DataFrame

    def state(self, **kwargs: Any) -> StripeState:
        """A sandbox state serving this world with the test key."""
        return StripeState(
            self.charges, self.refunds, self.disputes, self.payouts, api_key=API_KEY, **kwargs
        )


def make_world(seed: int = 11, n_charges: int = 60) -> World:
    """A deterministic account: charges in EUR, USD and JPY from late September to early
    November, refunds, disputes (two won in October: a withdrawal and a reversal each, so their
    charges have three balance transactions), payouts every four days per currency (one arriving
    short); charges of late September are paid out by October's payouts."""
    rng = random.Random(seed)
    start = date(2026, 9, 24)
    charges: list[dict[str, Any]] = []
    for n in range(n_charges):
        currency = rng.choice(sorted(_CURRENCIES))
        low, high, _ = _CURRENCIES[currency]
        amount = rng.randrange(low, high)
        invoice = 4000 + n
        style = n % 4
        description = {
            0: f"Invoice #{invoice}",
            1: "Hosting renewal",
            2: f"Invoice #{invoice}",
            3: None,
        }[style]
        charges.append(
            {
                "charge_id": f"ch_{seed}{n:04d}",
                "created": _at(start + timedelta(days=rng.randrange(40)), rng.randrange(86400)),
                "amount_minor": amount,
                "currency": currency.lower() if n % 2 else currency,
                "fee_minor": 0 if currency == "JPY" and n % 3 == 0 else 25 + amount * 29 // 1000,
                "description": description,
                "invoice_id": None if style == 3 else str(invoice),
                "customer_name": rng.choice(_CUSTOMERS),
            }
        )
    by_id = {c["charge_id"]: c for c in charges}
    refunds = []
    for n, charged in enumerate(rng.sample(charges, 8)):
        refunds.append(
            {
                "refund_id": f"re_{seed}{n:04d}",
                "charge_id": charged["charge_id"],
                "created": charged["created"] + timedelta(days=rng.randrange(1, 6)),
                "amount_minor": charged["amount_minor"] // (1 if n % 2 else 2),
                "currency": charged["currency"],
            }
        )
    disputed = [c for c in charges if c["charge_id"] not in {r["charge_id"] for r in refunds}]
    disputes = []
    for n, charged in enumerate(rng.sample(disputed, 4)):
        disputes.append(
            {
                "dispute_id": f"dp_{seed}{n:04d}",
                "charge_id": charged["charge_id"],
                "created": charged["created"] + timedelta(days=rng.randrange(2, 9)),
                "amount_minor": charged["amount_minor"],
                "currency": charged["currency"],
                "fee_minor": _CURRENCIES[charged["currency"].upper()][2],
                "status": rng.choice(["needs_response", "under_review", "lost"]),
            }
        )
    taken = {r["charge_id"] for r in refunds} | {d["charge_id"] for d in disputes}
    october = sorted(
        (c for c in charges if c["charge_id"] not in taken),
        key=lambda c: (c["created"], c["charge_id"]),
    )
    october = [c for c in october if date(2026, 10, 2) <= _day(c["created"]) <= date(2026, 10, 15)]
    for n, charged in enumerate(october[:2]):
        opened = charged["created"] + timedelta(days=2, hours=n)
        disputes.append(
            {
                "dispute_id": f"dp_{seed}won{n}",
                "charge_id": charged["charge_id"],
                "created": opened,
                "amount_minor": charged["amount_minor"],
                "currency": charged["currency"],
                "fee_minor": _CURRENCIES[charged["currency"].upper()][2],
                "status": "won",
                "reversed_at": opened + timedelta(days=5),
            }
        )
    payouts = _assign_payouts(charges, refunds, disputes)
    assert len(by_id) == len(charges)
    return World(
        pd.DataFrame(charges),
        pd.DataFrame(refunds),
        pd.DataFrame(disputes),
        pd.DataFrame(payouts),
    )


def _assign_payouts(
    charges: list[dict[str, Any]], refunds: list[dict[str, Any]], disputes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Payouts every four days per currency; each item goes to the first payout two days after
    it. The first EUR payout in October arrives short by 100 minor units."""
    payouts: list[dict[str, Any]] = []
    reversals = [
        {"reversal_of": d, "created": d["reversed_at"], "currency": d["currency"]}
        for d in disputes
        if d["status"] == "won"
    ]
    items = charges + refunds + disputes + reversals
    for currency in sorted(_CURRENCIES):
        mine = [i for i in items if i["currency"].upper() == currency]
        day = date(2026, 9, 26)
        short = currency == "EUR"
        while day <= date(2026, 11, 2):
            created = _at(day, 6 * 3600)
            members = [
                i
                for i in mine
                if i.get("payout_id") is None and i["created"] + timedelta(days=2) <= created
            ]
            if members:
                payout_id = f"po_{currency.lower()}{day:%m%d}"
                for item in members:
                    item["payout_id"] = payout_id
                net = sum(_net(i) for i in members)
                explicit = None
                if short and day >= date(2026, 10, 1):
                    explicit, short = net - 100, False
                payouts.append(
                    {
                        "payout_id": payout_id,
                        "created": created,
                        "arrival_on": day + timedelta(days=2),
                        "currency": currency,
                        "status": "paid" if day < date(2026, 10, 28) else "in_transit",
                        "amount_minor": explicit,
                    }
                )
            day += timedelta(days=4)
    for reversal in reversals:
        reversal["reversal_of"]["reversal_payout_id"] = reversal.get("payout_id")
    return payouts


def _net(item: dict[str, Any]) -> int:
    if "reversal_of" in item:
        return int(item["reversal_of"]["amount_minor"])
    if "refund_id" in item:
        return -int(item["amount_minor"])
    if "dispute_id" in item:
        return -int(item["amount_minor"]) - int(item["fee_minor"])
    return int(item["amount_minor"]) - int(item["fee_minor"])


# -- what the window should load, computed from the seed -----------------------------------------


def _day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _reference(charged: Mapping[Any, Any]) -> str | None:
    description, invoice = _text(charged["description"]), _text(charged["invoice_id"])
    parts = [description] if description else []
    if invoice and not (description and invoice in description):
        parts.append(f"invoice {invoice}")
    return " | ".join(parts) or None


def _items(world: World) -> list[dict[str, Any]]:
    """Every balance transaction the seed makes, other than payouts' own, as the sandbox derives
    it: (txn id, kind, the object it comes from, its charge, created, payout, amount, fee)."""
    charges = {c["charge_id"]: c for c in world.charges.to_dict("records")}
    items: list[dict[str, Any]] = []
    for kind, frame, key in (
        ("charge", world.charges, "charge_id"),
        ("refund", world.refunds, "refund_id"),
        ("dispute", world.disputes, "dispute_id"),
    ):
        for item in frame.to_dict("records"):
            amount = int(item["amount_minor"])
            common = {
                "kind": kind,
                "charge": charges[item["charge_id"]],
                "currency": item["currency"],
            }
            items.append(
                {
                    **common,
                    "txn": balance_transaction_id(item[key]),
                    "created": item["created"],
                    "payout_id": _text(item.get("payout_id")),
                    "amount_minor": amount if kind == "charge" else -amount,
                    "fee_minor": int(item["fee_minor"]) if kind != "refund" else 0,
                }
            )
            if kind == "dispute" and item["status"] == "won":
                items.append(
                    {
                        **common,
                        "txn": balance_transaction_id(item[key], reversal=True),
                        "created": item["reversed_at"],
                        "payout_id": _text(item.get("reversal_payout_id")),
                        "amount_minor": amount,
                        "fee_minor": 0,
                    }
                )
    return items


def expected(world: World, window: tuple[date, date] = WINDOW) -> dict[str, pd.DataFrame]:
    """The TRANSACTIONS, PAYOUTS and PAYOUT_LINES rows a window should load on its own: the
    balance transactions created in it, the payouts created in it, and every line of those."""
    start, end = window
    payouts = world.payouts.to_dict("records")
    in_window = {p["payout_id"] for p in payouts if start <= _day(p["created"]) <= end}
    items = _items(world)
    now = max(
        [i["created"] for i in items] + [p["created"] for p in payouts]  # the sandbox's clock
    )
    rows = []
    for item in items:
        if not start <= _day(item["created"]) <= end:
            continue
        charged, paid = item["charge"], item["payout_id"]
        available = _at(_day(item["created"]) + timedelta(days=2), 0)
        rows.append(
            {
                "source_id": item["txn"],
                "kind": item["kind"],
                # funds not yet available and not paid out are pending at the seed's 'now'
                "status": "pending" if paid is None and available > now else "booked",
                "booked_on": _day(item["created"]),
                "value_on": available.date(),
                "amount_minor": item["amount_minor"],
                "fee_minor": item["fee_minor"],
                "currency": str(item["currency"]).upper(),
                "counterparty": charged["customer_name"],
                "reference": _reference(charged),
                # a payout created after the window is not known to it yet
                "payout_id": paid if paid in in_window else None,
                "charge_id": charged["charge_id"],
                "payment_intent": payment_intent_id(charged["charge_id"]),
            }
        )
    transactions = pd.DataFrame(rows).sort_values("source_id").reset_index(drop=True)
    nets = pd.DataFrame(
        [{"payout_id": i["payout_id"], "net": i["amount_minor"] - i["fee_minor"]} for i in items]
    )
    net_of = nets.groupby("payout_id")["net"].sum()
    payout_rows = [
        {
            "payout_id": p["payout_id"],
            "arrival_on": p["arrival_on"],
            "amount_minor": (
                int(net_of[p["payout_id"]])
                if pd.isna(p["amount_minor"])
                else int(p["amount_minor"])
            ),
            "currency": p["currency"],
            "status": p["status"],
        }
        for p in payouts
        if p["payout_id"] in in_window
    ]
    lines = [
        {"payout_id": i["payout_id"], "transaction_id": i["txn"]}
        for i in items
        if i["payout_id"] in in_window
    ]
    return {
        "transactions": transactions,
        "payouts": pd.DataFrame(payout_rows).sort_values("payout_id").reset_index(drop=True),
        "payout_lines": pd.DataFrame(lines)
        .sort_values(["payout_id", "transaction_id"])
        .reset_index(drop=True),
    }


# -- policies ----------------------------------------------------------------------------------------


@dataclass
class RecordingSleep:
    """A `sleep` that records the delays asked for and returns at once."""

    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def fast_policy(sleep: RecordingSleep, **overrides: Any) -> HttpPolicy:
    """Short timeouts, a recording sleep, seeded jitter."""
    settings: dict[str, Any] = {
        "connect_timeout": 2.0,
        "read_timeout": 1.0,
        "max_attempts": 4,
        "backoff_base": 0.1,
        "backoff_cap": 2.0,
        "retry_budget": 30.0,
        "sleep": sleep,
        "random": random.Random(3).random,
    }
    settings.update(overrides)
    return HttpPolicy(**settings)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def world() -> World:
    """The default seeded account (frames are never mutated by the sandbox)."""
    return make_world()


@pytest.fixture
def stripe_state(world: World) -> StripeState:
    """A fresh sandbox account over `world`."""
    return world.state()


@pytest.fixture
def stripe_server(stripe_state: StripeState) -> Iterator[RunningServer]:
    """Stripe next to Vault in one sandbox app (their `/v1/...` routes must not collide)."""
    app = compose(
        [
            RouteGroup("vault", vault_routes(VaultState())),
            RouteGroup("stripe", stripe_routes(stripe_state)),
        ]
    )
    with run_in_thread(app) as server:
        yield server


@pytest.fixture
def sleep() -> RecordingSleep:
    """The recording sleep of the test's policy."""
    return RecordingSleep()


def make_client(
    server: RunningServer, sleep: RecordingSleep, *, key: str = API_KEY, **kwargs: Any
) -> StripeClient:
    """A client on the sandbox; `page_size` and policy overrides as keyword arguments."""
    page_size = kwargs.pop("page_size", 7)
    return StripeClient(
        key, base_url=server.url, policy=fast_policy(sleep, **kwargs), page_size=page_size
    )


@pytest.fixture
def stripe_client(stripe_server: RunningServer, sleep: RecordingSleep) -> Iterator[StripeClient]:
    """A client with pages of 7 records, so every list spans several pages."""
    with make_client(stripe_server, sleep) as client:
        yield client


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database with tenant `acme`, as the application connects to it."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    yield app


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM paths), trusted by nobody."""
    return write_self_signed_cert(tmp_path_factory.mktemp("stripe-tls"), "stripe sandbox")


@pytest.fixture
def sqlite_tenant(sqlite_engine: Engine) -> Engine:
    """SQLite only, with tenant `acme` (for tests whose subject is not the database)."""
    with admin_session(sqlite_engine) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    return sqlite_engine
