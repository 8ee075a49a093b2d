"""One example per case the engine must handle (the issue's list), on hand-written rows."""

from __future__ import annotations

import pytest

from tests.unit.matching.helpers import (
    auto,
    exceptions,
    invoice,
    kinds_of,
    payment,
    payout,
    recorded,
    review,
    rules_of,
    run,
)

# --- semantics -------------------------------------------------------------------------------


def test_exact_reference_and_amount_is_automatic() -> None:
    result = run([invoice(10234, "19.99")], [payment("t1", "19.99", "Invoice 10234")])
    assert auto(result) == {("t1", 10234, 1999)}
    assert result.exceptions.empty


def test_invoice_number_in_the_tenant_format() -> None:
    result = run(
        [
            invoice(10234, "19.99", invoice_num="INV-2026-5234"),
            invoice(5234, "19.99", client_id="9"),
        ],
        [payment("t1", "19.99", "INV-2026-5234", counterparty="Someone Else")],
    )
    # the formatted number names invoice number 5234 (invoice 10234), not invoice id 5234
    assert auto(result) == {("t1", 10234, 1999)}


def test_later_payment_for_a_settled_invoice_is_a_duplicate() -> None:
    result = run(
        [invoice(10234, "19.99")],
        [
            payment("t2", "19.99", "Invoice 10234", booked_on="2026-03-12"),
            payment("t1", "19.99", "Invoice 10234", booked_on="2026-03-10"),
        ],
    )
    assert auto(result) == {("t1", 10234, 1999)}
    assert ("duplicate_payment", "t2", 10234, 1999) in exceptions(result)


def test_overpayment_allocates_the_balance_and_reports_the_excess() -> None:
    result = run([invoice(10234, "50.00")], [payment("t1", "55.00", "Rechnung 10234")])
    assert auto(result) == {("t1", 10234, 5000)}
    assert ("overpayment", "t1", 10234, 500) in exceptions(result)


def test_partial_payments_leave_the_invoice_open_until_settled() -> None:
    result = run(
        [invoice(10234, "100.00")],
        [
            payment("t1", "40.00", "Invoice 10234", booked_on="2026-03-10"),
            payment("t2", "60.00", "Invoice 10234", booked_on="2026-03-20"),
        ],
    )
    assert auto(result) == {("t1", 10234, 4000), ("t2", 10234, 6000)}
    assert result.exceptions.empty


@pytest.mark.parametrize(
    ("balance", "paid", "underpaid"),
    [
        ("100.00", "97.00", True),  # exactly 3 %
        ("100.00", "96.99", False),  # one cent beyond: a partial payment
        ("2000.00", "1975.00", True),  # 3 % would be 60.00: capped at 25.00
        ("2000.00", "1974.99", False),
    ],
)
def test_fee_tolerance_boundaries(balance: str, paid: str, underpaid: bool) -> None:
    result = run([invoice(10234, balance)], [payment("t1", paid, "Invoice 10234")])
    minor = int(paid.replace(".", ""))
    assert auto(result) == {("t1", 10234, minor)}  # what was received is allocated either way
    assert ("underpayment" in kinds_of(result, "t1")) is underpaid
    if underpaid:
        gap = int(balance.replace(".", "")) - minor
        assert ("underpayment", "t1", 10234, gap) in exceptions(result)


def test_fee_tolerance_is_a_setting() -> None:
    result = run(
        [invoice(10234, "100.00")],
        [payment("t1", "98.00", "Invoice 10234")],
        fee_tolerance_percent="1",
    )
    assert "underpayment" not in kinds_of(result, "t1")


def test_one_payment_for_invoices_listed_in_the_reference() -> None:
    result = run(
        [invoice(10234, "19.99"), invoice(10235, "5.01"), invoice(10236, "7.00")],
        [payment("t1", "25.00", "Invoices 10234, 10235")],
    )
    assert auto(result) == {("t1", 10234, 1999), ("t1", 10235, 501)}
    assert rules_of(result, "t1") == {"ref_multi_payer"}


