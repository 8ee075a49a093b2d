"""The run's typed result survives the JSON form (events, deployments) and Prefect's pickling."""

from __future__ import annotations

import json
import pickle

import pytest

from flows.outcome import ApplyFigures, RunOutcome, SourceFigures


def outcome(apply: ApplyFigures | None) -> RunOutcome:
    return RunOutcome(
        run_id="r-1",
        sources={"stripe:acct": SourceFigures(pages=2, replayed=True, loaded=40, quarantined=1)},
        transactions=40,
        allocations_auto=30,
        allocations_review=5,
        exceptions=5,
        allocations_added=30,
        allocations_reversed=0,
        exceptions_opened=5,
        exceptions_closed=0,
        allocated_minor={"EUR": 123456},
        audit_anchor={"seq": 7, "head_hash": "ab" * 32},
        apply=apply,
        timings={"flow": 1.5},
    )


@pytest.mark.parametrize("apply", [None, ApplyFigures(applied=3, already_in_whmcs=1, failed=0)])
def test_json_and_pickle_round_trips(apply: ApplyFigures | None) -> None:
    original = outcome(apply)
    text = json.dumps(original.to_json())
    assert RunOutcome.from_json(json.loads(text)) == original
    assert pickle.loads(pickle.dumps(original)) == original  # Prefect's default result serializer


def test_counts_are_what_the_run_row_stores() -> None:
    counts = outcome(None).counts()
    assert "apply" not in counts and "run_id" not in counts
    assert counts["sources"]["stripe:acct"]["loaded"] == 40
    assert outcome(ApplyFigures(3, 1, 0)).counts()["apply"] == {
        "applied": 3,
        "already_in_whmcs": 1,
        "failed": 0,
    }
