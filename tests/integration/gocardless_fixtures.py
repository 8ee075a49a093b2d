"""Seeds, clocks, servers and a database for the GoCardless (Bank Account Data and Payments) tests.

Import the fixtures you use into the test module; pytest then finds them there.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from connectors.gocardless import GoCardlessClient
from connectors.gocardless_payments import GoCardlessPaymentsClient
from connectors.sandbox.app import RouteGroup, compose
from connectors.sandbox.faults import FaultPlan
from connectors.sandbox.gocardless import GoCardlessState, ReferenceStyle, SandboxAccount
from connectors.sandbox.gocardless import routes as bad_routes
from connectors.sandbox.gocardless_payments import PREFIX, GoCardlessPaymentsState
from connectors.sandbox.gocardless_payments import routes as payments_routes
from connectors.sandbox.serve import RunningServer, run_in_thread
from recon.db.tenancy import admin_session
from recon.money import to_minor
from recon.tenants import TenantSettings, add_tenant
from tests.integration.whmcs_fixtures import RecordingSleep, fast_policy

CANARY = f"CANARY-{uuid.uuid4()}"
SECRET_ID = f"{CANARY}-secret-id"
SECRET_KEY = f"{CANARY}-secret-key"
PAYMENTS_TOKEN = f"{CANARY}-payments-token"
CREDITOR = "CR000SANDBOX01"
TENANT = "acme"
START = dt.datetime(2026, 11, 5, 12, 0, tzinfo=dt.UTC)
WINDOW = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))


class FakeClock:
    """An aware UTC clock that only moves when told to."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move forward by a `timedelta(**delta)`."""
        self.now += dt.timedelta(**delta)


# -- Bank Account Data seed ------------------------------------------------------------------------

# (style, institution, IBAN country, currency, bank sends transaction ids, pending-id style)
_BANKS: list[tuple[ReferenceStyle, str, str, str, bool, str]] = [
    (ReferenceStyle.UNSTRUCTURED, "SANDBOXFINANCE_SFIN0000", "GB", "GBP", True, "same"),
    (ReferenceStyle.UNSTRUCTURED_ARRAY, "REVOLUT_REVOLT21", "LT", "EUR", True, "none"),
    (ReferenceStyle.STRUCTURED, "N26_NTSBDEB1", "DE", "EUR", True, "none"),
    (ReferenceStyle.STRUCTURED_OBJECT, "DEUTSCHEBANK_DEUTDEFF", "DE", "EUR", True, "none"),
    (ReferenceStyle.STRUCTURED_ARRAY, "ING_INGBNL2A", "NL", "EUR", True, "none"),
    (ReferenceStyle.ADDITIONAL_INFORMATION, "BNPPARIBAS_BNPAFRPP", "FR", "EUR", True, "none"),
    (ReferenceStyle.ENTRY_REFERENCE, "MONZO_MONZGB2L", "GB", "GBP", True, "none"),
    (ReferenceStyle.END_TO_END_ID, "SEB_ESSESESS", "SE", "SEK", True, "none"),
    (ReferenceStyle.FINNISH, "NORDEA_NDEAFIHH", "FI", "EUR", True, "none"),
    (ReferenceStyle.ABN_AMRO, "ABNAMRO_ABNANL2A", "NL", "EUR", False, "none"),
    (ReferenceStyle.SPARKASSE, "BERLINERSPARKASSE_BELADEBEXXX", "DE", "EUR", True, "none"),
    (ReferenceStyle.UNSTRUCTURED, "NATIONWIDE_NAIAGB21", "GB", "GBP", True, "different"),
]
_PAYERS = [
    "Ada Lovelace",
    "Analytical Engines Ltd",
    "Grace Hopper",
    "Bletchley Hosting",
    "Hedy Lamarr",
    "Spread Spectrum GmbH",
    "Margaret Hamilton",
]
_SUPPLIERS = ["Hetzner Online GmbH", "OVH SAS", "Payroll", "HMRC"]
_REFERENCES = [
    "INV-2026-{n:04d}",
    "Invoice {n} thank you",
    "Rechnung {n} Kd 4711",
    "payment for #{n} (client 88)",
    "{n}",
]


