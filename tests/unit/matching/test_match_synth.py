"""The synthetic world: deterministic, in the §4.3 shapes, and its truth is consistent."""

from __future__ import annotations

import pandas as pd
import pytest

from connectors.sandbox.synth import SynthConfig, World, generate
from recon.matching import inputs_from_frames
from recon.matching.frames import (
    INVOICE_COLUMNS,
    PAYOUT_COLUMNS,
    PAYOUT_LINE_COLUMNS,
    RECORDED_COLUMNS,
    TRANSACTION_COLUMNS,
)


@pytest.fixture(scope="module")
def world() -> World:
    return generate(SynthConfig(n_invoices=3000, seed=11))


def test_same_seed_same_world(world: World) -> None:
    again = generate(SynthConfig(n_invoices=3000, seed=11))
    for name in ("invoices", "transactions", "recorded", "payouts", "payout_lines", "truth"):
        pd.testing.assert_frame_equal(getattr(world, name), getattr(again, name))


def test_other_seed_other_world(world: World) -> None:
    other = generate(SynthConfig(n_invoices=3000, seed=12))
    assert not world.transactions["reference"].equals(other.transactions["reference"])


def test_shapes_are_the_file_interface(world: World) -> None:
    assert tuple(world.invoices.columns) == INVOICE_COLUMNS
    assert tuple(world.transactions.columns) == TRANSACTION_COLUMNS
    assert tuple(world.recorded.columns) == RECORDED_COLUMNS
    assert tuple(world.payouts.columns) == PAYOUT_COLUMNS
    assert tuple(world.payout_lines.columns) == PAYOUT_LINE_COLUMNS
    # and they pass the file validation
    inputs_from_frames(
        world.invoices, world.transactions, world.recorded, world.payouts, world.payout_lines
    )


def test_truth_is_consistent(world: World) -> None:
    truth = world.truth
    assert truth["transaction_id"].isin(world.transactions["transaction_id"]).all()
    assert truth["invoice_id"].astype(str).isin(world.invoices["invoice_id"]).all()
    assert (truth["amount_minor"] > 0).all()
    cases = world.cases.set_index("transaction_id")
    assert cases.index.equals(pd.Index(world.transactions["transaction_id"]))
    # what belongs to invoices is a customer payment; outgoing and non-customer lines are not
    assert cases.loc[truth["transaction_id"], "customer"].all()
    outgoing = cases[cases["case"] == "outgoing"].index
    amounts = world.transactions.set_index("transaction_id").loc[outgoing, "amount"]
    assert amounts.str.startswith("-").all()
    assert not cases.loc[cases["case"].isin(["non_customer", "outgoing"]), "belongs"].any()


def test_every_kind_of_noise_is_present(world: World) -> None:
    seen = set(world.cases["case"])
    assert seen >= {
        "ref", "decoy", "cut_reference", "typo", "no_reference", "multi_listed",
        "multi_unlisted", "partial", "overpaid", "fee_short", "duplicate", "other_currency",
        "recorded", "stripe_recorded", "gocardless_recorded", "payout_credit", "provider_fee",
        "non_customer", "outgoing", "paid_invoice",
    }  # fmt: skip
    assert len(world.unbacked) > 0


def test_noise_rates_are_settings() -> None:
    quiet = generate(
        SynthConfig(n_invoices=1500, seed=5, typo=0.0, no_reference=0.0, cut_at_18=0.0, decoy=0.0)
    )
    assert not set(quiet.cases["case"]) & {"typo", "no_reference", "cut_reference", "decoy"}
    cut = generate(SynthConfig(n_invoices=1500, seed=5, cut_at_18=1.0))
    bank = cut.transactions[cut.cases["case"].isin(["ref", "cut_reference"]).to_numpy()]
    assert (bank["reference"].str.len() <= 18).all()
