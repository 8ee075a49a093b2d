"""Every rule the engine can emit, against the one definition of what is written back to WHMCS.

`WRITE_BACK` says, for each rule, whether an automatic allocation by it is new money (True) or
only confirms a payment WHMCS already records (False). The rule names come from the engine
(`recon.matching.apply.engine_rules`), so a new rule without a decision here fails the first
test. Then the definition, the engine's `applied` and `recon apply` (planning and the calls it
makes to the sandbox WHMCS, on SQLite and PostgreSQL) must all agree with it. A person's
allocation (decision `manual`) is written back by the same rule as an automatic one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from connectors.sandbox.synth import SynthConfig, generate
from connectors.sandbox.whmcs import WhmcsState
from connectors.whmcs import WhmcsClient
from recon.canonical import transaction_ref
from recon.db.models import Allocation, AppliedPayment, Transaction
from recon.db.tenancy import admin_session, tenant_session
from recon.matching import MatchConfig, match
from recon.matching.apply import applied, engine_rules
from recon.matching.validate import inputs_from_frames
from recon.money import minor_exponent, to_minor
from recon.tenants import TenantSettings, add_tenant
from recon.writeback import may_write_back
from tasks.apply import apply_locked, plan_payments

TENANT = "acme"

WRITE_BACK: dict[str, bool] = {
    # Matching rules: money that arrived and that WHMCS does not record yet.
    "ref_amount_payer": True,
    "ref_multi_payer": True,
    "ref_fee_payer": True,
    "ref_multi": True,
    "ref_subset_sum": True,
    "ref_typo_payer": True,
    "ref_cut_payer": True,
    "ref_amount": True,
    "ref_partial_payer": True,
    "ref_over_payer": True,
    "ref_amount_bare": True,
    "name_amount": True,
    "name_amount_initials": True,
    "name_amount_single": True,
    "name_amount_overdue": True,
    "name_subset_sum": True,
    "name_subset_single": True,
    "ref_fee": True,
    "name_amount_shared": True,
    "ref_cut_amount": True,
    "ref_amount_conflict": True,
    "ref_partial": True,
    "ref_over": True,
    "ref_amount_late": True,
    "typo_amount": True,
    "ref_fee_bare": True,
    "subset_sum_weak": True,
    "subset_sum_many": True,
    "name_fee": True,
    "ref_bare_payer": True,
    "name_part_or_more": True,
    # Confirmations: WHMCS records the payment already (by transid, or entered without one).
    "recorded_transid": False,
    "recorded_reference": False,
    "recorded_payer": False,
}
DECISIONS = ("auto", "review", "manual")


def test_every_rule_the_engine_can_emit_has_a_write_back_decision() -> None:
    assert sorted(engine_rules()) == sorted(WRITE_BACK)


@pytest.mark.parametrize("rule", engine_rules())
def test_the_definition_writes_back_only_new_money_decided_by_the_engine_or_a_person(
    rule: str,
) -> None:
    for decision in DECISIONS:
        wanted = decision in ("auto", "manual") and WRITE_BACK[rule]
        assert may_write_back(rule, decision) is wanted


def test_the_engine_emits_only_known_rules_and_applies_by_the_definition() -> None:
    world = generate(SynthConfig(n_invoices=3000, seed=3))
    result = match(
        inputs_from_frames(
            world.invoices, world.transactions, world.recorded, world.payouts, world.payout_lines
        ),
        MatchConfig(),
    )
    a = result.allocations
    emitted = set(a["rule"])
    assert emitted <= set(engine_rules())
    assert any(not WRITE_BACK[r] for r in emitted) and any(WRITE_BACK[r] for r in emitted)
    expected = a[[may_write_back(r, d) for r, d in zip(a["rule"], a["decision"], strict=True)]]
    assert applied(result).equals(expected.reset_index(drop=True))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        app: Engine = request.getfixturevalue("sqlite_engine")
        owner = app
    else:
        owner = request.getfixturevalue("pg_owner_engine")
        app = request.getfixturevalue("pg_app_engine")
    with admin_session(owner) as session:
        add_tenant(session, TENANT, "Acme", TenantSettings(auto_apply=True), actor="test")
    yield app


def _open_invoices(state: WhmcsState) -> list[tuple[int, int, str]]:
    """(invoice, open balance in minor units, currency) of the seed's open invoices."""
    tables = state.tables()
    clients = {c["id"]: c for c in tables["tblclients"]}
    currencies = {c["id"]: c["code"] for c in tables["tblcurrencies"]}
    found = []
    for invoice in tables["tblinvoices"]:
        code = currencies[clients[invoice["userid"]]["currency"]]
        balance = to_minor(state.balance(int(invoice["id"])), code)
        if invoice["status"] == "Unpaid" and balance > 0 and minor_exponent(code) <= 2:
            found.append((int(invoice["id"]), balance, code))
    return found


def test_recon_apply_sends_exactly_the_rules_that_write_back(
    engine: Engine, whmcs_state: WhmcsState, whmcs_client: WhmcsClient
) -> None:
    rules = engine_rules()
    invoices = _open_invoices(whmcs_state)
    assert len(invoices) >= len(rules)
    placed: dict[str, tuple[int, int, str]] = {}
    with tenant_session(engine, TENANT) as session:
        for n, (rule, (invoice_id, balance, currency)) in enumerate(
            zip(rules, invoices, strict=False)
        ):
            source_id = f"bank-{n}"
            placed[rule] = (invoice_id, balance, source_id)
            session.add(
                Transaction(
                    tenant_id=TENANT, source="bank", account_ref="acc-1", source_id=source_id,
                    booked_on=dt.date(2025, 3, 20), amount_minor=balance, currency=currency,
                    reference=f"INV {invoice_id}",
                )
            )  # fmt: skip
            session.add(
                Allocation(
                    tenant_id=TENANT, allocation_key=f"k-{n}",
                    transaction_ref=transaction_ref("bank", "acc-1", source_id),
                    invoice_id=str(invoice_id), amount_minor=balance, currency=currency,
                    rule=rule, confidence=90, decision="auto",
                )
            )  # fmt: skip
    with tenant_session(engine, TENANT) as session:
        planned = {p.transid for p in plan_payments(session, "banktransfer")}
    assert planned == {placed[r][2] for r in rules if WRITE_BACK[r]}
    report = apply_locked(engine, TENANT, whmcs_client, actor="test")
    assert (report.applied, report.already_in_whmcs, report.failed) == (len(planned), 0, [])
    for rule, (invoice_id, _, source_id) in placed.items():
        sent = whmcs_state.payments(invoice_id, source_id)
        assert len(sent) == (1 if WRITE_BACK[rule] else 0), rule
    with tenant_session(engine, TENANT) as session:
        assert set(session.scalars(select(AppliedPayment.transid))) == planned
