"""The tenant's invoice numbering is learned from invoice_num values, without configuration."""

from __future__ import annotations

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from recon.matching import MatchConfig, match
from recon.matching.numbering import learn_formats, number_formats
from tests.unit.matching.helpers import inputs, invoice, payment

DAY_2025 = np.datetime64("2025-06-01", "D").astype(np.int64)
DAY_2026 = np.datetime64("2026-03-01", "D").astype(np.int64)


def _learn(values: list[str], days: list[int]) -> tuple[str, ...]:
    return learn_formats(pa.array(values), np.array(days, dtype=np.int32))


def test_formats_learned_over_the_years() -> None:
    values = [f"ABC{n:05d}" for n in range(1, 40)] + [f"INV-2026-{n:05d}" for n in range(40, 90)]
    values += [f"2025/{n}" for n in range(90, 130)] + [f"{n:05d}-DE" for n in range(200, 230)]
    values += [f"R25-{n:04d}" for n in range(300, 330)] + ["", "odd-one"]
    days = [DAY_2026] * 89 + [DAY_2025] * 40 + [DAY_2026] * 30 + [DAY_2025] * 30 + [DAY_2026] * 2
    learned = _learn(values, days)
    assert set(learned) == {
        "ABC{NUMBER}",
        "INV-{YEAR}-{NUMBER}",
        "{YEAR}/{NUMBER}",
        "{NUMBER}-DE",
        "R{YY}-{NUMBER}",
    }


def test_learning_ignores_row_order_and_a_setting_overrides() -> None:
    values = [f"INV-2026-{n:05d}" for n in range(50)] + [f"X{n}" for n in range(30)]
    days = [DAY_2026] * 80
    order = np.random.default_rng(3).permutation(80)
    assert _learn(values, days) == _learn([values[i] for i in order], [days[i] for i in order])
    assert number_formats("RE-{NUMBER}", pa.array(values), np.array(days)) == ("RE-{NUMBER}",)
    assert _learn(["", ""], [DAY_2026] * 2) == ("{NUMBER}",)


def test_numbers_glued_to_letters_match_without_configuration() -> None:
    """`AE00403` is no provider code to blank once the tenant is seen to number that way."""
    invoices = [
        invoice(
            8000 + n,
            "24.00",
            client_id=str(n),
            client_name=f"Client {n}",
            invoice_num=f"AE{400 + n:05d}",
        )
        for n in range(20)
    ]
    # amounts of several invoices are equal: only the number says which
    payments = [payment("t1", "24.00", "Faktura AE00403", counterparty="Client 3")]
    payments.append(payment("t2", "24.00", "pago ae00407", counterparty="CLIENT 7"))
    result = match(inputs(invoices, payments), MatchConfig())
    auto = result.allocations[result.allocations["decision"] == "auto"]
    assert dict(zip(auto["transaction_id"], auto["invoice_id"], strict=True)) == {
        "t1": 8003,
        "t2": 8007,
    }


def test_a_number_glued_to_letters_is_automated_only_when_the_amount_fits() -> None:
    """`NoF2026000403` names invoice F2026000403; it is automated only with its open amount."""
    invoices = [
        invoice(
            8000 + n,
            "24.00",
            client_id=str(n),
            client_name=f"Client {n}",
            invoice_num=f"F2026{400 + n:06d}",
        )
        for n in range(20)
    ]
    payments = [payment("t1", "24.00", "NoF2026000403", counterparty="Someone Else")]
    payments.append(payment("t2", "24.00", "REFF2026000407", counterparty="Client 7"))
    # the amount of no invoice: a reading, not a decision
    payments.append(payment("t3", "31.00", "INVF2026000409", counterparty="Someone Else"))
    result = match(inputs(invoices, payments), MatchConfig())
    assert result.stats["invoice_number_formats"] == ["F{YEAR}{NUMBER}"]
    auto = result.allocations[result.allocations["decision"] == "auto"]
    assert dict(zip(auto["transaction_id"], auto["invoice_id"], strict=True)) == {
        "t1": 8003,
        "t2": 8007,
    }


def test_the_formats_used_are_reported() -> None:
    invoices = [invoice(8000 + n, "24.00", invoice_num=f"2026/{n}") for n in range(1, 6)]
    result = match(inputs(invoices, [payment("t1", "24.00", "2026/3")]), MatchConfig())
    assert result.stats["invoice_number_formats"] == ["{YEAR}/{NUMBER}"]
    configured = match(inputs(invoices, []), MatchConfig(invoice_number_format="RE-{NUMBER}"))
    assert configured.stats["invoice_number_formats"] == ["RE-{NUMBER}"]
