"""The WHMCS API client against the fake WHMCS over real HTTP: paging, frames, faults, write-back."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
import pytest
from starlette.applications import Starlette

from connectors.http import (
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from connectors.sandbox.faults import FaultPlan, FaultRule
from connectors.sandbox.serve import RunningServer, run_in_thread
from connectors.sandbox.whmcs import WhmcsState, routes
from connectors.whmcs import (
    WhmcsClient,
    WhmcsDataError,
    WhmcsPaymentConflictError,
    WhmcsPaymentRefusedError,
)
from recon.money import to_minor
from tests.integration.whmcs_fixtures import (
    ACCESS_KEY,
    API_SECRET,
    CANARY,
    IDENTIFIER,
    TODAY,
    RecordingSleep,
    canonical,
    fast_policy,
    make_seed,
    sleep,
    sums_by_currency,
    wait_for_requests,
    whmcs_client,
    whmcs_seed,
    whmcs_server,
    whmcs_state,
)

__all__ = ["sleep", "whmcs_client", "whmcs_seed", "whmcs_server", "whmcs_state"]

Seed = tuple[pd.DataFrame, pd.DataFrame]
Page = tuple[str, str, int, bytes]


def paged_client(
    server: RunningServer, sleep: RecordingSleep, pages: list[Page], **policy: Any
) -> WhmcsClient:
    return WhmcsClient(
        server.url,
        IDENTIFIER,
        API_SECRET,
        policy=fast_policy(sleep, **policy),
        on_page=lambda *page: pages.append(page),
    )


def open_invoice(state: WhmcsState, seed: Seed, currency: str | None = None) -> pd.Series:
    """An Unpaid invoice without payments (optionally in one currency)."""
    invoices, recorded = seed
    candidates = invoices[
        (invoices["status"] == "Unpaid")
        & ~invoices["invoice_id"].isin(recorded["invoice_id"])
        & ((invoices["currency"] == currency) if currency else True)
    ]
    row = candidates.iloc[0]
    assert not state.payments(int(row["invoice_id"]))
    return row


# -- reads -----------------------------------------------------------------------------------------


def test_by_default_invoices_are_asked_250_to_a_page(
    whmcs_server: RunningServer, whmcs_state: WhmcsState, sleep: RecordingSleep
) -> None:
    pages: list[Page] = []
    with paged_client(whmcs_server, sleep, pages) as client:
        invoices = client.invoices_frame()
    assert len(invoices) == 230  # one page: the default (250) is above the seed's invoices
    keys = [key for action, key, _, _ in pages if action == "GetInvoices"]
    assert len(keys) == 1 and "limitnum=250" in keys[0]
    assert whmcs_state.faults.count(label="GetInvoices") == 1


def test_paging_reads_every_invoice_and_the_frames_equal_the_seed(
    whmcs_server: RunningServer, whmcs_state: WhmcsState, whmcs_seed: Seed, sleep: RecordingSleep
) -> None:
    pages: list[Page] = []
    with paged_client(whmcs_server, sleep, pages) as client:
        invoices = client.invoices_frame(page_size=40)
        recorded = client.recorded_frame(invoices)

    expected_invoices, expected_recorded = canonical(*whmcs_seed)
    assert len(invoices) == len(whmcs_seed[0]) == 230
    assert sums_by_currency(invoices, "total_minor") == sums_by_currency(
        expected_invoices, "total_minor"
    )
    assert sums_by_currency(invoices, "balance_minor") == sums_by_currency(
        expected_invoices, "balance_minor"
    )
    assert sums_by_currency(recorded, "amount_minor") == sums_by_currency(
        expected_recorded, "amount_minor"
    )
    pd.testing.assert_frame_equal(invoices, expected_invoices)
    pd.testing.assert_frame_equal(recorded, expected_recorded)
    assert invoices["total_minor"].dtype == "int64" and recorded["fees_minor"].dtype == "int64"

    # 230 invoices in pages of 40: six GetInvoices calls, each landed verbatim before parsing
    plan = whmcs_state.faults
    assert plan.count(label="GetInvoices") == math.ceil(230 / 40) == 6
    invoice_pages = [p for p in pages if p[0] == "GetInvoices"]
    assert len(invoice_pages) == 6 and len(pages) == plan.count()
    keys = [key for _, key, _, _ in invoice_pages]
    assert len(set(keys)) == 6 and all(
        "limitnum=40" in key and "limitstart=" in key for key in keys
    )
    landed_ids = [
        row["id"]
        for _, _, status, body in invoice_pages
        for row in json.loads(body)["invoices"]["invoice"]
        if status == 200
    ]
    assert sorted(landed_ids) == sorted(expected_invoices["invoice_id"])
    assert all(IDENTIFIER not in key and API_SECRET not in key for _, key, _, _ in pages)


def test_derived_balances_agree_with_get_invoice(
    whmcs_client: WhmcsClient, whmcs_seed: Seed
) -> None:
    frame = whmcs_client.invoices_frame()
    _, recorded = whmcs_seed
    paid_ids = set(recorded["invoice_id"])
    sample = list(frame[frame["invoice_id"].isin(paid_ids)]["invoice_id"][:12])
    sample += list(frame[~frame["invoice_id"].isin(paid_ids)]["invoice_id"][:4])
    for invoice_id in sample:
        invoice = whmcs_client.get_invoice(invoice_id)
        row = frame[frame["invoice_id"] == invoice_id].iloc[0]
        assert to_minor(invoice["balance"], row["currency"]) == row["balance_minor"]
        assert len(invoice["transactions"]) == int((recorded["invoice_id"] == invoice_id).sum())
        assert invoice["status"] == row["status"]


def test_status_filters(whmcs_client: WhmcsClient, whmcs_seed: Seed) -> None:
    invoices, _ = whmcs_seed
    unpaid = whmcs_client.invoices_frame("Unpaid", page_size=25)
    assert set(unpaid["status"]) == {"Unpaid"}
    assert sorted(unpaid["invoice_id"]) == sorted(
        invoices[invoices["status"] == "Unpaid"]["invoice_id"]
    )
    overdue = whmcs_client.invoices_frame("Overdue")
    expected = invoices[(invoices["status"] == "Unpaid") & (invoices["due_on"] < TODAY.isoformat())]
    assert 0 < len(overdue) < len(unpaid)
    assert sorted(overdue["invoice_id"]) == sorted(expected["invoice_id"])

    none = whmcs_client.invoices_frame("Payment Pending")  # WHMCS sends "invoices": []
    assert none.empty and list(none.columns) == list(unpaid.columns)
    assert none["total_minor"].dtype == "int64"
    assert list(whmcs_client.iter_transactions(transid="no-such-transid")) == []


def test_currencies_and_client_currency(whmcs_client: WhmcsClient) -> None:
    assert whmcs_client.get_currencies() == {1: "EUR", 2: "GBP", 3: "JPY", 4: "USD"}
    assert whmcs_client.client_currency(6) == "JPY"
    assert whmcs_client.client_currency(3) == "GBP"
    with pytest.raises(ProviderRejectedError, match="Client Not Found"):
        whmcs_client.client_currency(4040)


def test_invoices_without_currencycode_fall_back_to_the_clients_currency(
    whmcs_client: WhmcsClient, whmcs_state: WhmcsState, whmcs_seed: Seed
) -> None:
    whmcs_state.faults.malform(
        lambda invoice: invoice.pop("currencycode"),
        records=("invoices", "invoice"),
        limit=1000,
        params={"action": "GetInvoices"},
    )
    frame = whmcs_client.invoices_frame(page_size=100)
    pd.testing.assert_frame_equal(frame, canonical(*whmcs_seed)[0])
    assert whmcs_state.faults.count(label="GetClientsDetails") == 7  # once per client, cached


# -- faults ----------------------------------------------------------------------------------------

PAGE_2 = {"action": "GetInvoices", "limitstart": "40"}
LEDGER = {"action": "GetTransactions"}
WHMCS_FAULTS: dict[str, tuple[Callable[[FaultPlan], FaultRule], list[float] | int]] = {
    "503 twice on page 2": (lambda p: p.status(503, params=PAGE_2, count=2), 2),
    "502 then 504 on page 2": (
        lambda p: (p.status(502, params=PAGE_2, count=1), p.status(504, params=PAGE_2, count=1))[1],
        2,
    ),
    "500 on the ledger": (lambda p: p.status(500, params=LEDGER, count=1), 1),
    "429 with Retry-After on the ledger": (
        lambda p: p.rate_limit(retry_after=2, params=LEDGER, count=1),
        [2.0],
    ),
    "read timeout on page 2": (lambda p: p.timeout(0.8, params=PAGE_2, count=1), 1),
    "truncated page 2": (lambda p: p.truncate(0.6, params=PAGE_2, count=2), 2),
    "connection reset on page 2": (lambda p: p.reset(params=PAGE_2, count=1), 1),
}


@pytest.mark.parametrize("fault", list(WHMCS_FAULTS))
def test_reads_recover_from_transient_faults(
    fault: str,
    whmcs_server: RunningServer,
    whmcs_state: WhmcsState,
    whmcs_seed: Seed,
    sleep: RecordingSleep,
) -> None:
    arm, expected = WHMCS_FAULTS[fault]
    rule = arm(whmcs_state.faults)
    pages: list[Page] = []
    with paged_client(whmcs_server, sleep, pages) as client:
        invoices = client.invoices_frame(page_size=40)

    pd.testing.assert_frame_equal(invoices, canonical(*whmcs_seed)[0])
    assert rule.exhausted
    if isinstance(expected, list):
        assert sleep.delays == expected
    else:
        assert len(sleep.delays) == expected
    assert len(pages) == 7  # six invoice pages and the ledger, each landed once, only when good
    for _, _, _, body in pages:
        json.loads(body)


def test_a_persistent_outage_ends_in_provider_unavailable(
    whmcs_server: RunningServer, whmcs_state: WhmcsState, sleep: RecordingSleep
) -> None:
    whmcs_state.faults.status(503, params={"action": "GetInvoices"})
    with (
        paged_client(whmcs_server, sleep, [], max_attempts=5) as client,
        pytest.raises(ProviderUnavailableError) as caught,
    ):
        client.invoices_frame()
    assert caught.value.attempts == 5
    assert whmcs_state.faults.count(label="GetInvoices") == 5
    assert len(sleep.delays) == 4
    message = str(caught.value)
    assert "WHMCS did not answer POST /includes/api.php (GetInvoices)" in message
    assert "5 attempts" in message and "HTTP 503" in message


def test_persistent_rate_limiting_ends_in_rate_limited(
    whmcs_server: RunningServer, whmcs_state: WhmcsState, sleep: RecordingSleep
) -> None:
    whmcs_state.faults.rate_limit(retry_after=1, params={"action": "GetCurrencies"})
    with (
        paged_client(whmcs_server, sleep, [], max_attempts=3) as client,
        pytest.raises(ProviderRateLimitedError),
    ):
        client.get_currencies()
    assert whmcs_state.faults.count(label="GetCurrencies") == 3
    assert sleep.delays == [1.0, 1.0]


def test_a_malformed_record_raises_a_data_error_naming_it(
    whmcs_client: WhmcsClient, whmcs_state: WhmcsState
) -> None:
    def corrupt(invoice: dict[str, Any]) -> None:
        invoice["total"] = "12.5x"

    whmcs_state.faults.malform(corrupt, records=("invoices", "invoice"), params=PAGE_2, count=1)
    with pytest.raises(WhmcsDataError, match=r"WHMCS invoice \d+ total") as caught:
        whmcs_client.invoices_frame(page_size=40)
    assert "12.5x" in str(caught.value)


# -- access ----------------------------------------------------------------------------------------


def test_bad_credentials_are_rejected_once_and_never_leak(
    whmcs_server: RunningServer,
    whmcs_state: WhmcsState,
    sleep: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_secret = f"{CANARY}-wrong-secret"
    with (
        WhmcsClient(
            whmcs_server.url, IDENTIFIER, wrong_secret, policy=fast_policy(sleep)
        ) as client,
        pytest.raises(ProviderRejectedError) as caught,
    ):
        client.invoices_frame()

    exc = caught.value
    assert exc.status == 403 and exc.provider_message == "Authentication Failed"
    assert exc.endpoint == "GetInvoices"
    assert whmcs_state.faults.count() == 1 and sleep.delays == []
    assert str(exc).startswith("WHMCS rejected POST /includes/api.php (GetInvoices) with HTTP 403")
    for text in (str(exc), repr(exc), caplog.text, *(r.getMessage() for r in caplog.records)):
        assert CANARY not in text


def test_ip_allow_list_and_access_key(whmcs_seed: Seed, sleep: RecordingSleep) -> None:
    state = WhmcsState(
        *whmcs_seed,
        identifier=IDENTIFIER,
        secret=API_SECRET,
        allowed_ips=["203.0.113.7"],
        access_key=ACCESS_KEY,
    )
    with run_in_thread(Starlette(routes=routes(state))) as server:
        with (
            WhmcsClient(server.url, IDENTIFIER, API_SECRET, policy=fast_policy(sleep)) as client,
            pytest.raises(ProviderRejectedError, match=r"Invalid IP 127\.0\.0\.1"),
        ):
            client.get_currencies()
        with WhmcsClient(
            server.url, IDENTIFIER, API_SECRET, policy=fast_policy(sleep), access_key=ACCESS_KEY
        ) as client:
            assert client.get_currencies()[1] == "EUR"


def test_an_unknown_action_is_rejected_once(
    whmcs_client: WhmcsClient, whmcs_state: WhmcsState, sleep: RecordingSleep
) -> None:
    with pytest.raises(ProviderRejectedError, match="Command Not Found") as caught:
        whmcs_client.call("GetInvoicez")
    assert caught.value.status == 200  # WHMCS reports action errors in a 200 body
    assert whmcs_state.faults.count(label="GetInvoicez") == 1 and sleep.delays == []


# -- write-back ------------------------------------------------------------------------------------


def test_a_payment_is_added_once_and_never_twice(
    whmcs_client: WhmcsClient, whmcs_state: WhmcsState, whmcs_seed: Seed
) -> None:
    row = open_invoice(whmcs_state, whmcs_seed, "EUR")
    invoice_id, total = int(row["invoice_id"]), to_minor(row["total"], "EUR")

    first = whmcs_client.add_invoice_payment(
        invoice_id, "ch_3NewCharge", total, "EUR", 59, "stripe", date(2025, 3, 30)
    )
    second = whmcs_client.add_invoice_payment(
        invoice_id, "ch_3NewCharge", total, "EUR", 59, "stripe", date(2025, 3, 30)
    )

    assert first.created and not second.created
    assert first.whmcs_txn_id == second.whmcs_txn_id
    assert (first.amount_minor, first.fees_minor, first.currency) == (total, 59, "EUR")
    assert first.recorded_on == "2025-03-30" and first.transid == "ch_3NewCharge"
    assert len(whmcs_state.payments(invoice_id)) == 1
    assert whmcs_state.faults.count(label="AddInvoicePayment") == 1
    assert whmcs_state.status(invoice_id) == "Paid" and whmcs_state.balance(invoice_id) == 0
    frame = whmcs_client.invoices_frame()
    assert frame.set_index("invoice_id").loc[invoice_id, "balance_minor"] == 0


def test_a_partial_payment_leaves_the_invoice_unpaid(
    whmcs_client: WhmcsClient, whmcs_state: WhmcsState, whmcs_seed: Seed
) -> None:
    row = open_invoice(whmcs_state, whmcs_seed, "JPY")
    invoice_id, total = int(row["invoice_id"]), to_minor(row["total"], "JPY")
    payment = whmcs_client.add_invoice_payment(
        invoice_id, "bank-2025-03-30-17", 500, "JPY", 0, "banktransfer", date(2025, 3, 30)
    )
    assert payment.created and payment.amount_minor == 500
    assert whmcs_state.status(invoice_id) == "Unpaid"
    frame = whmcs_client.invoices_frame("Unpaid")
    assert frame.set_index("invoice_id").loc[invoice_id, "balance_minor"] == total - 500


UNCLEAR_WRITES: dict[str, tuple[Callable[[FaultPlan], FaultRule], int]] = {
    "502 after WHMCS applied it": (
        lambda p: p.status(502, after=True, params={"action": "AddInvoicePayment"}, count=1),
        1,
    ),
    "answer cut after WHMCS applied it": (
        lambda p: p.truncate(0.3, params={"action": "AddInvoicePayment"}, count=1),
        1,
    ),
    "500 before WHMCS applied it": (
        lambda p: p.status(500, params={"action": "AddInvoicePayment"}, count=1),
        2,
    ),
}


@pytest.mark.parametrize("fault", list(UNCLEAR_WRITES))
def test_a_failed_write_is_looked_up_before_anything_is_retried(
    fault: str, whmcs_client: WhmcsClient, whmcs_state: WhmcsState, whmcs_seed: Seed
) -> None:
    arm, sends = UNCLEAR_WRITES[fault]
    arm(whmcs_state.faults)
    row = open_invoice(whmcs_state, whmcs_seed, "USD")
    invoice_id = int(row["invoice_id"])
    payment = whmcs_client.add_invoice_payment(
        invoice_id, "ch_unclear", 1000, "USD", 0, "stripe", date(2025, 3, 29)
    )
    assert payment.created
    assert len(whmcs_state.payments(invoice_id)) == 1
    assert whmcs_state.faults.count(label="AddInvoicePayment") == sends


def test_a_timed_out_write_is_not_retried_and_the_next_call_finds_it(
    whmcs_client: WhmcsClient, whmcs_state: WhmcsState, whmcs_seed: Seed
) -> None:
    whmcs_state.faults.timeout(0.8, params={"action": "AddInvoicePayment"}, count=1)
    row = open_invoice(whmcs_state, whmcs_seed, "USD")
    invoice_id = int(row["invoice_id"])
    with pytest.raises(ProviderUnavailableError) as caught:
        whmcs_client.add_invoice_payment(
            invoice_id, "ch_slow", 1000, "USD", 0, "stripe", date(2025, 3, 29)
        )
    assert caught.value.outcome_unknown and "may have been applied" in str(caught.value)
    assert wait_for_requests(whmcs_state.faults, 1, label="AddInvoicePayment") == 1
    assert len(whmcs_state.payments(invoice_id)) == 1  # WHMCS applied it after the client gave up

    again = whmcs_client.add_invoice_payment(
        invoice_id, "ch_slow", 1000, "USD", 0, "stripe", date(2025, 3, 29)
    )
    assert not again.created and len(whmcs_state.payments(invoice_id)) == 1
    assert whmcs_state.faults.count(label="AddInvoicePayment") == 1


def test_payments_whmcs_refuses_or_that_conflict(
    whmcs_client: WhmcsClient, whmcs_state: WhmcsState, whmcs_seed: Seed
) -> None:
    invoices, _ = whmcs_seed
    cancelled = int(invoices[invoices["status"] == "Cancelled"]["invoice_id"].iloc[0])
    currency = invoices.set_index("invoice_id").loc[cancelled, "currency"]
    # WHMCS's refusal of one payment is that payment's failure, not the whole run's.
    with pytest.raises(WhmcsPaymentRefusedError, match="invoice that is Cancelled"):
        whmcs_client.add_invoice_payment(
            cancelled, "ch_c", 100, currency, 0, "stripe", date(2025, 3, 1)
        )
    with pytest.raises(ProviderRejectedError, match="Invoice ID Not Found"):
        whmcs_client.add_invoice_payment(999_999, "ch_x", 100, "EUR", 0, "stripe", date(2025, 3, 1))

    row = open_invoice(whmcs_state, whmcs_seed, "GBP")
    invoice_id = int(row["invoice_id"])
    with pytest.raises(WhmcsPaymentConflictError, match="billed in GBP, not EUR"):
        whmcs_client.add_invoice_payment(
            invoice_id, "ch_eur", 100, "EUR", 0, "stripe", date(2025, 3, 1)
        )
    whmcs_client.add_invoice_payment(
        invoice_id, "ch_gbp", 100, "GBP", 0, "stripe", date(2025, 3, 1)
    )
    with pytest.raises(WhmcsPaymentConflictError, match="already records transid ch_gbp"):
        whmcs_client.add_invoice_payment(
            invoice_id, "ch_gbp", 250, "GBP", 0, "stripe", date(2025, 3, 1)
        )
    assert len(whmcs_state.payments(invoice_id)) == 1
    assert not whmcs_state.payments(cancelled, "ch_c")
    assert whmcs_state.faults.count(label="AddInvoicePayment") == 2  # cancelled + ch_gbp


# -- the sandbox's own guarantees --------------------------------------------------------------------


def test_the_sandbox_refuses_seeds_whmcs_could_not_hold() -> None:
    invoices, recorded = make_seed(20, seed=3)
    broken = invoices.copy()
    broken.loc[0, "balance"] = "0.01" if broken.loc[0, "currency"] != "JPY" else "1"
    with pytest.raises(ValueError, match="WHMCS derives the balance"):
        WhmcsState(broken, recorded, identifier=IDENTIFIER, secret=API_SECRET)
    floats = invoices.copy()
    floats["total"] = floats["total"].astype(float)
    with pytest.raises(ValueError, match="float"):
        WhmcsState(floats, recorded, identifier=IDENTIFIER, secret=API_SECRET)
    mixed = invoices.copy()
    client = mixed["client_id"].value_counts().idxmax()
    mixed.loc[mixed.index[mixed["client_id"] == client][1], "currency"] = "CHF"
    with pytest.raises(ValueError, match="one currency per client"):
        WhmcsState(mixed, None, identifier=IDENTIFIER, secret=API_SECRET)


def test_opening_payments_bridge_balances_paid_before_the_seeded_period(
    sleep: RecordingSleep,
) -> None:
    invoices, recorded = make_seed(40, seed=5)
    paid_before = invoices[invoices["status"] == "Paid"]["invoice_id"][:5]
    recorded = recorded[~recorded["invoice_id"].isin(paid_before)].reset_index(drop=True)
    earlier = invoices["invoice_id"].isin(paid_before)  # Paid, balance 0, no payment in the seed
    assert earlier.sum() == 5
    with pytest.raises(ValueError, match="opening_payments=True"):
        WhmcsState(invoices, recorded, identifier=IDENTIFIER, secret=API_SECRET)

    state = WhmcsState(
        invoices, recorded, identifier=IDENTIFIER, secret=API_SECRET, opening_payments=True
    )
    with (
        run_in_thread(Starlette(routes=routes(state))) as server,
        WhmcsClient(server.url, IDENTIFIER, API_SECRET, policy=fast_policy(sleep)) as client,
    ):
        frame = client.invoices_frame()
        ledger = client.recorded_frame(frame)

    expected_invoices, expected_recorded = canonical(invoices, recorded)
    pd.testing.assert_frame_equal(frame, expected_invoices)
    opening = ledger["whmcs_txn_id"].isin(state.opening_payment_ids())
    assert opening.sum() == earlier.sum()
    assert set(ledger[opening]["invoice_id"]) == set(invoices[earlier]["invoice_id"])
    assert ledger[opening]["transid"].str.startswith("sandbox-opening-").all()
    pd.testing.assert_frame_equal(ledger[~opening].reset_index(drop=True), expected_recorded)
