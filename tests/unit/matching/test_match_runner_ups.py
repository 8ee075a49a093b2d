"""An ambiguous payment's runners-up carry their rule and confidence as data (issue 12), the
same facts the detail words for exceptions.csv; other exceptions carry none, and the file keeps
its columns."""

from __future__ import annotations

import re

import pandas as pd

from bench.books2 import generate_books
from recon.matching import MatchConfig, inputs_from_frames, match
from recon.matching.frames import EXCEPTION_COLUMNS
from recon.matching.io import exceptions_table
from recon.matching.rules import RULES
from tests.unit.matching.helpers import invoice, payment, review, run

# the engine's wording of a runner-up, read here only to check the data against the text
WORDS = re.compile(r"another candidate: invoice (\d+)(?: and others)?, confidence (\d+) \((.*)\)")


def _two_fitting_invoices(**settings: object) -> pd.DataFrame:
    """Two open invoices of the amount, of clients named alike, and a payment naming neither."""
    result = run(
        [invoice(10234, "24.90", client_id="1"), invoice(10235, "24.90", client_id="2")],
        [payment("t1", "24.90", "", counterparty="John Smith")],
        **settings,
    )
    assert review(result) == {("t1", 10234, 2490)}
    allocation = result.allocations.iloc[0]
    e = result.exceptions
    runner = e[e["kind"] == "ambiguous"]
    assert runner["invoice_id"].tolist() == [10235]
    # the two invoices are alike, so the runner-up is judged as the suggestion is
    assert runner["rule"].tolist() == [allocation["rule"]]
    assert runner["confidence"].tolist() == [allocation["confidence"]]
    return runner


def test_a_runner_up_has_its_rule_and_the_rules_confidence() -> None:
    runner = _two_fitting_invoices()
    (rule,) = runner["rule"]
    assert rule in {r.name for r in RULES}
    assert runner["confidence"].tolist() == [next(r.confidence for r in RULES if r.name == rule)]
    assert f"confidence {runner['confidence'].iloc[0]} ({rule})" in runner["detail"].iloc[0]


def test_a_runner_ups_confidence_follows_the_tenants_override() -> None:
    rule = str(_two_fitting_invoices()["rule"].iloc[0])
    runner = _two_fitting_invoices(rule_confidence={rule: 71})
    assert runner["rule"].tolist() == [rule]
    assert runner["confidence"].tolist() == [71]
    assert f"confidence 71 ({rule})" in runner["detail"].iloc[0]


def test_every_runner_up_of_a_world_has_the_facts_its_detail_words_and_no_other_row_has_any() -> (
    None
):
    world = generate_books(3, 6000)
    inputs = inputs_from_frames(
        world.invoices, world.transactions, world.recorded, world.payouts, world.payout_lines
    )
    result = match(inputs, MatchConfig())
    e = result.exceptions
    assert str(e["confidence"].dtype) == "Int64"
    worded = e["detail"].str.match(WORDS.pattern)
    assert worded.sum() > 20  # the world has ambiguous payments (42 at this size)
    names = {r.name for r in RULES}
    for detail, invoice_id, rule, confidence in zip(
        e["detail"][worded], e["invoice_id"][worded], e["rule"][worded],
        e["confidence"][worded], strict=True,
    ):  # fmt: skip
        found = WORDS.match(detail)
        assert found is not None
        assert (int(found.group(1)), int(found.group(2)), found.group(3)) == (
            invoice_id,
            confidence,
            rule,
        )
        assert rule in names
    others = e[~worded]
    assert len(others) > 0
    assert others["rule"].isna().all() and others["confidence"].isna().all()
    assert list(exceptions_table(result).column_names) == list(EXCEPTION_COLUMNS)
