"""Split windows end where one run over their union ends: what earlier runs allocated caps what
the engine may still allocate on an invoice, but never changes how it scores a payment it sees
again (rule, confidence and decision included)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from flows.reconcile import reconcile
from recon.settings import get_settings
from tests.pipeline.conftest import AS_OF, TENANT, Pipeline

START = AS_OF - dt.timedelta(days=59)
D = dt.date

# Each case: the windows run one after the other, whose union is START..AS_OF. The cuts are
# where, on this world, the old engine drifted: a payment seen again in the overlap scored
# against a balance earlier allocations had reduced (ref_amount_payer 99 instead of
# ref_partial_payer 93, name_amount 91 auto instead of name_amount_shared 82 review), and money
# booked just after a cut missed the WHMCS payment recorded just before it.
CASES = {
    "overlap-of-a-week": [(START, D(2026, 10, 22)), (D(2026, 10, 15), AS_OF)],
    "overlap-of-a-week-earlier": [(START, D(2026, 10, 12)), (D(2026, 10, 5), AS_OF)],
    "back-to-back": [(START, D(2026, 10, 12)), (D(2026, 10, 13), AS_OF)],
    "three-pieces": [
        (START, D(2026, 9, 22)),
        (D(2026, 9, 15), D(2026, 10, 12)),
        (D(2026, 10, 13), AS_OF),
    ],
}


def live(engine: Engine) -> list[tuple[Any, ...]]:
    """The live allocations (neither reversals nor reversed) on their natural columns."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT transaction_ref, invoice_id, amount_minor, currency, rule, confidence, "
                "decision, origin FROM allocations a WHERE a.reverses_id IS NULL AND NOT EXISTS "
                "(SELECT 1 FROM allocations r WHERE r.reverses_id = a.id)"
            )
        ).all()
    return sorted(tuple(row) for row in rows)


@pytest.mark.parametrize("windows", list(CASES.values()), ids=list(CASES))
def test_split_windows_end_with_the_union_runs_allocations(
    pipeline: Pipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    windows: list[tuple[dt.date, dt.date]],
) -> None:
    for window in windows:
        reconcile(tenant=TENANT, date_from=window[0], date_to=window[1])
    pieces = live(pipeline.engine)

    union_engine = pipeline.new_database(tmp_path / "union.db")
    monkeypatch.setenv("RECON_DATABASE_URL", f"sqlite:///{tmp_path / 'union.db'}")
    get_settings.cache_clear()
    reconcile(tenant=TENANT, date_from=START, date_to=AS_OF)
    union = live(union_engine)

    assert len(union) > 200
    only_split = sorted(set(pieces) - set(union))
    only_union = sorted(set(union) - set(pieces))
    assert (only_split, only_union) == ([], [])
    assert pieces == union