def test_one_payment_for_the_exact_sum_of_a_clients_open_invoices() -> None:
    result = run(
        [
            invoice(10234, "19.99", client_name="Hans Müller"),
            invoice(10240, "7.50", client_name="Hans Müller"),
            invoice(10250, "12.00", client_name="Hans Müller"),
            invoice(10260, "7.50", client_id="2", client_name="Other Person"),
        ],
        [payment("t1", "27.49", "", counterparty="MUELLER HANS")],
    )
    assert auto(result) == {("t1", 10234, 1999), ("t1", 10240, 750)}
    assert rules_of(result, "t1") == {"name_subset_sum"}


def test_several_payments_settle_one_invoice_in_booking_order() -> None:
    result = run(
        [invoice(10234, "30.00")],
        [
            payment("t1", "10.00", "Invoice 10234", booked_on="2026-03-05"),
            payment("t2", "10.00", "Invoice 10234", booked_on="2026-03-06"),
            payment("t3", "15.00", "Invoice 10234", booked_on="2026-03-07"),
        ],
    )
    assert auto(result) == {("t1", 10234, 1000), ("t2", 10234, 1000), ("t3", 10234, 1000)}
    assert ("overpayment", "t3", 10234, 500) in exceptions(result)


@pytest.mark.parametrize("status", ["Paid", "Cancelled", "Refunded"])
def test_payment_for_a_closed_invoice_is_an_exception(status: str) -> None:
    result = run(
        [invoice(10234, "19.99", balance="0.00", status=status)],
        [payment("t1", "25.00", "Invoice 10234")],
    )
    assert auto(result) == set() and review(result) == set()
    assert ("closed_invoice", "t1", 10234, 2500) in exceptions(result)


def test_paying_a_paid_invoice_again_is_a_duplicate() -> None:
    result = run(
        [invoice(10234, "19.99", balance="0.00", status="Paid")],
        [payment("t1", "19.99", "Invoice 10234")],
    )
    assert auto(result) == set()
    assert ("duplicate_payment", "t1", 10234, 1999) in exceptions(result)


def test_payment_in_another_currency_is_not_allocated() -> None:
    result = run(
        [invoice(10234, "19.99", currency="EUR")],
        [payment("t1", "19.99", "Invoice 10234", currency="USD")],
    )
    assert auto(result) == set() and review(result) == set()
    assert ("currency_mismatch", "t1", 10234, 1999) in exceptions(result)


def test_payment_that_cannot_be_placed_is_unmatched() -> None:
    result = run([invoice(10234, "19.99")], [payment("t1", "42.00", "", counterparty="Nobody")])
    assert result.allocations.empty
    assert ("unmatched_payment", "t1", 0, 4200) in exceptions(result)


def test_two_equally_good_candidates_are_left_for_review() -> None:
    # a bare number that is both an invoice id and another invoice's number, same amount,
    # and a payer who is neither client: a person would hesitate
    result = run(
        [
            invoice(5234, "19.99", client_id="1", client_name="Anna Berg"),
            invoice(
                10234, "19.99", client_id="2", client_name="Olaf Nord", invoice_num="INV-2026-5234"
            ),
        ],
        [payment("t1", "19.99", "5234", counterparty="Third Party")],
    )
    assert auto(result) == set()
    assert len(review(result)) == 1
    assert "ambiguous" in kinds_of(result, "t1")


# --- what it must recognise ------------------------------------------------------------------


def test_cut_number_is_completed_by_payer_and_amount() -> None:
    cut = "EREF+SVWZ+RE 10234"  # 18 characters, invoice 102345 cut short
    assert len(cut) == 18
    result = run(
        [invoice(102345, "19.99"), invoice(10234, "19.99", client_id="2", client_name="Other One")],
        [payment("t1", "19.99", cut)],
    )
    assert auto(result) == {("t1", 102345, 1999)}
    assert rules_of(result, "t1") == {"ref_cut_payer"}


def test_decoy_client_number_equal_to_an_invoice_id_is_not_taken() -> None:
    result = run(
        [
            invoice(10234, "19.99", client_id="4512"),
            invoice(4512, "19.99", client_id="77", client_name="Someone Else"),
        ],
        [payment("t1", "19.99", "Rechnung 10234 Kd-Nr 4512")],
    )
    assert auto(result) == {("t1", 10234, 1999)}