def account_id(n: int) -> str:
    """The deterministic UUID of seeded account `n`."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gocardless-sandbox/account/{n}"))


def make_bank_seed(seed: int = 5, lines: int = 9) -> tuple[list[SandboxAccount], pd.DataFrame]:
    """One account per reference style (and a Nationwide-style one), `lines` October lines each,
    of which two are still pending, plus two indistinguishable lines on one account."""
    rng = random.Random(seed)
    accounts: list[SandboxAccount] = []
    rows: list[dict[str, Any]] = []
    for n, (style, institution, country, currency, ids, pending_style) in enumerate(_BANKS):
        acc = account_id(n)
        accounts.append(
            SandboxAccount(
                account_id=acc,
                iban=f"{country}00SANDBOX{n:010d}",
                currency=currency,
                institution_id=institution,
                owner_name="Acme Hosting Ltd",
                reference_style=style,
                transaction_ids=ids,
            )
        )
        for k in range(lines):
            credit = k % 4 != 3
            cents = rng.randrange(500, 250_000)
            amount = ("" if credit else "-") + f"{cents // 100}.{cents % 100:02d}"
            reference = rng.choice(_REFERENCES).format(n=1000 + rng.randrange(9000))
            if k == 5:
                reference = ""  # no reference at all
            pending = k >= lines - 2
            tid = f"T{n:02d}{k:03d}{rng.randrange(10**6):06d}"
            pending_id = {"same": tid, "different": f"P{tid}", "none": None}[pending_style]
            rows.append(
                {
                    "transaction_id": tid,
                    "account_id": acc,
                    "booked_on": dt.date(2026, 10, 1 + rng.randrange(30)),
                    "amount": amount,
                    "currency": currency,
                    "counterparty": rng.choice(_PAYERS if credit else _SUPPLIERS),
                    "reference": reference,
                    "status": "pending" if pending else "booked",
                    "pending_id": pending_id if pending else None,
                }
            )
    twin = {
        "account_id": account_id(2),
        "booked_on": dt.date(2026, 10, 20),
        "amount": "49.00",
        "currency": "EUR",
        "counterparty": "Grace Hopper",
        "reference": "INV-2026-0042",
        "status": "booked",
        "pending_id": None,
    }
    rows += [{**twin, "transaction_id": "TWIN-1"}, {**twin, "transaction_id": "TWIN-2"}]
    return accounts, pd.DataFrame(rows)


def expected_bank_rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """What the canonical table should hold for a seed, independently of the connector."""
    return sorted(
        (
            str(r["account_id"]),
            r["booked_on"],
            to_minor(str(r["amount"]), str(r["currency"])),
            str(r["currency"]),
            str(r["counterparty"]),
            str(r["status"]),
        )
        for r in frame.to_dict("records")
    )


def sums_by_currency(rows: list[tuple[Any, ...]]) -> dict[str, tuple[int, int]]:
    """(count, sum) per currency of `(account, day, amount_minor, currency, ...)` tuples."""
    totals: dict[str, tuple[int, int]] = {}
    for row in rows:
        count, total = totals.get(row[3], (0, 0))
        totals[row[3]] = (count + 1, total + row[2])
    return totals


# -- Payments seed ---------------------------------------------------------------------------------


def make_payments_seed(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """October payouts (GBP and EUR) with their payments, unpaid-out payments, and one payout
    from April that GoCardless no longer itemises."""
    rng = random.Random(seed)
    payments: list[dict[str, Any]] = []
    payouts: list[dict[str, Any]] = []
    number = 0

    def payment(charge: dt.date, currency: str, status: str, payout: str | None) -> int:
        nonlocal number
        number += 1
        amount = rng.randrange(1_000, 90_000)
        payments.append(
            {
                "payment_id": f"PM{number:010d}",
                "created_at": dt.datetime.combine(
                    charge - dt.timedelta(days=4), dt.time(10, number % 60), dt.UTC
                ),
                "charge_date": charge,
                "amount_minor": amount,
                "currency": currency,
                "description": f"Invoice #{2000 + number}",
                "reference": f"WHMCS-{2000 + number}" if number % 3 else "",
                "status": status,
                "payout_id": payout,
                "customer_name": rng.choice(_PAYERS),
            }
        )
        return amount

    plan = [
        ("PO0000000001", dt.date(2026, 10, 6), "GBP", 6),
        ("PO0000000002", dt.date(2026, 10, 13), "EUR", 5),
        ("PO0000000003", dt.date(2026, 10, 20), "GBP", 7),
        ("PO0000000004", dt.date(2026, 10, 27), "GBP", 0),
        ("PO0000000009", dt.date(2026, 4, 21), "GBP", 3),
    ]
    for payout_id, arrival, currency, count in plan:
        total = sum(
            payment(arrival - dt.timedelta(days=2 + k % 3), currency, "paid_out", payout_id)
            for k in range(count)
        )
        fees = 0 if count == 0 else 20 * count + 15
        payouts.append(
            {
                "payout_id": payout_id,
                "arrival_date": arrival,
                "amount_minor": total - fees,
                "deducted_fees": fees,
                "currency": currency,
                "status": "paid",
            }
        )
    for k, status in enumerate(
        ["pending_submission", "submitted", "confirmed", "failed", "customer_approval_denied"] * 3
    ):
        payment(dt.date(2026, 10, 2 + k), "GBP" if k % 2 else "EUR", status, None)
    return pd.DataFrame(payments), pd.DataFrame(payouts)


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    """The shared clock of the sandboxes and the clients."""
    return FakeClock()


@pytest.fixture
def sleep() -> RecordingSleep:
    """A recording sleep for the clients' policies."""
    return RecordingSleep()


