"""Stripe and GoCardless signature checks (reliability T9)."""

from __future__ import annotations

import pytest

from apps.webhooks.signatures import (
    SignatureError,
    gocardless_signature,
    stripe_signature_header,
    verify_gocardless,
    verify_stripe,
)

NOW = 1_800_000_000
SECRET = "whsec_test_secret_value_1"
BODY = b'{"id":"evt_1","type":"payout.paid"}'


def clock() -> float:
    return float(NOW)


def test_valid_stripe_signature() -> None:
    assert (
        verify_stripe(BODY, stripe_signature_header(BODY, SECRET, NOW), [SECRET], clock=clock)
        == NOW
    )


def test_matches_the_stripe_sdk() -> None:
    import stripe

    header = stripe_signature_header(BODY, SECRET, NOW)
    expected = stripe.WebhookSignature._compute_signature(f"{NOW}.{BODY.decode()}", SECRET)
    assert header == f"t={NOW},v1={expected}"


@pytest.mark.parametrize(
    ("body", "header", "reason"),
    [
        (BODY + b" ", stripe_signature_header(BODY, SECRET, NOW), "matches"),
        (BODY, stripe_signature_header(BODY, "whsec_other", NOW), "matches"),
        (BODY, stripe_signature_header(BODY, SECRET, NOW - 301), "too old"),
        (BODY, stripe_signature_header(BODY, SECRET, NOW + 301), "future"),
        (BODY, None, "missing"),
        (BODY, f"t={NOW}", "v1"),
        (BODY, f"t={NOW},v0=abc", "v1"),
        (BODY, "v1=abc", "timestamp"),
        (BODY, "garbage", "timestamp"),
        (BODY, "t=soon,v1=abc", "not a number"),
    ],
    ids=[
        "tampered",
        "wrong-secret",
        "old",
        "future",
        "missing",
        "no-v1",
        "only-v0",
        "no-t",
        "garbage",
        "bad-t",
    ],
)
def test_bad_stripe_signatures_are_rejected(body: bytes, header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_stripe(body, header, [SECRET], clock=clock)


def test_edges_of_the_tolerance_are_accepted() -> None:
    for stamp in (NOW - 300, NOW + 300):
        verify_stripe(BODY, stripe_signature_header(BODY, SECRET, stamp), [SECRET], clock=clock)


def test_rotation_one_of_several_signatures_or_secrets() -> None:
    old = stripe_signature_header(BODY, "whsec_old_secret", NOW).split(",")[1]
    new = stripe_signature_header(BODY, SECRET, NOW)
    verify_stripe(BODY, f"{new},{old}", [SECRET], clock=clock)
    verify_stripe(BODY, new, ["whsec_old_secret", SECRET], clock=clock)


def test_tolerance_cannot_be_switched_off() -> None:
    header = stripe_signature_header(BODY, SECRET, NOW)
    for tolerance in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            verify_stripe(BODY, header, [SECRET], tolerance=tolerance, clock=clock)


def test_gocardless_signature_matches_the_published_example() -> None:
    """The fixture pair from gocardless-pro-python's tests (providers.md §2.8)."""
    body = (
        b'{"events":[{"id":"EV00BD05S5VM2T","created_at":"2018-07-05T09:13:51.404Z",'
        b'"resource_type":"subscriptions","action":"created","links":{"subscription":'
        b'"SB0003JJQ2MR06"},"details":{"origin":"api","cause":"subscription_created",'
        b'"description":"Subscription created via the API."},"metadata":{}},{"id":'
        b'"EV00BD05TB8K63","created_at":"2018-07-05T09:13:56.893Z","resource_type":"mandates",'
        b'"action":"created","links":{"mandate":"MD000AMA19XGEC"},"details":{"origin":"api",'
        b'"cause":"mandate_created","description":"Mandate created via the API."},"metadata":{}}]}'
    )
    key = "ED7D658C-D8EB-4941-948B-3973214F2D49"
    assert gocardless_signature(body, key) == (
        "2693754819d3e32d7e8fcb13c729631f316c6de8dc1cf634d6527f1c07276e7e"
    )
    verify_gocardless(body, gocardless_signature(body, key).upper(), [key])


@pytest.mark.parametrize("header", [None, "", "00" * 32])
def test_bad_gocardless_signatures_are_rejected(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_gocardless(BODY, header, ["secret-1"])
