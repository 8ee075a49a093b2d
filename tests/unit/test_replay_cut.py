"""A replay cut to a shorter window drops the payout lines of the payouts it cut, and only
those: a line whose payout is not among the stored payouts (quarantined, or listed elsewhere)
loads as a fresh fetch of the window loads it (conservation of the landed pages)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from recon.canonical import PAYOUT_LINES, PAYOUTS
from tasks.load import Batch, restrict, restrict_lines

DAY = dt.date(2026, 10, 10)


def test_a_cut_drops_only_the_lines_of_the_payouts_it_cut() -> None:
    payouts = Batch(
        "gocardless",
        PAYOUTS,
        pd.DataFrame(
            {
                "source": ["gocardless_payments"] * 2,
                "payout_id": ["PO_IN", "PO_OUT"],
                "arrival_on": [DAY, DAY + dt.timedelta(days=30)],
                "amount_minor": [100, 200],
                "currency": ["EUR", "EUR"],
                "status": ["paid", "paid"],
            }
        ),
    )
    lines = Batch(
        "gocardless",
        PAYOUT_LINES,
        pd.DataFrame(
            {
                "source": ["gocardless_payments"] * 3,
                "payout_id": ["PO_IN", "PO_OUT", "PO_QUARANTINED"],
                "transaction_id": ["PM1", "PM2", "PM3"],
            }
        ),
    )
    cut = restrict(payouts, DAY, DAY)
    assert list(cut.rows["payout_id"]) == ["PO_IN"]
    served = restrict_lines(lines, payouts, cut)
    assert list(served.rows["transaction_id"]) == ["PM1", "PM3"]
