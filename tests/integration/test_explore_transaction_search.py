"""The Transactions explorer's free text (one lower-cased LIKE over payer, reference and source id
joined by a separator) finds what a per-field ILIKE finds, in any case and field, never a match
spanning two fields, and treats % and _ literally. SQLite and PostgreSQL (the RLS-bound role)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from recon.db.models import Transaction
from recon.db.tenancy import tenant_session
from recon.review.explore import transactions_page
from tests.people import backend_with_finance

T, FIN = "acme", "fin@acme.test"
ROWS = (  # source id, payer, reference
    ("tx-alpha", "Jürgen Müller", "Invoice 5001"),
    ("tx-beta", None, "REF_100% paid"),
    ("tx-gamma", "ACME Corp", None),
    ("ZETA-9", "bob", "carol"),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A tenant with the four payments above and a finance user."""
    engine = backend_with_finance(request, T, FIN)
    with tenant_session(engine, T) as session:
        for source_id, payer, reference in ROWS:
            session.add(Transaction(source="bank", account_ref="acc", source_id=source_id,
                                    booked_on=dt.date(2026, 10, 1), amount_minor=100,
                                    currency="EUR", counterparty=payer, reference=reference))  # fmt: skip
    yield engine


def _found(engine: Engine, search: str) -> set[str]:
    return {row.ref.split(":")[-1] for row in transactions_page(engine, FIN, T, search=search).rows}


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("invoice 5001", {"tx-alpha"}),  # reference, other case
        ("acme corp", {"tx-gamma"}),  # payer, reference NULL
        ("zeta", {"ZETA-9"}),  # source id, other case
        ("tx-", {"tx-alpha", "tx-beta", "tx-gamma"}),
        ("Müller", {"tx-alpha"}),  # non-ASCII, same case
        ("100%", {"tx-beta"}),  # % literally
        ("REF_1", {"tx-beta"}),  # _ literally
        ("r_f", set()),  # _ is no wildcard (it would match "REF")
        ("bobcarol", set()),  # never across two fields
        ("bob\x1fcarol", set()),  # the separator itself: the per-field form
        ("carolZETA", set()),
        ("nothing like it", set()),
    ],
)
def test_the_search_finds_what_each_field_holds(
    app: Engine, search: str, expected: set[str]
) -> None:
    assert _found(app, search) == expected
