"""Every sandbox provider seeded from one synthetic world (`connectors.sandbox.synth.World`).

`SandboxWorld(world)` turns the world's §4.3 frames into the state of each fake provider, so the
real connectors read the world back over HTTP: WHMCS, GoCardless Bank Account Data, Stripe and
GoCardless Payments, plus a Vault holding the tenant's (randomly generated) sandbox credentials.
`build_app()` composes them on one Starlette app; `tenant_settings(base_url)` and
`vault_document()` say how a tenant points at it.

The world is served AS OF a day (`as_of`, default today in UTC; see `world_as_of`): what happens
after it has not happened yet. Lines booked later are left out, payouts are served only once every
line they pay out is, a payout arriving later is `in_transit`, and a WHMCS payment recorded later is
not recorded yet, so its invoice is open again with its balance back. `SandboxWorld.world` is that
world, the one the providers serve and the one to compare with.

Mapping rules (world frame -> provider):

* WHMCS: `invoices` and `recorded` as given, with `opening_payments=True`: an invoice whose balance
  is below its total without a recorded payment (paid before the world began) gets one earlier
  payment (transid `sandbox-opening-<invoice id>`), listed by `whmcs.opening_payment_ids()`.
* Bank (GoCardless Bank Account Data): one `SandboxAccount` per world bank account (the `bank`
  lines' `account_id`, an IBAN): id `uuid5(NAMESPACE_URL, "recon-sandbox/bank-account/<IBAN>")`,
  the IBAN, the account's most frequent currency (lines in other currencies stay on it, as on a
  multi-currency account), and a reference style taken in turn from `REFERENCE_STYLES` (the first
  account's references come back exactly as the world wrote them). Every line is booked, except
  the lines of each account's last `pending_days` days: they are pending, shown under another id
  (`pending-<id>`), and `book_pending()` books them under their own id, as banks that change the
  id on booking do (so the content key, not the id, keeps them one row). `account_ids` maps the
  sandbox account ids back to the world's.
* Stripe: a `ch_` line with a positive amount is a charge (created on its day at a deterministic
  time between 06:00 and 18:00 UTC); its fee is minus the sum of its `<charge id>:fee` lines.
  A negative `txn_` line whose reference names a charge is a refund, or a dispute when the
  reference says "dispute" or "chargeback", with the amount positive as Stripe states it and the
  id `re_`/`dp_` + the world id without `txn_` (`world_ids` maps them back). Disputes have no
  dispute fee (the world has none) and status `lost`. Payout membership comes from
  `payout_lines`; a payout is created at 20:00 UTC two days before it arrives (later if a member
  is), with the world's DECLARED amount as its explicit amount, so a payout whose breakdown is
  off stays off.
* GoCardless Payments: a positive `gocardless` line is a payment charged on its day (created
  three days earlier), the reference as its description, the payer as its customer (an empty
  payer becomes the sandbox's "Unknown Customer"), `paid_out` in its payout or `confirmed` when in
  none. A payout's `deducted_fees` is minus the sum of its `:fee` lines; its status is `paid`, or
  `pending` for the world's `in_transit`.

What a sandbox cannot represent (listed per run in `omitted` and `payout_gaps`):

* GoCardless refunds and disputes: the Payments sandbox has no refunds or chargebacks and pays
  out exactly payments less fees, so these lines are left out (`omitted`) and their payout is
  served at payments less fees, which differs from the world's declared amount (`payout_gaps`);
  the bank credit of that payout stays as the world has it.
* GoCardless payouts declared off (declared amount not equal to their breakdown): served at their
  breakdown (`payout_gaps`), for the same reason. Stripe keeps them off.
* A GoCardless payout without any payment (only refunds or disputes): not served (`payout_gaps`).
* A Stripe or GoCardless line of no recognised shape (a negative line naming no known charge, a
  fee of an unknown charge): left out (`omitted`).
* A Stripe fee is part of its charge's balance transaction, so it is paid out with the charge even
  if the world put the `:fee` line in another payout.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from hashlib import sha256
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from starlette.applications import Starlette

from connectors.sandbox.app import build_app
from connectors.sandbox.faults import FaultPlan
from connectors.sandbox.gocardless import (
    DAILY_LIMIT,
    GoCardlessState,
    ReferenceStyle,
    SandboxAccount,
)
from connectors.sandbox.gocardless_payments import PREFIX as PAYMENTS_PREFIX
from connectors.sandbox.gocardless_payments import GoCardlessPaymentsState
from connectors.sandbox.stripe import StripeState
from connectors.sandbox.synth import SynthConfig, World, generate
from connectors.sandbox.vault import VaultState
from connectors.sandbox.whmcs import WhmcsState
from recon import secrets as secret_specs
from recon.money import format_amount, to_minor

PROVIDERS = ("whmcs", "stripe", "gocardless", "gocardless_payments")
"""The providers whose requests a `FaultPlan` of `SandboxWorld.faults` can disturb."""

REFERENCE_STYLES = (
    ReferenceStyle.UNSTRUCTURED,
    ReferenceStyle.SPARKASSE,
    ReferenceStyle.STRUCTURED_OBJECT,
    ReferenceStyle.UNSTRUCTURED_ARRAY,
    ReferenceStyle.ABN_AMRO,
    ReferenceStyle.FINNISH,
    ReferenceStyle.STRUCTURED,
    ReferenceStyle.ADDITIONAL_INFORMATION,
)
"""Reference styles given to the world's bank accounts in turn (sorted by IBAN)."""

