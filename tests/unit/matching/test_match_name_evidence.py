"""Issue 14, round 3: what a payer's name and the amount still say when the reference does not."""

from __future__ import annotations

from tests.unit.matching.helpers import auto, invoice, payment, review, rules_of, run


def test_equal_invoices_the_newest_before_the_payment_is_suggested() -> None:
    """An old invoice of the same amount left open does not shift the suggestion to it."""
    result = run(
        [
            invoice(10100, "24.90", issued_on="2025-12-01", due_on="2025-12-15"),
            invoice(10234, "24.90", issued_on="2026-03-01", due_on="2026-03-15"),
        ],
        [payment("t1", "24.90", "", counterparty="John Smith", booked_on="2026-03-10")],
    )
    assert auto(result) == set()
    assert review(result) == {("t1", 10234, 2490)}


def test_equal_invoices_two_payments_take_one_each_newest_to_latest() -> None:
    result = run(
        [
            invoice(10100, "24.90", issued_on="2026-02-01", due_on="2026-02-15"),
            invoice(10234, "24.90", issued_on="2026-03-01", due_on="2026-03-15"),
        ],
        [
            payment("t1", "24.90", "", counterparty="John Smith", booked_on="2026-02-10"),
            payment("t2", "24.90", "", counterparty="John Smith", booked_on="2026-03-10"),
        ],
    )
    # the February payment can only be the February invoice; the March one takes the other
    assert auto(result) | review(result) == {("t1", 10100, 2490), ("t2", 10234, 2490)}


def test_joint_account_holder_by_initials_with_the_only_fitting_invoice() -> None:
    """`J. SMITH U. MARY SMITH`: Mary's full name is a client's, but only John has the amount."""
    result = run(
        [
            invoice(10234, "24.90", client_id="1", client_name="John Smith"),
            invoice(10235, "9.99", client_id="2", client_name="Mary Smith"),
        ],
        [payment("t1", "24.90", "", counterparty="J. SMITH U. MARY SMITH")],
    )
    assert auto(result) == {("t1", 10234, 2490)}


def test_abbreviated_payer_whose_surname_is_a_company_still_meets_by_initials() -> None:
    result = run(
        [
            invoice(10234, "24.90", client_id="1", client_name="Erik Larsson"),
            invoice(10235, "9.99", client_id="2", client_name="", company_name="Larsson AB"),
        ],
        [payment("t1", "24.90", "", counterparty="E. LARSSON")],
    )
    assert auto(result) == {("t1", 10234, 2490)}


def test_payer_named_in_full_is_not_taken_for_another_client_by_initials() -> None:
    """`PATRICIA WEBINES` is a client; `Patricia Wisnmann` shares only `patricia + w`."""
    result = run(
        [
            invoice(10234, "24.90", client_id="1", client_name="Patricia Wisnmann"),
            invoice(10235, "9.99", client_id="2", client_name="Patricia Webines"),
        ],
        [payment("t1", "24.90", "", counterparty="PATRICIA WEBINES")],
    )
    assert auto(result) == set()


def test_one_subset_over_every_client_of_a_shared_name_is_automatic() -> None:
    result = run(
        [
            invoice(10230, "10.00", client_id="1"),
            invoice(10231, "14.90", client_id="1"),
            invoice(10240, "30.00", client_id="2"),
        ],
        [payment("t1", "24.90", "", counterparty="John Smith")],
    )
    assert auto(result) == {("t1", 10230, 1000), ("t1", 10231, 1490)}
    assert rules_of(result, "t1") <= {"name_subset_sum", "name_subset_single"}


def test_subsets_of_two_clients_of_a_shared_name_are_a_suggestion() -> None:
    result = run(
        [
            invoice(10230, "10.00", client_id="1"),
            invoice(10231, "14.90", client_id="1"),
            invoice(10240, "12.00", client_id="2"),
            invoice(10241, "12.90", client_id="2"),
        ],
        [payment("t1", "24.90", "", counterparty="John Smith")],
    )
    assert auto(result) == set()