@pytest.mark.parametrize(
    "reference",
    [
        "10234 Tel 030 4512345",
        "10234 vom 15.03.2026",
        "10234 EUR 45.12",
        "10234 Order 45125",
    ],
)
def test_decoy_numbers_do_not_compete(reference: str) -> None:
    result = run(
        [invoice(10234, "19.99"), invoice(45125, "19.99", client_id="2", client_name="Jo Doe")],
        [payment("t1", "19.99", reference)],
    )
    assert auto(result) == {("t1", 10234, 1999)}


def test_typo_confirmed_by_amount_and_payer_is_automatic() -> None:
    result = run(
        [
            invoice(10234, "37.12", client_name="Lotte Berg"),
            invoice(10243, "9.99", client_id="2", client_name="Other Client"),
        ],
        [payment("t1", "37.12", "Invoice 10243", counterparty="BERG LOTTE")],
    )
    assert auto(result) == {("t1", 10234, 3712)}
    assert rules_of(result, "t1") == {"ref_typo_payer"}


def test_typo_without_the_payer_is_not_automatic() -> None:
    result = run(
        [invoice(10234, "37.12", client_name="Lotte Berg")],
        [payment("t1", "37.12", "Invoice 10243", counterparty="Someone Else")],
    )
    assert auto(result) == set()
    assert review(result) == {("t1", 10234, 3712)}


@pytest.mark.parametrize(
    "payer",
    ["SMITH, JOHN", "Mr John Smith", "JOHN SMITH", "Smith John"],
)
def test_no_reference_payer_name_amount_and_date(payer: str) -> None:
    result = run(
        [invoice(10234, "24.90"), invoice(10235, "9.99")],
        [payment("t1", "24.90", "Thank you", counterparty=payer)],
    )
    assert auto(result) == {("t1", 10234, 2490)}
    assert rules_of(result, "t1") == {"name_amount"}


def test_company_payer_with_legal_suffix() -> None:
    result = run(
        [invoice(10234, "129.00", client_name="Eva Jansen", company_name="Nordwind Hosting B.V.")],
        [payment("t1", "129.00", "", counterparty="NORDWIND HOSTING")],
    )
    assert auto(result) == {("t1", 10234, 12900)}


def test_no_reference_shared_name_and_amount_single_out_one_invoice() -> None:
    """Issue 14: name and exact amount singling out one open invoice is a strong match."""
    result = run(
        [invoice(10234, "24.90", client_id="1"), invoice(10235, "9.99", client_id="2")],
        [payment("t1", "24.90", "", counterparty="SMITH JOHN")],
    )
    assert auto(result) == {("t1", 10234, 2490)}


def test_no_reference_shared_name_with_two_fitting_invoices_is_a_suggestion() -> None:
    result = run(
        [invoice(10234, "24.90", client_id="1"), invoice(10235, "24.90", client_id="2")],
        [payment("t1", "24.90", "", counterparty="John Smith")],
    )
    assert auto(result) == set()
    assert review(result) == {("t1", 10234, 2490)}
    # the suggestion names the runner-up
    ambiguous = result.exceptions[result.exceptions["kind"] == "ambiguous"]
    assert ambiguous["invoice_id"].tolist() == [10235] and "10235" in ambiguous["detail"].iloc[0]


def test_no_reference_an_older_invoice_of_the_amount_makes_it_a_suggestion() -> None:
    result = run(
        [
            invoice(10100, "24.90", issued_on="2025-06-01", due_on="2025-06-15"),
            invoice(10234, "24.90"),
        ],
        [payment("t1", "24.90", "", counterparty="John Smith")],
    )
    assert auto(result) == set()


def test_no_reference_a_subset_that_fits_too_makes_it_a_suggestion() -> None:
    result = run(
        [invoice(10230, "10.00"), invoice(10231, "14.90"), invoice(10234, "24.90")],
        [payment("t1", "24.90", "", counterparty="John Smith")],
    )
    assert auto(result) == set()