STRIPE_ACCOUNT_ID = "acct_1SandboxRecon00"
CREDITOR_ID = "CR000SANDBOX01"
OWNER_NAME = "Sandbox Hosting Ltd"
PENDING_PREFIX = "pending-"
OMITTED_COLUMNS = ("transaction_id", "source", "amount_minor", "currency", "reason")
PAYOUT_GAP_COLUMNS = (
    "payout_id",
    "source",
    "currency",
    "world_amount_minor",
    "served_amount_minor",
    "reason",
)

_ALNUM = string.ascii_letters + string.digits
_CHARGE_REF = re.compile(r"\b(ch_[0-9A-Za-z]+)")
_DISPUTE_WORDS = re.compile(r"(?i)dispute|chargeback")
_DAY = 86_400

_NO_GC_REFUNDS = (
    "the GoCardless Payments sandbox has no refunds or chargebacks (a payout there is exactly "
    "its payments less fees)"
)


# -- credentials -----------------------------------------------------------------------------------


def _token(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _uuid() -> str:
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


@dataclass(frozen=True)
class SandboxCredentials:
    """The sandbox providers' credentials and the Vault AppRole of the app (never printed)."""

    whmcs_identifier: str = field(repr=False)
    whmcs_secret: str = field(repr=False)
    gocardless_secret_id: str = field(repr=False)
    gocardless_secret_key: str = field(repr=False)
    gocardless_payments_access_token: str = field(repr=False)
    stripe_secret_key: str = field(repr=False)
    stripe_webhook_secret: str = field(repr=False)
    gocardless_webhook_secret: str = field(repr=False)
    vault_role_id: str = field(repr=False)
    vault_secret_id: str = field(repr=False)
    audit_chain_key: str = field(repr=False)
    """The installation's audit chain key, random per sandbox world (the sandbox is test
    infrastructure standing in for the operator's Vault; the application never makes a key)."""
    audit_export_signing_key: str = field(repr=False, default="")
    """The key that signs auditor exports, random per sandbox world like the chain key."""

    @classmethod
    def generate(cls) -> SandboxCredentials:
        """Fresh random credentials (from `secrets`), shaped like each provider's."""
        return cls(
            whmcs_identifier=_token(32),
            whmcs_secret=_token(32),
            gocardless_secret_id=_uuid(),
            gocardless_secret_key=secrets.token_hex(64),
            gocardless_payments_access_token="sandbox_" + _token(40),
            stripe_secret_key="sk_test_" + _token(48),
            stripe_webhook_secret="whsec_" + _token(32),
            gocardless_webhook_secret=_token(40),
            vault_role_id=_uuid(),
            vault_secret_id=_uuid(),
            audit_chain_key=secrets.token_hex(32),
            audit_export_signing_key=secrets.token_hex(32),
        )


# -- the world as of a day -------------------------------------------------------------------------


def world_as_of(world: World, day: date) -> World:
    """The world as it stands at the end of `day`: nothing dated later has happened yet.

    Transactions booked after `day` are dropped; a payout is kept only if every line it pays out
    is (or, without lines, if it arrives by `day`), and one arriving after `day` is `in_transit`.
    Invoices issued after `day` are dropped; a WHMCS payment recorded after `day` is dropped and
    its invoice gets the amount back on its balance (`Paid` becomes `Unpaid` when something is
    due again). The truth follows: a payment no longer confirms a recorded one that was dropped.
    A world with nothing after `day` is returned as it is.
    """
    cut = day.isoformat()
    if _nothing_after(world, cut):
        return world
    tx = world.transactions
    kept_tx = tx[_text(tx, "booked_on") <= cut]
    kept_ids = set(_text(kept_tx, "transaction_id"))

    lines, payouts = world.payout_lines, world.payouts
    line_payouts = _text(lines, "payout_id")
    line_kept = pd.Series(_member(_text(lines, "transaction_id"), kept_ids))
    complete = line_kept.groupby(line_payouts).all() if len(lines) else pd.Series(dtype=bool)
    with_lines = set(complete.index)
    whole = set(complete.index[complete.to_numpy(dtype=bool)])
    payout_ids = _text(payouts, "payout_id")
    arrival = _text(payouts, "arrival_on")
    keep_payout = _member(payout_ids, whole) | (~_member(payout_ids, with_lines) & (arrival <= cut))
    kept_payouts = payouts[keep_payout].copy()
    status = _text(kept_payouts, "status")
    status[_text(kept_payouts, "arrival_on") > cut] = "in_transit"
    kept_payouts["status"] = status
    kept_lines = lines[_member(line_payouts, set(_text(kept_payouts, "payout_id")))]

    invoices = world.invoices[_text(world.invoices, "issued_on") <= cut].copy()
    invoice_ids = set(_text(invoices, "invoice_id"))
    recorded = world.recorded[_member(_text(world.recorded, "invoice_id"), invoice_ids)]
    late = _text(recorded, "recorded_on") > cut
    reverted = _revert(invoices, recorded[late])
    kept_recorded = recorded[~late]

    truth = world.truth
    truth_invoices = _text(truth, "invoice_id")
    keep_truth = _member(_text(truth, "transaction_id"), kept_ids) & _member(
        truth_invoices, invoice_ids
    )
    truth = truth[keep_truth].copy()
    truth["confirms"] = truth["confirms"].to_numpy(dtype=bool) & ~_member(
        truth_invoices[keep_truth], reverted
    )
    kept_txn_ids = set(_text(kept_recorded, "whmcs_txn_id"))
    cases, unbacked = world.cases, world.unbacked
    return replace(
        world,
        invoices=invoices.reset_index(drop=True),
        transactions=kept_tx.reset_index(drop=True),
        recorded=kept_recorded.reset_index(drop=True),
        payouts=kept_payouts.reset_index(drop=True),
        payout_lines=kept_lines.reset_index(drop=True),
        truth=truth.reset_index(drop=True),
        cases=cases[_member(_text(cases, "transaction_id"), kept_ids)].reset_index(drop=True),
        unbacked=unbacked[_member(_text(unbacked, "whmcs_txn_id"), kept_txn_ids)].reset_index(
            drop=True
        ),
    )


def _text(frame: pd.DataFrame, column: str) -> npt.NDArray[np.object_]:
    """A column as a numpy array of Python strings (fast to compare and to look up)."""
    return np.asarray(frame[column].astype(str).tolist() if len(frame) else [], dtype=object)


def _member(values: npt.NDArray[np.object_], wanted: set[str]) -> npt.NDArray[np.bool_]:
    return np.fromiter((v in wanted for v in values), dtype=bool, count=len(values))


def _nothing_after(world: World, cut: str) -> bool:
    def latest(frame: pd.DataFrame, column: str) -> str:
        values = _text(frame, column)
        return str(values.max()) if len(values) else ""

    if (
        max(
            latest(world.transactions, "booked_on"),
            latest(world.invoices, "issued_on"),
            latest(world.recorded, "recorded_on"),
        )
        > cut
    ):
        return False
    late = _text(world.payouts, "arrival_on") > cut
    return bool((_text(world.payouts, "status")[late] == "in_transit").all())


def _revert(invoices: pd.DataFrame, late: pd.DataFrame) -> set[str]:
    """Give invoices back the amounts of payments recorded too late; returns their ids."""
    if late.empty:
        return set()
    back: dict[str, int] = {}
    for invoice_id, amount, currency in zip(
        _text(late, "invoice_id"), _text(late, "amount"), _text(late, "currency"), strict=True
    ):
        back[invoice_id] = back.get(invoice_id, 0) + to_minor(amount, currency)
    balances, statuses = _text(invoices, "balance"), _text(invoices, "status")
    currencies = _text(invoices, "currency")
    for row, invoice_id in enumerate(_text(invoices, "invoice_id")):
        if invoice_id not in back:
            continue
        balance = to_minor(balances[row], currencies[row]) + back[invoice_id]
        balances[row] = format_amount(balance, currencies[row])
        if statuses[row] == "Paid" and balance > 0:
            statuses[row] = "Unpaid"
    invoices["balance"] = pd.Series(balances, index=invoices.index, dtype=invoices["balance"].dtype)
    invoices["status"] = pd.Series(statuses, index=invoices.index, dtype=invoices["status"].dtype)
    return set(back)


def world_ending(day: date, *, n_invoices: int, days: int, seed: int) -> World:
    """A world whose invoices are issued over the `days` days up to `day`, as of `day`."""
    if n_invoices < 1 or days < 1:
        raise ValueError("a world needs at least one invoice and one day")
    start = day - timedelta(days=days - 1)
    config = SynthConfig(n_invoices=n_invoices, seed=seed, start=start.isoformat(), days=days)
    return world_as_of(generate(config), day)


# -- seeds -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BankSeed:
    """The GoCardless Bank Account Data seed: accounts, lines, and which lines are pending."""

    accounts: list[SandboxAccount]
    transactions: pd.DataFrame
    account_ids: dict[str, str]
    """Sandbox account id (UUID) -> the world's account id (IBAN)."""
    pending: list[str]
    """World ids of the lines seeded pending (`book_pending` books them)."""


@dataclass(frozen=True)
class StripeSeed:
    """The Stripe sandbox seed frames and what the world holds that they do not."""

    charges: pd.DataFrame
    refunds: pd.DataFrame
    disputes: pd.DataFrame
    payouts: pd.DataFrame
    world_ids: dict[str, str]
    omitted: list[dict[str, Any]]


@dataclass(frozen=True)
class PaymentsSeed:
    """The GoCardless Payments sandbox seed frames and what they cannot hold."""

    payments: pd.DataFrame
    payouts: pd.DataFrame
    omitted: list[dict[str, Any]]
    payout_gaps: list[dict[str, Any]]


def account_uuid(iban: str) -> str:
    """The sandbox (GoCardless) account id of a world bank account."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"recon-sandbox/bank-account/{iban}"))


def bank_seed(world: World, *, owner_name: str = OWNER_NAME, pending_days: int = 3) -> BankSeed:
    """One account per world bank account; the lines of its last `pending_days` days pending."""
    bank = world.transactions[world.transactions["source"].astype(str) == "bank"]
    iban_of = bank["account_id"].astype(str)
    if (iban_of == "").any():
        raise ValueError("every bank line of the world needs an account_id (its IBAN)")
    accounts: list[SandboxAccount] = []
    account_ids: dict[str, str] = {}
    frames: list[pd.DataFrame] = []
    pending: list[str] = []
    for n, iban in enumerate(sorted(set(iban_of))):
        lines = bank[iban_of == iban]
        counts = lines["currency"].astype(str).value_counts()
        currency = min(counts.index[counts == counts.max()])
        account_id = account_uuid(iban)
        accounts.append(
            SandboxAccount(
                account_id=account_id,
                iban=iban,
                currency=currency,
                institution_id=f"SANDBOXBANK-{iban[:2].upper()}_SBX{iban[:2].upper()}XXX",
                owner_name=owner_name,
                reference_style=REFERENCE_STYLES[n % len(REFERENCE_STYLES)],
            )
        )
        account_ids[account_id] = iban
        booked = lines["booked_on"].astype(str)
        last = date.fromisoformat(booked.max())
        is_pending = booked > (last - timedelta(days=pending_days)).isoformat()
        ids = lines["transaction_id"].astype(str)
        pending += list(ids[is_pending])
        frames.append(
            pd.DataFrame(
                {
                    "transaction_id": ids.to_numpy(dtype=object),
                    "account_id": account_id,
                    "booked_on": booked.to_numpy(dtype=object),
                    "amount": lines["amount"].astype(str).to_numpy(dtype=object),
                    "currency": lines["currency"].astype(str).to_numpy(dtype=object),
                    "counterparty": lines["counterparty"].astype(str).to_numpy(dtype=object),
                    "reference": lines["reference"].astype(str).to_numpy(dtype=object),
                    "status": ["pending" if p else "booked" for p in is_pending],
                    "pending_id": [
                        PENDING_PREFIX + i if p else None
                        for i, p in zip(ids, is_pending, strict=True)
                    ],
                }
            )
        )
    columns = [
        "transaction_id", "account_id", "booked_on", "amount", "currency", "counterparty",
        "reference", "status", "pending_id",
    ]  # fmt: skip
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return BankSeed(accounts, frame, account_ids, pending)


def _midnight(day: str) -> int:
    return int(datetime.combine(date.fromisoformat(day[:10]), time(), UTC).timestamp())


def _daytime(object_id: str) -> int:
    """A deterministic time of day between 06:00 and 18:00 (seconds), from an id."""
    return 6 * 3600 + zlib.crc32(object_id.encode()) % (12 * 3600)


def _omission(row: Mapping[str, Any], minor: int, reason: str) -> dict[str, Any]:
    return {
        "transaction_id": str(row["transaction_id"]),
        "source": str(row["source"]),
        "amount_minor": minor,
        "currency": str(row["currency"]),
        "reason": reason,
    }


def _payout_of(world: World, source: str) -> dict[str, str]:
    payouts = world.payouts[world.payouts["source"].astype(str) == source]
    lines = world.payout_lines[
        world.payout_lines["payout_id"].astype(str).isin(set(payouts["payout_id"].astype(str)))
    ]
    return dict(
        zip(lines["transaction_id"].astype(str), lines["payout_id"].astype(str), strict=True)
    )


def _rows(world: World, source: str) -> list[dict[str, Any]]:
    tx = world.transactions
    return [
        {str(k): v for k, v in row.items()}
        for row in tx[tx["source"].astype(str) == source].to_dict("records")
    ]


def _renamed(prefix: str, world_id: str) -> str:
    if world_id.startswith("txn_") and len(world_id) > 4:
        return prefix + world_id[4:]
    return prefix + sha256(world_id.encode()).hexdigest()[:24]


def stripe_seed(world: World) -> StripeSeed:
    """Stripe's charges, refunds, disputes and payouts from the world's `stripe` lines."""
    payout_of = _payout_of(world, "stripe")
    rows = _rows(world, "stripe")
    minor = {str(r["transaction_id"]): to_minor(str(r["amount"]), str(r["currency"])) for r in rows}
    charges: dict[str, dict[str, Any]] = {}
    for row in rows:
        tid = str(row["transaction_id"])
        if tid.startswith("ch_") and ":" not in tid and minor[tid] > 0:
            charges[tid] = {
                "charge_id": tid,
                "created": _midnight(str(row["booked_on"])) + _daytime(tid),
                "amount_minor": minor[tid],
                "currency": str(row["currency"]),
                "fee_minor": 0,
                "description": str(row["reference"]),
                "customer_name": str(row["counterparty"]) or None,
                "payout_id": payout_of.get(tid),
            }
    refunds: list[dict[str, Any]] = []
    disputes: list[dict[str, Any]] = []
    world_ids: dict[str, str] = {}
    omitted: list[dict[str, Any]] = []
    for row in rows:
        tid, amount = str(row["transaction_id"]), minor[str(row["transaction_id"])]
        if tid in charges:
            continue
        if tid.endswith(":fee") and tid[: -len(":fee")] in charges:
            charges[tid[: -len(":fee")]]["fee_minor"] -= amount
            continue
        named = _CHARGE_REF.findall(str(row["reference"]))
        charge_id = next((c for c in named if c in charges), None)
        if charge_id is None or amount >= 0:
            omitted.append(_omission(row, amount, "a Stripe line of no recognised shape"))
            continue
        dispute = bool(_DISPUTE_WORDS.search(str(row["reference"])))
        object_id = _renamed("dp_" if dispute else "re_", tid)
        world_ids[object_id] = tid
        common = {
            "charge_id": charge_id,
            "created": _midnight(str(row["booked_on"])) + _daytime(tid),
            "amount_minor": -amount,
            "currency": str(row["currency"]),
            "payout_id": payout_of.get(tid),
        }
        if dispute:
            disputes.append({"dispute_id": object_id, **common, "fee_minor": 0, "status": "lost"})
        else:
            refunds.append({"refund_id": object_id, **common})
    members: dict[str, int] = {}
    for item in [*charges.values(), *refunds, *disputes]:
        if item["payout_id"] is not None:
            members[item["payout_id"]] = max(members.get(item["payout_id"], 0), item["created"])
    payouts: list[dict[str, Any]] = []
    stripe_payouts = world.payouts[world.payouts["source"].astype(str) == "stripe"]
    for po in stripe_payouts.to_dict("records"):
        payout_id, arrival = str(po["payout_id"]), str(po["arrival_on"])
        created = _midnight(arrival) - 2 * _DAY + 20 * 3600
        payouts.append(
            {
                "payout_id": payout_id,
                "created": max(created, members.get(payout_id, 0) + 60),
                "arrival_on": arrival[:10],
                "currency": str(po["currency"]),
                "status": str(po["status"]),
                "amount_minor": to_minor(str(po["amount"]), str(po["currency"])),
            }
        )
    return StripeSeed(
        charges=_frame(
            list(charges.values()),
            (
                "charge_id",
                "created",
                "amount_minor",
                "currency",
                "fee_minor",
                "description",
                "customer_name",
                "payout_id",
            ),
        ),
        refunds=_frame(
            refunds, ("refund_id", "charge_id", "created", "amount_minor", "currency", "payout_id")
        ),
        disputes=_frame(
            disputes,
            (
                "dispute_id",
                "charge_id",
                "created",
                "amount_minor",
                "currency",
                "fee_minor",
                "status",
                "payout_id",
            ),
        ),
        payouts=_frame(
            payouts,
            ("payout_id", "created", "arrival_on", "currency", "status", "amount_minor"),
        ),
        world_ids=world_ids,
        omitted=omitted,
    )


def payments_seed(world: World) -> PaymentsSeed:
    """GoCardless Payments' payments and payouts from the world's `gocardless` lines."""
    payout_of = _payout_of(world, "gocardless")
    rows = _rows(world, "gocardless")
    payments: list[dict[str, Any]] = []
    omitted: list[dict[str, Any]] = []
    gross: dict[str, int] = {}
    fees: dict[str, int] = {}
    fee_rows: dict[str, list[tuple[dict[str, Any], int]]] = {}
    payment_ids = {
        str(r["transaction_id"])
        for r in rows
        if not str(r["transaction_id"]).endswith(":fee") and not str(r["amount"]).startswith("-")
    }
    for row in rows:
        tid = str(row["transaction_id"])
        amount = to_minor(str(row["amount"]), str(row["currency"]))
        payout_id = payout_of.get(tid)
        if tid in payment_ids and amount > 0:
            charged = date.fromisoformat(str(row["booked_on"])[:10])
            created = datetime.combine(charged - timedelta(days=3), time(), UTC)
            payments.append(
                {
                    "payment_id": tid,
                    "created_at": created + timedelta(seconds=_daytime(tid)),
                    "charge_date": charged.isoformat(),
                    "amount_minor": amount,
                    "currency": str(row["currency"]),
                    "description": str(row["reference"]),
                    "reference": "",
                    "status": "paid_out" if payout_id else "confirmed",
                    "payout_id": payout_id or "",
                    "customer_name": str(row["counterparty"]),
                }
            )
            if payout_id:
                gross[payout_id] = gross.get(payout_id, 0) + amount
        elif tid.endswith(":fee") and tid[: -len(":fee")] in payment_ids and amount <= 0:
            if payout_id:
                fees[payout_id] = fees.get(payout_id, 0) - amount
                fee_rows.setdefault(payout_id, []).append((row, amount))
            else:
                omitted.append(_omission(row, amount, "a GoCardless fee paid out in no payout"))
        elif amount < 0:
            omitted.append(_omission(row, amount, _NO_GC_REFUNDS))
        else:
            omitted.append(_omission(row, amount, "a GoCardless line of no recognised shape"))
    payouts: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    gc_payouts = world.payouts[world.payouts["source"].astype(str) == "gocardless"]
    for po in gc_payouts.to_dict("records"):
        payout_id, currency = str(po["payout_id"]), str(po["currency"])
        declared = to_minor(str(po["amount"]), currency)
        gap = {
            "payout_id": payout_id,
            "source": "gocardless",
            "currency": currency,
            "world_amount_minor": declared,
        }
        if payout_id not in gross:
            gaps.append(
                {
                    **gap,
                    "served_amount_minor": None,
                    "reason": f"no payment in it; {_NO_GC_REFUNDS}",
                }
            )
            omitted += [
                _omission(fee_row, minor, "a fee of a GoCardless payout that is not served")
                for fee_row, minor in fee_rows.get(payout_id, [])
            ]
            continue
        served = gross[payout_id] - fees.get(payout_id, 0)
        if served != declared:
            gaps.append(
                {
                    **gap,
                    "served_amount_minor": served,
                    "reason": f"served as its payments less fees; {_NO_GC_REFUNDS}",
                }
            )
        payouts.append(
            {
                "payout_id": payout_id,
                "arrival_date": str(po["arrival_on"])[:10],
                "amount_minor": served,
                "deducted_fees": fees.get(payout_id, 0),
                "currency": currency,
                "status": "pending" if str(po["status"]) == "in_transit" else "paid",
            }
        )
    return PaymentsSeed(
        payments=_frame(
            payments,
            (
                "payment_id",
                "created_at",
                "charge_date",
                "amount_minor",
                "currency",
                "description",
                "reference",
                "status",
                "payout_id",
                "customer_name",
            ),
        ),
        payouts=_frame(
            payouts,
            ("payout_id", "arrival_date", "amount_minor", "deducted_fees", "currency", "status"),
        ),
        omitted=omitted,
        payout_gaps=gaps,
    )


def _frame(rows: list[dict[str, Any]], columns: Iterable[str]) -> pd.DataFrame:
    """Rows as an object frame (ints stay Python ints, None stays None)."""
    names = list(columns)
    return pd.DataFrame(
        {name: pd.Series([r.get(name) for r in rows], dtype=object) for name in names}
    )


# -- the sandbox -----------------------------------------------------------------------------------


class SandboxWorld:
    """Every fake provider seeded from one world, with fresh credentials; see the module doc.

    The provider states are built on first use (`whmcs`, `stripe`, `gocardless`,
    `gocardless_payments`, `vault`); `faults` holds each provider's `FaultPlan` (seeded from
    `fault_seed`) so that faults can be added before or while serving.
    """

    def __init__(
        self,
        world: World,
        *,
        tenant: str = "demo",
        as_of: date | None = None,
        credentials: SandboxCredentials | None = None,
        owner_name: str = OWNER_NAME,
        pending_days: int = 3,
        bank_daily_limit: int = DAILY_LIMIT,
        vault_mount: str = "secret",
        vault_path_prefix: str = "recon",
        fault_seed: int = 0,
    ) -> None:
        self.source_world = world
        self.as_of = as_of or datetime.now(UTC).date()
        self.world = world_as_of(world, self.as_of)
        self.tenant = tenant
        self.credentials = credentials or SandboxCredentials.generate()
        self.owner_name = owner_name
        self.pending_days = pending_days
        self.bank_daily_limit = bank_daily_limit
        self.vault_mount = vault_mount
        self.vault_path_prefix = vault_path_prefix.strip("/")
        self.stripe_account_id = STRIPE_ACCOUNT_ID
        self.creditor_id = CREDITOR_ID
        self.faults = {
            name: FaultPlan(seed=fault_seed * 16 + n) for n, name in enumerate(PROVIDERS)
        }

    # -- seeds ---------------------------------------------------------------------------------

    @cached_property
    def bank(self) -> BankSeed:
        """The bank accounts and lines served by GoCardless Bank Account Data."""
        return bank_seed(self.world, owner_name=self.owner_name, pending_days=self.pending_days)

    @cached_property
    def stripe_seed(self) -> StripeSeed:
        """The Stripe seed frames."""
        return stripe_seed(self.world)

    @cached_property
    def payments_seed(self) -> PaymentsSeed:
        """The GoCardless Payments seed frames."""
        return payments_seed(self.world)

    @property
    def account_ids(self) -> dict[str, str]:
        """Sandbox bank account id (UUID) -> the world's account id (IBAN)."""
        return dict(self.bank.account_ids)

    @property
    def world_ids(self) -> dict[str, str]:
        """Sandbox object ids that differ from the world's (Stripe `re_`/`dp_`) -> world ids."""
        return dict(self.stripe_seed.world_ids)

    @property
    def omitted(self) -> pd.DataFrame:
        """World transactions no provider serves, with the reason (`OMITTED_COLUMNS`)."""
        rows = self.stripe_seed.omitted + self.payments_seed.omitted
        return _frame(rows, OMITTED_COLUMNS)

    @property
    def payout_gaps(self) -> pd.DataFrame:
        """World payouts served with another amount, or not at all (`PAYOUT_GAP_COLUMNS`)."""
        return _frame(self.payments_seed.payout_gaps, PAYOUT_GAP_COLUMNS)

    # -- provider states -----------------------------------------------------------------------

    @cached_property
    def whmcs(self) -> WhmcsState:
        """The WHMCS sandbox."""
        return WhmcsState(
            self.world.invoices,
            self.world.recorded,
            identifier=self.credentials.whmcs_identifier,
            secret=self.credentials.whmcs_secret,
            opening_payments=True,
            faults=self.faults["whmcs"],
        )

    @cached_property
    def gocardless(self) -> GoCardlessState:
        """The GoCardless Bank Account Data sandbox."""
        return GoCardlessState(
            secret_id=self.credentials.gocardless_secret_id,
            secret_key=self.credentials.gocardless_secret_key,
            accounts=self.bank.accounts,
            transactions=self.bank.transactions,
            daily_limit=self.bank_daily_limit,
            faults=self.faults["gocardless"],
        )

    @cached_property
    def stripe(self) -> StripeState:
        """The Stripe sandbox."""
        seed = self.stripe_seed
        return StripeState(
            seed.charges,
            seed.refunds,
            seed.disputes,
            seed.payouts,
            api_key=self.credentials.stripe_secret_key,
            account_id=self.stripe_account_id,
            faults=self.faults["stripe"],
        )

    @cached_property
    def gocardless_payments(self) -> GoCardlessPaymentsState:
        """The GoCardless Payments sandbox."""
        seed = self.payments_seed
        return GoCardlessPaymentsState(
            seed.payments,
            seed.payouts,
            access_token=self.credentials.gocardless_payments_access_token,
            creditor_id=self.creditor_id,
            faults=self.faults["gocardless_payments"],
        )

    @cached_property
    def vault(self) -> VaultState:
        """A Vault holding `vault_document()` at `<prefix>/tenants/<tenant>`, and the AppRole."""
        vault = VaultState(mounts=(self.vault_mount,))
        vault.put_secret(self.vault_path, self.vault_document(), mount=self.vault_mount)
        vault.put_secret(
            self.global_vault_path, self.global_vault_document(), mount=self.vault_mount
        )
        vault.add_approle(
            f"recon-{self.tenant}",
            role_id=self.credentials.vault_role_id,
            secret_id=self.credentials.vault_secret_id,
            policies=("default", f"recon-{self.tenant}"),
        )
        return vault

    @property
    def vault_path(self) -> str:
        """Where the tenant's secrets live in the KV v2 mount."""
        return f"{self.vault_path_prefix}/tenants/{self.tenant}"

    @property
    def global_vault_path(self) -> str:
        """Where the installation's global secrets live in the KV v2 mount."""
        return f"{self.vault_path_prefix}/global"

    def build_app(self) -> Starlette:
        """The sandbox app: every provider under its real paths, and the Vault."""
        return build_app(
            vault=self.vault,
            whmcs=self.whmcs,
            stripe=self.stripe,
            gocardless=self.gocardless,
            gocardless_payments=self.gocardless_payments,
        )

    # -- what a tenant needs -------------------------------------------------------------------

    def vault_document(self) -> dict[str, str]:
        """The tenant's secrets under the names `recon.secrets` resolves."""
        c = self.credentials
        return {
            secret_specs.WHMCS_API_IDENTIFIER.name: c.whmcs_identifier,
            secret_specs.WHMCS_API_SECRET.name: c.whmcs_secret,
            secret_specs.GOCARDLESS_SECRET_ID.name: c.gocardless_secret_id,
            secret_specs.GOCARDLESS_SECRET_KEY.name: c.gocardless_secret_key,
            secret_specs.GOCARDLESS_PAYMENTS_TOKEN.name: c.gocardless_payments_access_token,
            secret_specs.STRIPE_SECRET_KEY.name: c.stripe_secret_key,
            secret_specs.STRIPE_WEBHOOK_SECRET.name: c.stripe_webhook_secret,
            secret_specs.GOCARDLESS_WEBHOOK_SECRET.name: c.gocardless_webhook_secret,
        }

    def global_vault_document(self) -> dict[str, str]:
        """The installation's global secrets the sandbox Vault holds: the audit chain key and
        the export signing key."""
        document = {secret_specs.AUDIT_CHAIN_KEY.name: self.credentials.audit_chain_key}
        if self.credentials.audit_export_signing_key:
            document[secret_specs.AUDIT_EXPORT_SIGNING_KEY.name] = (
                self.credentials.audit_export_signing_key
            )
        return document

    def tenant_settings(self, base_url: str) -> dict[str, Any]:
        """`recon.tenants.TenantSettings` fields that point a tenant at this sandbox."""
        root = base_url.rstrip("/")
        return {
            "whmcs": {
                "mode": "api",
                "base_url": root,
                "invoice_number_format": self.world.config.invoice_number_format,
            },
            "stripe": {"enabled": True, "api_base": root, "account_id": self.stripe_account_id},
            "gocardless": {
                "enabled": True,
                "base_url": root,
                "account_ids": [a.account_id for a in self.bank.accounts],
            },
            "gocardless_payments": {
                "enabled": True,
                "base_url": root + PAYMENTS_PREFIX,
                "creditor_id": self.creditor_id,
            },
            "webhooks_enabled": True,
        }

    def connection_document(self, base_url: str) -> dict[str, Any]:
        """Everything a developer needs to point a tenant at the running sandbox (secrets too)."""
        c = self.credentials
        return {
            "base_url": base_url.rstrip("/"),
            "tenant": self.tenant,
            "as_of": self.as_of.isoformat(),
            "tenant_settings": self.tenant_settings(base_url),
            "vault": {
                "addr": base_url.rstrip("/"),
                "mount": self.vault_mount,
                "path": self.vault_path,
                "role_id": c.vault_role_id,
                "secret_id": c.vault_secret_id,
            },
            "environment": {
                "RECON_VAULT_ADDR": base_url.rstrip("/"),
                "RECON_VAULT_MOUNT": self.vault_mount,
                "RECON_VAULT_PATH_PREFIX": self.vault_path_prefix,
                "RECON_VAULT_ROLE_ID": c.vault_role_id,
                "RECON_VAULT_SECRET_ID": c.vault_secret_id,
            },
            "secrets": self.vault_document(),
            "bank_accounts": self.account_ids,
        }

    # -- controls ------------------------------------------------------------------------------

    def book_pending(self) -> int:
        """Book every pending bank line (it changes id on booking); returns how many."""
        booked = 0
        for transaction_id in self.bank.pending:
            try:
                self.gocardless.book(transaction_id)
            except KeyError:
                continue  # already booked
            booked += 1
        return booked

    def summary(self) -> dict[str, int]:
        """How much of the world each provider serves (for the serve banner)."""
        return {
            "invoices": len(self.world.invoices),
            "recorded payments": len(self.world.recorded),
            "bank accounts": len(self.bank.accounts),
            "bank lines": len(self.bank.transactions),
            "pending bank lines": len(self.bank.pending),
            "Stripe charges": len(self.stripe_seed.charges),
            "Stripe payouts": len(self.stripe_seed.payouts),
            "GoCardless payments": len(self.payments_seed.payments),
            "GoCardless payouts": len(self.payments_seed.payouts),
            "lines not served": len(self.omitted),
        }
