"""When a bank consent ends, and where that date comes from.

GoCardless gives the real date: an end-user agreement lasts `access_valid_for_days` from the
moment the account holder accepted it at the bank (the agreement's `accepted`). When the provider
does not say (the agreement cannot be read, or it has no `accepted`), the date is estimated from
the connection's start (its audit entry; the account holder cannot consent before that, so the
estimate is never later than the real date), else from the moment the accounts were linked.
Each linked account's basis is kept in the `bank.accounts_linked` audit entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from recon.db.models import AuditEntry
from recon.errors import ReconError
from recon.review.connection_views import BankDirectory, ConsentEnd, ConsentState
from recon.review.views import as_utc

WARN_DAYS = 14
"""A consent ending within this many days is shown with a warning."""
DEFAULT_ACCESS_DAYS = 90
STARTED = "bank.connection_started"
LINKED = "bank.accounts_linked"


def from_provider(directory: BankDirectory, agreement_id: str) -> ConsentEnd | None:
    """The agreement's own end (accepted + access_valid_for_days), or None when the provider
    does not say: no agreement, one that cannot be read, or one not accepted yet."""
    if not agreement_id:
        return None
    try:
        agreement = directory.get_agreement(agreement_id)
    except ReconError:
        return None
    accepted = _timestamp(agreement.accepted)
    if accepted is None:
        return None
    days = agreement.access_valid_for_days
    return ConsentEnd(
        accepted + dt.timedelta(days=days),
        f"GoCardless agreement {agreement_id}: accepted {accepted:%Y-%m-%d %H:%M} UTC, "
        f"valid {days} days",
        estimated=False,
    )


def from_start(session: Session, requisition_id: str) -> ConsentEnd | None:
    """The estimate from the connection's start (its audit entry); None when this installation
    did not start the connection."""
    entry = session.scalar(
        select(AuditEntry)
        .where(
            AuditEntry.entity == "requisition",
            AuditEntry.entity_id == requisition_id,
            AuditEntry.action == STARTED,
        )
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    )
    if entry is None:
        return None
    days = int(entry.details.get("access_valid_for_days") or DEFAULT_ACCESS_DAYS)
    started = as_utc(entry.occurred_at)
    assert started is not None
    return ConsentEnd(
        started + dt.timedelta(days=days),
        f"estimated: {days} days from the connection's start on {started:%Y-%m-%d} "
        "(the provider did not say when consent was given)",
        estimated=True,
    )


def from_link(moment: dt.datetime) -> ConsentEnd:
    """The last resort for a connection started elsewhere: the default length from now."""
    return ConsentEnd(
        moment + dt.timedelta(days=DEFAULT_ACCESS_DAYS),
        f"estimated: {DEFAULT_ACCESS_DAYS} days from linking on {moment:%Y-%m-%d} "
        "(the connection was started elsewhere and the provider did not say)",
        estimated=True,
    )


def recorded_bases(session: Session, requisition_ids: Sequence[str]) -> dict[str, str]:
    """Each account's basis as its newest `bank.accounts_linked` entry recorded it."""
    wanted = sorted({r for r in requisition_ids if r})
    if not wanted:
        return {}
    found: dict[str, str] = {}
    entries = session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.entity == "requisition",
            AuditEntry.action == LINKED,
            AuditEntry.entity_id.in_(wanted),
        )
        .order_by(AuditEntry.seq)
    )
    for entry in entries:
        bases = entry.details.get("consent_basis")
        if isinstance(bases, Mapping):
            found.update({str(k): str(v) for k, v in bases.items() if v})
    return found


def standing(
    label: str, expires: dt.datetime | None, now: dt.datetime
) -> tuple[ConsentState, int | None, str | None]:
    """The consent's state, whole days left (floored) and the warning, from 14 days before."""
    if expires is None:
        return ConsentState.UNKNOWN, None, None
    left = expires - now
    days = left.days
    if left <= dt.timedelta(0):
        return (
            ConsentState.EXPIRED,
            days,
            f"the bank consent of {label} expired on {expires:%Y-%m-%d}; connect it again",
        )
    if left <= dt.timedelta(days=WARN_DAYS):
        return (
            ConsentState.EXPIRING,
            days,
            f"the bank consent of {label} ends on {expires:%Y-%m-%d} ({days} days left); "
            "connect it again before then",
        )
    return ConsentState.OK, days, None


def _timestamp(text: str | None) -> dt.datetime | None:
    """An ISO 8601 time from the provider ("2024-04-08T22:54:54.869Z"), aware UTC; None when
    absent or unreadable."""
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return as_utc(parsed)