def test_no_reference_outside_the_date_window_is_not_automatic() -> None:
    result = run(
        [invoice(10234, "24.90", issued_on="2025-01-01", due_on="2025-01-15")],
        [payment("t1", "24.90", "", booked_on="2026-03-10")],
    )
    assert auto(result) == set()


# --- Stripe, GoCardless, audit ---------------------------------------------------------------


def test_stripe_charge_confirms_the_recorded_payment_by_transid() -> None:
    result = run(
        [invoice(10234, "19.99", balance="0.00", status="Paid")],
        [payment("ch_3Nx1", "19.99", "Invoice #10234", source="stripe", counterparty="")],
        recorded_rows=[recorded("901", 10234, "19.99", transid="ch_3Nx1")],
    )
    assert auto(result) == {("ch_3Nx1", 10234, 1999)}
    assert rules_of(result, "ch_3Nx1") == {"recorded_transid"}
    assert result.exceptions.empty


def test_stripe_charge_without_a_recorded_payment_matches_its_description() -> None:
    result = run(
        [invoice(10234, "19.99", company_name="Acme GmbH")],
        [
            payment(
                "ch_3Nx1", "19.99", "Acme GmbH - Invoice #10234", source="stripe", counterparty=""
            )
        ],
    )
    assert auto(result) == {("ch_3Nx1", 10234, 1999)}


def test_refunds_and_disputes_point_at_the_charged_invoice() -> None:
    result = run(
        [invoice(10234, "19.99", balance="0.00", status="Paid")],
        [
            payment("ch_3Nx1", "19.99", "Invoice #10234", source="stripe"),
            payment(
                "txn_r", "-5.00", "Refund for ch_3Nx1", source="stripe", booked_on="2026-03-20"
            ),
            payment("txn_d", "-19.99", "Dispute ch_3Nx1", source="stripe", booked_on="2026-03-25"),
        ],
        recorded_rows=[recorded("901", 10234, "19.99", transid="ch_3Nx1")],
    )
    assert ("refund", "txn_r", 10234, 500) in exceptions(result)
    assert ("dispute", "txn_d", 10234, 1999) in exceptions(result)
    assert {t for t, _, _ in auto(result)} == {"ch_3Nx1"}


def test_staff_recorded_bank_payment_is_confirmed_not_applied_again() -> None:
    result = run(
        [invoice(10234, "19.99", balance="0.00", status="Paid")],
        [payment("t1", "19.99", "Invoice 10234", booked_on="2026-03-10")],
        recorded_rows=[
            recorded("901", 10234, "19.99", gateway="banktransfer", recorded_on="2026-03-12")
        ],
    )
    assert auto(result) == {("t1", 10234, 1999)}
    assert rules_of(result, "t1") == {"recorded_reference"}
    assert result.exceptions.empty


def test_recorded_payment_with_no_money_is_unbacked() -> None:
    result = run(
        [invoice(10234, "19.99", balance="0.00", status="Paid"), invoice(10235, "5.00")],
        [
            payment("t0", "5.00", "Invoice 10235", booked_on="2026-02-01"),
            payment("ch_1", "1.00", "x", source="stripe", booked_on="2026-02-01"),
            payment("ch_2", "1.00", "x", source="stripe", booked_on="2026-04-30"),
        ],
        recorded_rows=[
            recorded("901", 10234, "19.99", transid="ch_missing", recorded_on="2026-03-10")
        ],
    )
    assert ("unbacked_payment", "", 10234, 1999) in exceptions(result)


def test_payout_arrives_in_the_bank_and_adds_up() -> None:
    result = run(
        [invoice(10234, "100.00", balance="0.00", status="Paid")],
        [
            payment("ch_1", "100.00", "Invoice #10234", source="stripe", booked_on="2026-03-08"),
            payment(
                "ch_1:fee", "-1.75", "Stripe fee for ch_1", source="stripe", booked_on="2026-03-08"
            ),
            payment(
                "bank_po", "98.25", "STRIPE PAYOUT", counterparty="STRIPE", booked_on="2026-03-12"
            ),
        ],
        recorded_rows=[recorded("901", 10234, "100.00", transid="ch_1")],
        payouts=[payout("po_1", "98.25")],
        lines=[("po_1", "ch_1"), ("po_1", "ch_1:fee")],
    )
    assert result.exceptions.empty
    assert list(result.payout_matches["transaction_id"]) == ["bank_po"]
    assert {t for t, _, _ in auto(result)} == {"ch_1"}  # the payout credit is no customer's


