"""Seeding: the objects Stripe would hold for the seed frames, and what Stripe derives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from connectors.sandbox.stripe.model import (
    CHARGE_COLUMNS,
    DISPUTE_COLUMNS,
    DISPUTE_STATUSES,
    JSON,
    PAYOUT_COLUMNS,
    PAYOUT_STATUSES,
    REFUND_COLUMNS,
    WON_REVERSAL_AFTER,
    Collection,
    balance_transaction_id,
    stripe_amount,
)
from connectors.sandbox.stripe.objects import (
    balance_transaction,
    charge_json,
    dispute_json,
    payout_json,
    refund_json,
)
from connectors.sandbox.stripe.query import sort_key
from connectors.sandbox.stripe.values import (
    as_int,
    is_missing,
    money,
    optional_text,
    seed_rows,
    unique_id,
    unix,
)
from recon.money import normalise_currency


@dataclass
class SeedWorld:
    """Every object the seed makes, before they are sorted into collections."""

    charges: list[JSON]
    refunds: list[JSON]
    disputes: list[JSON]
    payouts: list[JSON]
    balance_transactions: list[JSON]

    @classmethod
    def build(
        cls,
        charges: pd.DataFrame,
        refunds: pd.DataFrame | None,
        disputes: pd.DataFrame | None,
        payouts: pd.DataFrame | None,
        now: datetime | int | None,
    ) -> SeedWorld:
        """The objects of the seed frames, with what Stripe derives from them."""
        seeding = _Seeding()
        for row in seed_rows(charges, CHARGE_COLUMNS, "charges"):
            seeding.charge(row)
        refund_objs = [seeding.refund(r) for r in seed_rows(refunds, REFUND_COLUMNS, "refunds")]
        dispute_objs = [
            seeding.dispute(r) for r in seed_rows(disputes, DISPUTE_COLUMNS, "disputes")
        ]
        bts, payout_of = seeding.bts, seeding.payout_of
        payout_rows = seed_rows(payouts, PAYOUT_COLUMNS, "payouts")
        payout_objs = _payouts(payout_rows, bts, payout_of, seeding.seen)
        for bt in bts:
            bt["_payout"] = payout_of.get(bt["id"])
        clock = _now(now, bts, payout_objs)
        for bt in bts:
            if bt["type"] != "payout" and bt["_payout"] is None and bt["available_on"] > clock:
                bt["status"] = "pending"
        charge_objs = list(seeding.charges.values())
        return cls(charge_objs, refund_objs, dispute_objs, payout_objs, bts)

    def collections(self) -> dict[str, Collection]:
        """The list endpoints' collections, newest first."""

        def newest_first(items: Iterable[JSON]) -> tuple[JSON, ...]:
            return tuple(sorted(items, key=sort_key, reverse=True))

        return {
            "balance_transactions": Collection(
                "balance_transaction",
                "/v1/balance_transactions",
                frozenset({"payout", "type", "source", "currency"}),
                newest_first(self.balance_transactions),
            ),
            "charges": Collection(
                "charge", "/v1/charges", frozenset({"payment_intent"}), newest_first(self.charges)
            ),
            "refunds": Collection(
                "refund",
                "/v1/refunds",
                frozenset({"charge", "payment_intent"}),
                newest_first(self.refunds),
            ),
            "disputes": Collection(
                "dispute",
                "/v1/disputes",
                frozenset({"charge", "payment_intent"}),
                newest_first(self.disputes),
            ),
            "payouts": Collection(
                "payout",
                "/v1/payouts",
                frozenset({"status", "arrival_date"}),
                newest_first(self.payouts),
            ),
        }


def _payouts(
    rows: list[dict[str, Any]],
    bts: list[JSON],
    payout_of: dict[str, str | None],
    seen: set[str],
) -> list[JSON]:
    objs: list[JSON] = []
    known = {str(r["payout_id"]) for r in rows}
    for txn_id, payout_id in payout_of.items():
        if payout_id is not None and payout_id not in known:
            raise ValueError(f"balance transaction {txn_id} names unknown payout {payout_id}")
    for row in rows:
        payout_id = str(row["payout_id"])
        unique_id(payout_id, "po_", seen)
        currency = normalise_currency(str(row["currency"])).lower()
        created = unix(row["created"], f"payout {payout_id} created")
        members = [bt for bt in bts if payout_of.get(bt["id"]) == payout_id]
        for bt in members:
            if bt["currency"] != currency:
                raise ValueError(
                    f"payout {payout_id} is in {currency} but {bt['source']} is in {bt['currency']}"
                )
            if bt["created"] > created:
                raise ValueError(f"{bt['source']} is created after its payout {payout_id}")
        explicit = row.get("amount_minor")
        if is_missing(explicit):
            amount = sum(bt["net"] for bt in members)
        else:
            amount = stripe_amount(as_int(explicit, f"payout {payout_id} amount_minor"), currency)
        status = str(row["status"])
        if status not in PAYOUT_STATUSES:
            raise ValueError(f"payout {payout_id} has unknown status {status!r}")
        bt = balance_transaction(
            source=payout_id,
            type_="payout",
            category="payout",
            created=created,
            amount=-amount,
            fee=0,
            fee_description="",
            currency=currency,
            description="STRIPE PAYOUT",
            available_on=created,
        )
        bts.append(bt)
        payout_of[bt["id"]] = payout_id
        objs.append(payout_json(payout_id, row, amount, currency, created, bt["id"]))
    return objs


