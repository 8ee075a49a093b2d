"""One `transactions` answer as usable and malformed lines, each with its stable key.

`parse_transactions(body, account_id)` is pure: it returns the usable lines (`BankRecord`) and the
ones that are not (`MalformedRecord`, with every reason), booked and pending alike. The source id
rule is in `transaction_key`'s docstring.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Literal, TypeVar

from connectors.gocardless.records import BankRecord, MalformedRecord, Read, read_record
from connectors.gocardless.wire import PROVIDER, GoCardlessDataError

IdPolicy = Literal["content", "transaction_id"]
"""How `transaction_key` identifies a line: see its docstring."""

_PLACEHOLDER_IDS = frozenset({"", "string", "null", "none", "undefined", "notprovided"})
_MAX_ID_LENGTH = 200


def parse_transactions(
    body: bytes, account_id: str, *, id_policy: IdPolicy = "content"
) -> tuple[list[BankRecord], list[MalformedRecord]]:
    """The booked and pending lines of one `transactions` answer: (usable, malformed).

    Raises `GoCardlessDataError` when the body is not `{"transactions": {"booked": [...],
    "pending": [...]}}` at all (that is a bad page, not a bad record).
    """
    try:
        document = json.loads(body, parse_float=Decimal)
    except ValueError as exc:
        raise GoCardlessDataError(
            f"{PROVIDER} transactions of account {account_id} are not valid JSON ({exc})."
        ) from None
    container = document.get("transactions") if isinstance(document, dict) else None
    if not isinstance(container, dict):
        raise GoCardlessDataError(
            f"{PROVIDER} transactions of account {account_id} lack the 'transactions' object."
        )
    reads: list[Read] = []
    for status in ("booked", "pending"):
        items = container.get(status, [])
        if not isinstance(items, list):
            raise GoCardlessDataError(
                f"{PROVIDER} transactions of account {account_id}: '{status}' is not a list."
            )
        reads += [read_record(item, status, len(reads) + n) for n, item in enumerate(items)]
    good = [r for r in reads if not r.reasons]
    keys = _keys(good, account_id, id_policy)
    records = [
        BankRecord(
            source_id=keys[id(r)],
            status=r.status,
            booked_on=_required(r.booked_on),
            value_on=r.value_on,
            amount_minor=_required(r.amount_minor),
            currency=_required(r.currency),
            counterparty=r.counterparty,
            reference=r.reference,
            transaction_id=r.transaction_id,
            record=r.record,
        )
        for r in good
    ]
    return records, _malformed([r for r in reads if r.reasons], account_id)


_T = TypeVar("_T")


def _required(value: _T | None) -> _T:
    assert value is not None
    return value


def transaction_key(
    account_id: str,
    *,
    value_on: dt.date | None,
    booked_on: dt.date,
    amount_minor: int,
    currency: str,
    counterparty: str | None,
    reference: str | None,
) -> str:
    """The content fingerprint of a line, without its occurrence number.

    THE SOURCE-ID RULE. A bank line's `source_id` is, by default (`id_policy="content"`),
    `h:<fingerprint>:<n>` where the fingerprint is a SHA-256 over the account, the anchor date
    (`valueDate` when the bank sends one, else the booking date), the amount in minor units, the
    currency, and the counterparty and reference with case and whitespace folded; `n` numbers the
    lines of one answer that share a fingerprint (booked before pending, then by `transactionId`,
    then by position). None of these fields changes when a pending line books at the banks we
    model, so the booked line lands on the pending row's key and the load UPDATEs it, whatever
    happens to `transactionId` on the way (absent while pending, replaced on booking, absent
    always). Windows are whole days and the anchor date is part of the fingerprint, so `n` is the
    same in every window that contains the day.

    With `id_policy="transaction_id"`, for institutions known to keep ONE `transactionId` from
    pending to booked, a line whose id is present, not a placeholder (`"string"`), at most 200
    characters and unique in the answer is keyed `id:<transactionId>`; other lines fall back to
    the content key. Limits: a bank that changes the amount (card FX), the counterparty text, the
    reference text or the value date on booking produces a second row (the pending one stays
    pending); two genuinely different lines with equal fingerprints are told apart only by their
    order, which is harmless as they are indistinguishable; a replay of an older window after the
    line booked sets the row back to pending (the load upserts whatever the page says).
    """
    material = json.dumps(
        [
            account_id,
            (value_on or booked_on).isoformat(),
            amount_minor,
            currency,
            _fold(counterparty),
            _fold(reference),
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def _fold(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


def _keys(reads: list[Read], account_id: str, id_policy: IdPolicy) -> dict[int, str]:
    keys: dict[int, str] = {}
    if id_policy == "transaction_id":
        counts = Counter(r.transaction_id for r in reads if r.transaction_id)
        for r in reads:
            tid = r.transaction_id
            if (
                tid
                and counts[tid] == 1
                and tid.strip().lower() not in _PLACEHOLDER_IDS
                and len(tid) <= _MAX_ID_LENGTH
            ):
                keys[id(r)] = f"id:{tid}"
    groups: dict[str, list[Read]] = defaultdict(list)
    for r in reads:
        if id(r) in keys:
            continue
        fingerprint = transaction_key(
            account_id,
            value_on=r.value_on,
            booked_on=_required(r.booked_on),
            amount_minor=_required(r.amount_minor),
            currency=_required(r.currency),
            counterparty=r.counterparty,
            reference=r.reference,
        )
        groups[fingerprint].append(r)
    for fingerprint, members in groups.items():
        members.sort(key=lambda r: (r.status != "booked", r.transaction_id or "", r.position))
        for n, r in enumerate(members):
            keys[id(r)] = f"h:{fingerprint}:{n}"
    return keys


def _malformed(reads: list[Read], account_id: str) -> list[MalformedRecord]:
    seen: Counter[str] = Counter()
    out: list[MalformedRecord] = []
    for r in reads:
        material = json.dumps(
            [account_id, r.status, r.record], sort_keys=True, default=str, separators=(",", ":")
        )
        digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]
        out.append(
            MalformedRecord(
                row_key=f"q:{digest}:{seen[digest]}",
                reasons=tuple(r.reasons),
                record=r.record,
                status=r.status,
                booked_on=r.booked_on,
                amount_minor=r.amount_minor,
                currency=r.currency,
            )
        )
        seen[digest] += 1
    return out