def test_payout_arriving_short_and_one_not_adding_up() -> None:
    result = run(
        [invoice(10234, "100.00", balance="0.00", status="Paid")],
        [
            payment("ch_1", "100.00", "Invoice #10234", source="stripe", booked_on="2026-03-08"),
            payment(
                "bank_po", "97.00", "STRIPE", counterparty="Stripe Payments", booked_on="2026-03-13"
            ),
        ],
        recorded_rows=[recorded("901", 10234, "100.00", transid="ch_1")],
        payouts=[payout("po_1", "99.00")],
        lines=[("po_1", "ch_1")],
    )
    found = exceptions(result)
    assert ("payout_shortfall", "bank_po", 0, 200) in found  # 99.00 paid out, 97.00 arrived
    assert ("payout_shortfall", "", 0, 100) in found  # lines 100.00, payout 99.00


def test_gocardless_payout() -> None:
    result = run(
        [invoice(10234, "50.00", balance="0.00", status="Paid")],
        [
            payment("PM01", "50.00", "Invoice 10234", source="gocardless", booked_on="2026-03-05"),
            payment(
                "PM01:fee", "-0.70", "GoCardless fee", source="gocardless", booked_on="2026-03-05"
            ),
            payment(
                "bank", "49.30", "GC PAYOUT", counterparty="GOCARDLESS LTD", booked_on="2026-03-12"
            ),
        ],
        recorded_rows=[recorded("901", 10234, "50.00", transid="PM01", gateway="gocardless")],
        payouts=[payout("PO1", "49.30", source="gocardless", arrival_on="2026-03-11")],
        lines=[("PO1", "PM01"), ("PO1", "PM01:fee")],
    )
    assert result.exceptions.empty
    assert list(result.payout_matches["payout_id"]) == ["PO1"]


def test_paid_payout_with_no_bank_credit_is_missing() -> None:
    result = run(
        [invoice(10234, "50.00")],
        [
            payment("b0", "1.00", "x", counterparty="x", booked_on="2026-03-01"),
            payment("b1", "1.00", "x", counterparty="x", booked_on="2026-04-30"),
        ],
        payouts=[payout("po_1", "49.30", arrival_on="2026-03-11")],
        lines=[],
    )
    assert ("payout_missing", "", 0, 4930) in exceptions(result)


# --- never allocated -------------------------------------------------------------------------


def test_outgoing_payments_are_never_allocated() -> None:
    result = run(
        [invoice(10234, "19.99")],
        [payment("t1", "-19.99", "Invoice 10234", counterparty="John Smith")],
    )
    assert result.allocations.empty
    assert result.exceptions.empty


def test_non_customer_credit_with_a_colliding_number_is_not_automatic() -> None:
    result = run(
        [invoice(10234, "19.99")],
        [payment("t1", "1234.56", "Erstattung 10234", counterparty="FINANZAMT")],
    )
    assert auto(result) == set()


def test_provider_payout_credit_without_a_payout_record_is_not_a_customer_payment() -> None:
    result = run(
        [invoice(10234, "98.25")],
        [payment("t1", "98.25", "STRIPE PAYOUT 10234", counterparty="STRIPE")],
    )
    assert auto(result) == set() and review(result) == set()
    assert "unmatched_payment" in kinds_of(result, "t1")


@pytest.mark.parametrize(
    ("invoices", "transactions"),
    [
        ([], []),
        ([invoice(10234, "5.00")], []),
        ([], [payment("t1", "5.00", "Invoice 10234")]),
        ([invoice(10234, "5.00")], [payment("t1", "-5.00", "Invoice 10234")]),
    ],
)
def test_empty_and_one_sided_inputs(
    invoices: list[dict[str, str]], transactions: list[dict[str, str]]
) -> None:
    result = run(invoices, transactions)
    assert result.allocations.empty
    incoming = [t for t in transactions if not t["amount"].startswith("-")]
    assert len(result.exceptions) == len(incoming)