def _reversal(
    row: Mapping[str, Any], dispute_id: str, charge: JSON, amount: int, created: int
) -> JSON:
    """A won dispute's second balance transaction: the disputed amount back."""
    when = row.get("reversed_at")
    reversed_at = (
        created + int(WON_REVERSAL_AFTER.total_seconds())
        if is_missing(when)
        else unix(when, f"dispute {dispute_id} reversed_at")
    )
    if reversed_at < created:
        raise ValueError(f"dispute {dispute_id} is reversed before it was opened")
    bt = balance_transaction(
        source=dispute_id,
        type_="adjustment",
        category="dispute_reversal",
        created=reversed_at,
        amount=amount,
        fee=0,
        fee_description="",
        currency=charge["currency"],
        description=f"Chargeback reversal for {charge['id']}",
    )
    bt["id"] = balance_transaction_id(dispute_id, reversal=True)
    return bt


def _now(now: datetime | int | None, bts: Sequence[JSON], payouts: Sequence[JSON]) -> int:
    """The sandbox's clock: given, or the newest seeded moment (so a seed is its own 'now')."""
    if now is not None:
        return unix(now, "now")
    return max([bt["created"] for bt in bts] + [p["created"] for p in payouts], default=0)


def _charge_of(charges: Mapping[str, JSON], row: Mapping[str, Any], what: str) -> JSON:
    charge_id = str(row["charge_id"])
    charge = charges.get(charge_id)
    if charge is None:
        raise ValueError(f"{what} is for unknown charge {charge_id}")
    if normalise_currency(str(row["currency"])).lower() != charge["currency"]:
        raise ValueError(
            f"{what} is in {row['currency']} but its charge is in {charge['currency']}"
        )
    return charge


class _Seeding:
    """The objects seeded so far: ids seen, charges, balance transactions and their payouts."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.charges: dict[str, JSON] = {}
        self.bts: list[JSON] = []
        self.payout_of: dict[str, str | None] = {}  # txn id -> payout id

    def _add(self, bt: JSON, payout_id: Any) -> None:
        self.bts.append(bt)
        self.payout_of[bt["id"]] = optional_text(payout_id)

    def charge(self, row: Mapping[str, Any]) -> None:
        """Seed a charge and its balance transaction."""
        charge = charge_json(row)
        unique_id(charge["id"], "ch_", self.seen)
        self.charges[charge["id"]] = charge
        fee = as_int(row["fee_minor"], f"charge {charge['id']} fee_minor")
        bt = balance_transaction(
            source=charge["id"],
            type_="charge",
            category="charge",
            created=charge["created"],
            amount=charge["amount"],
            fee=stripe_amount(fee, charge["currency"]),
            fee_description="Stripe processing fees",
            currency=charge["currency"],
            description=charge["description"],
        )
        charge["balance_transaction"] = bt["id"]
        self._add(bt, row.get("payout_id"))

    def refund(self, row: Mapping[str, Any]) -> JSON:
        """Seed a refund and its balance transaction; the refund object."""
        refund_id = str(row["refund_id"])
        unique_id(refund_id, "re_", self.seen)
        charge = _charge_of(self.charges, row, f"refund {refund_id}")
        amount = money(row, charge["currency"], f"refund {refund_id}")
        created = unix(row["created"], f"refund {refund_id} created")
        bt = balance_transaction(
            source=refund_id,
            type_="refund",
            category="refund",
            created=created,
            amount=-amount,
            fee=0,
            fee_description="",
            currency=charge["currency"],
            description=f"REFUND FOR CHARGE ({charge['description'] or charge['id']})",
        )
        self._add(bt, row.get("payout_id"))
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        return refund_json(refund_id, charge, amount, created, bt["id"])

    def dispute(self, row: Mapping[str, Any]) -> JSON:
        """Seed a dispute and its balance transactions; the dispute object."""
        dispute_id = str(row["dispute_id"])
        unique_id(dispute_id, "dp_", self.seen)
        charge = _charge_of(self.charges, row, f"dispute {dispute_id}")
        amount = money(row, charge["currency"], f"dispute {dispute_id}")
        fee = stripe_amount(
            as_int(row["fee_minor"], f"dispute {dispute_id} fee_minor"), charge["currency"]
        )
        status = str(row["status"])
        if status not in DISPUTE_STATUSES:
            raise ValueError(f"dispute {dispute_id} has unknown status {status!r}")
        created = unix(row["created"], f"dispute {dispute_id} created")
        bt = balance_transaction(
            source=dispute_id,
            type_="adjustment",
            category="dispute",
            created=created,
            amount=-amount,
            fee=fee,
            fee_description="Dispute fee",
            currency=charge["currency"],
            description=f"Chargeback withdrawal for {charge['id']}",
        )
        self._add(bt, row.get("payout_id"))
        charge["disputed"] = True
        dispute_bts = [bt]
        if status == "won":
            reversal = _reversal(row, dispute_id, charge, amount, created)
            self._add(reversal, row.get("reversal_payout_id"))
            dispute_bts.append(reversal)
        return dispute_json(dispute_id, charge, amount, created, status, dispute_bts)