@pytest.fixture
def bank_seed() -> tuple[list[SandboxAccount], pd.DataFrame]:
    """The default Bank Account Data seed."""
    return make_bank_seed()


@pytest.fixture
def bad_state(
    bank_seed: tuple[list[SandboxAccount], pd.DataFrame], clock: FakeClock
) -> GoCardlessState:
    """A fake Bank Account Data on the shared clock."""
    accounts, frame = bank_seed
    return GoCardlessState(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        accounts=accounts,
        transactions=frame,
        faults=FaultPlan(seed=1),
        clock=clock,
    )


@pytest.fixture
def payments_state(clock: FakeClock) -> GoCardlessPaymentsState:
    """A fake GoCardless Payments on the shared clock."""
    payments, payouts = make_payments_seed()
    return GoCardlessPaymentsState(
        payments,
        payouts,
        access_token=PAYMENTS_TOKEN,
        creditor_id=CREDITOR,
        faults=FaultPlan(seed=2),
        clock=clock,
    )


@pytest.fixture
def gc_server(
    bad_state: GoCardlessState, payments_state: GoCardlessPaymentsState
) -> Iterator[RunningServer]:
    """Both fake GoCardless APIs on one real HTTP server."""
    app = compose(
        [
            RouteGroup("gocardless", bad_routes(bad_state)),
            RouteGroup("gocardless_payments", payments_routes(payments_state)),
        ]
    )
    with run_in_thread(app) as server:
        yield server


@pytest.fixture
def bad_client(
    gc_server: RunningServer, sleep: RecordingSleep, clock: FakeClock
) -> Iterator[GoCardlessClient]:
    """A Bank Account Data client (no quota guard) with a fast policy."""
    with GoCardlessClient(
        gc_server.url, SECRET_ID, SECRET_KEY, policy=fast_policy(sleep), clock=clock
    ) as client:
        yield client


@pytest.fixture
def payments_client(
    gc_server: RunningServer, sleep: RecordingSleep
) -> Iterator[GoCardlessPaymentsClient]:
    """A Payments client with a fast policy and small pages (to exercise cursors)."""
    with GoCardlessPaymentsClient(
        gc_server.url + PREFIX, PAYMENTS_TOKEN, policy=fast_policy(sleep), page_size=7
    ) as client:
        yield client


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated database with tenant `acme`, as the application connects to it."""
    if request.param == "sqlite":
        owner = app = request.getfixturevalue("sqlite_engine")
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(), actor="test")
    yield app


__all__ = [
    "RecordingSleep",
    "bad_client",
    "bad_state",
    "bank_seed",
    "clock",
    "db",
    "fast_policy",
    "gc_server",
    "payments_client",
    "payments_state",
    "sleep",
]
