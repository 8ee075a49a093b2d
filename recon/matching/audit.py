"""The audit direction: payments WHMCS has recorded, checked against money that arrived.

A transaction confirms a recorded payment when it carries the same transaction id (`transid`:
Stripe charge, GoCardless payment), or when it names the same invoice (reference or payer) with
the same amount within a few days, through the gateway whose money it is. A confirmed payment is
reported with a `recorded_*` rule and is never applied a second time: WHMCS has already counted
it, so it does not consume open balance. A recorded payment no money confirms is unbacked.

It is judged unbacked only when the money of its gateway's source covers the days around it:
this run's money and the evidence (money outside the window that earlier runs decided), whose
transaction ids also back a recorded payment's `transid` without being allocated again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.matching.book import GOCARDLESS, SOURCE_CODES, STRIPE, Book, codes, codes_in, text
from recon.matching.ledger import Ledger
from recon.matching.parsing import days_to_iso
from recon.matching.payouts import Money, judged_frame, money_of
from recon.matching.prepare import Prepared
from recon.matching.references import LABELLED, provider_ids
from recon.matching.vec import KeyIndex, csr, expand, first_of_groups, group_sum, lexsort

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

RECORDED_TRANSID = "recorded_transid"
RECORDED_REFERENCE = "recorded_reference"
RECORDED_PAYER = "recorded_payer"
CONFIRMATIONS = {RECORDED_TRANSID: 100, RECORDED_REFERENCE: 97, RECORDED_PAYER: 90}


@dataclass
class Recorded:
    """WHMCS's recorded payments as arrays (sorted by whmcs_txn_id), and what confirmed them."""

    whmcs_id: pa.Array
    invoice_id: I64
    date: I64
    amount: I64
    fees: I64
    ccy: I64
    source: I64  # transaction source whose money backs it, -1 if the gateway is not audited
    gateway: pa.Array
    transid: pa.Array
    transid_txn: I64  # position of the transaction whose id is the transid, -1 if none
    confirmed: I64  # amount confirmed so far

    @property
    def open_amount(self) -> I64:
        """What is still unconfirmed."""
        return self.amount - self.confirmed


def recorded_arrays(book: Book, frame: pd.DataFrame) -> Recorded:
    """The recorded frame as arrays, in a stable order (by WHMCS transaction id)."""
    ids = text(frame["whmcs_txn_id"])
    order = pc.sort_indices(ids).to_numpy()
    take = pa.array(order)
    gateway = text(frame["gateway"]).take(take)
    gateways = sorted(book.config.gateway_sources)
    mapped = np.array(
        [SOURCE_CODES[book.config.gateway_sources[g]] for g in gateways] + [-1], dtype=np.int64
    )
    return Recorded(
        whmcs_id=ids.take(take),
        invoice_id=frame["invoice_id"].to_numpy(dtype=np.int64)[order],
        date=frame["recorded_on"].to_numpy(dtype=np.int64)[order],
        amount=frame["amount"].to_numpy(dtype=np.int64)[order],
        fees=frame["fees"].to_numpy(dtype=np.int64)[order],
        ccy=codes(text(frame["currency"]).take(take), book.currencies),
        source=mapped[codes(gateway, gateways)],
        gateway=gateway,
        transid=text(frame["transid"]).take(take),
        transid_txn=book.transid_txn[order],
        confirmed=np.zeros(len(order), dtype=np.int64),
    )


def _confirm(book: Book, rec: Recorded, ledger: Ledger, p: I64, r: I64, rule: str) -> Bools:
    """Allocate confirmed (payment, recorded row) pairs; returns the payments consumed.

    A payment's recorded rows are served in date order up to the payment's amount.
    """
    consumed = np.zeros(book.n_transactions, dtype=bool)
    if not len(p):
        return consumed
    order = lexsort((r, rec.date[r], p))
    p, r = p[order], r[order]
    want = rec.open_amount[r]
    first = first_of_groups(p)
    running = np.cumsum(want)
    start = np.maximum.accumulate(np.where(first, np.arange(len(p)), 0))
    before = running - want - (running[start] - want[start])
    take = np.clip(book.txn_amount[p] - before, 0, want)
    ok = take > 0
    p, r, take = p[ok], r[ok], take[ok]
    np.add.at(rec.confirmed, r, take)
    confidence = int(book.config.rule_confidence.get(rule, CONFIRMATIONS[rule]))
    ledger.allocate(
        p,
        rec.invoice_id[r],
        take,
        rule,
        np.full(len(p), confidence, dtype=np.int64),
        np.full(len(p), confidence >= book.config.auto_threshold),
    )
    consumed[p] = True
    # money beyond the recorded payments it confirms
    first = first_of_groups(p)
    group = np.cumsum(first) - 1
    payments = p[first]
    excess = book.txn_amount[payments] - group_sum(group, take, len(payments))
    over = excess > 0
    if over.any():
        pay = payments[over]
        ccy = book.txn_ccy[pay]
        ledger.except_(
            "overpayment",
            pay,
            np.zeros(len(pay), dtype=np.int64),
            excess[over],
            ccy,
            [
                f"{e} more than the WHMCS payments it confirms"
                for e in ledger.money(excess[over], ccy)
            ],
        )
    return consumed


def confirm_by_transid(book: Book, rec: Recorded, ledger: Ledger, incoming: Bools) -> Bools:
    """Transactions whose id (or a provider id in their reference) is a recorded `transid`."""
    usable = (pc.not_equal(rec.transid, "").to_numpy(zero_copy_only=False)) & (rec.amount > 0)
    rows = np.flatnonzero(usable)
    if not len(rows):
        return np.zeros(book.n_transactions, dtype=bool)
    transid = rec.transid.take(pa.array(rows))
    unique = pc.unique(transid)
    code = codes_in(transid, unique)
    # a recorded payment is confirmed by one transaction: its own id before a quoted one
    payment = np.full(len(unique), -1, dtype=np.int64)
    own = rec.transid_txn[rows]
    payment[code[own >= 0]] = own[own >= 0]
    mine = payment >= 0
    payment[mine] = np.where(incoming[payment[mine]], payment[mine], -1)
    providers = np.flatnonzero(incoming & np.isin(book.txn_source, [STRIPE, GOCARDLESS]))
    if len(providers):
        row, quoted = provider_ids(book.references(providers))
        quoted_code = codes_in(quoted, unique)
        hit = quoted_code >= 0
        by = lexsort((providers[row[hit]], quoted_code[hit]))
        q_code, q_payment = quoted_code[hit][by], providers[row[hit]][by]
        first = first_of_groups(q_code)
        fill = np.full(len(unique), -1, dtype=np.int64)
        fill[q_code[first]] = q_payment[first]
        payment = np.where(payment >= 0, payment, fill)
    p = payment[code]
    ok = p >= 0
    p, r = p[ok], rows[ok]
    same_ccy = rec.ccy[r] == book.txn_ccy[p]
    return _confirm(book, rec, ledger, p[same_ccy], r[same_ccy], RECORDED_TRANSID)


def confirm_by_invoice(
    book: Book, prep: Prepared, rec: Recorded, ledger: Ledger, residual: Bools
) -> Bools:
    """Payments naming an invoice (reference or payer) whose recorded payment they match."""
    cfg = book.config
    open_rows = (rec.open_amount > 0) & (rec.source >= 0) & (rec.confirmed == 0)
    consumed = np.zeros(book.n_transactions, dtype=bool)
    if not open_rows.any():
        return consumed
    rows = np.flatnonzero(open_rows)
    by_invoice = KeyIndex.build(rec.invoice_id[rows])
    # only invoices with an unconfirmed recorded payment are worth a look
    has_record = np.isin(book.inv_id, rec.invoice_id[rows])
    by_ref = residual[prep.join_p] & has_record[prep.join_i]
    ref_p, ref_i = prep.join_p[by_ref], prep.join_i[by_ref]
    # a payment whose reference names an invoice with an invoice word is about that invoice
    # (unless the bank may have cut that number short)
    labelled = np.zeros(book.n_transactions, dtype=bool)
    labelled[prep.join_p[(prep.join_kind >= LABELLED) & ~prep.join_cut]] = True
    wanted = (residual & ~labelled)[prep.name_p] & prep.name_usable
    full = (prep.name_level == 2) & (prep.name_kc <= 2)
    initials = (prep.name_level == 1) & (prep.name_kc == 1)
    strong = wanted & (full | initials)
    name_p, name_client = prep.name_p[strong], prep.name_client[strong]
    start, count = csr(book.inv_client[book.by_client], int(book.inv_client.max(initial=-1)) + 1)
    which, slot = expand(start[name_client], count[name_client])
    name_i = book.by_client[slot]
    keep = has_record[name_i]
    pair_p = np.concatenate([ref_p, name_p[which][keep]])
    pair_i = np.concatenate([ref_i, name_i[keep]])
    pair_via = np.concatenate([np.zeros(len(ref_p), np.int64), np.ones(int(keep.sum()), np.int64)])
    which, slot = by_invoice.lookup(book.inv_id[pair_i])
    pairs = pd.DataFrame({"p": pair_p[which], "r": rows[slot], "via": pair_via[which]})
    p = pairs["p"].to_numpy(dtype=np.int64)
    r = pairs["r"].to_numpy(dtype=np.int64)
    amount = book.txn_amount[p]
    gap = np.abs(book.txn_booked[p].astype(np.int64) - rec.date[r])
    ok = (
        (rec.ccy[r] == book.txn_ccy[p])
        & (rec.source[r] == book.txn_source[p])
        & ((amount == rec.amount[r]) | (amount == rec.amount[r] - rec.fees[r]))
        & (gap <= cfg.recorded_window_days)
    )
    pairs = pairs[ok].assign(gap=gap[ok])
    # one to one: by reference before by payer, then nearest in time
    chosen: list[pd.DataFrame] = []
    for _ in range(3):
        if pairs.empty:
            break
        best = pairs.sort_values(["via", "gap", "p", "r"], kind="stable")
        best = best.drop_duplicates("r").drop_duplicates("p")
        chosen.append(best)
        pairs = pairs[~pairs["p"].isin(best["p"]) & ~pairs["r"].isin(best["r"])]
    if not chosen:
        return consumed
    picked = pd.concat(chosen, ignore_index=True)
    for via, rule in ((0, RECORDED_REFERENCE), (1, RECORDED_PAYER)):
        part = picked[picked["via"] == via]
        consumed |= _confirm(
            book,
            rec,
            ledger,
            part["p"].to_numpy(dtype=np.int64),
            part["r"].to_numpy(dtype=np.int64),
            rule,
        )
    return consumed


@dataclass(frozen=True)
class Unbacked:
    """Counts of the audit direction, and the recorded payments judged for `unbacked_payment`."""

    stats: dict[str, int]
    judged: pd.DataFrame


def _backed_by_evidence(money: Money, rec: Recorded) -> Bools:
    """Recorded payments whose `transid` is an evidence transaction or a provider id one quotes:
    money an earlier run saw (and confirmed there) stands behind them."""
    evidence = np.arange(money.n_book, len(money.amount), dtype=np.int64)
    if not len(evidence):
        return np.zeros(len(rec.amount), dtype=bool)
    providers = np.isin(money.source[evidence], [STRIPE, GOCARDLESS])
    _, quoted = provider_ids(money.evidence_references.take(pa.array(np.flatnonzero(providers))))
    ids = pa.concat_arrays([text(money.evidence_ids), text(quoted)])
    named = pc.is_in(rec.transid, value_set=pc.unique(ids)).to_numpy(zero_copy_only=False)
    present = pc.not_equal(rec.transid, "").to_numpy(zero_copy_only=False)
    backed: Bools = np.asarray(named, dtype=bool) & np.asarray(present, dtype=bool)
    return backed


def report_unbacked(
    book: Book, rec: Recorded, ledger: Ledger, evidence: pd.DataFrame | None = None
) -> Unbacked:
    """Recorded payments with no money behind them, within the period the money covers (this
    run's and the evidence's)."""
    window = book.config.recorded_window_days
    money = money_of(book, evidence)
    backed = _backed_by_evidence(money, rec)
    candidates = (rec.amount > 0) & (rec.open_amount > 0) & ~backed
    covered = np.zeros(len(rec.amount), dtype=bool)
    for source in np.unique(rec.source[rec.source >= 0]):
        booked = money.days(int(source))
        if not len(booked):
            continue
        lo, hi = int(booked.min()) + window, int(booked.max()) - window
        covered |= (rec.source == source) & (rec.date >= lo) & (rec.date <= hi)
    flagged = np.flatnonzero(candidates & covered)
    if len(flagged):
        take = pa.array(flagged)
        details = [
            f"WHMCS payment {w} ({g}{', transid ' + t if t else ''}) of {m} recorded on {d} "
            "has no matching money" + (" (partly confirmed)" if c > 0 else "")
            for w, g, t, m, d, c in zip(
                rec.whmcs_id.take(take).to_pylist(),
                rec.gateway.take(take).to_pylist(),
                rec.transid.take(take).to_pylist(),
                ledger.money(rec.open_amount[flagged], rec.ccy[flagged]),
                days_to_iso(rec.date[flagged]),
                rec.confirmed[flagged],
                strict=True,
            )
        ]
        ledger.except_(
            "unbacked_payment",
            np.full(len(flagged), -1, dtype=np.int64),
            rec.invoice_id[flagged],
            rec.open_amount[flagged],
            rec.ccy[flagged],
            details,
            [str(w) for w in rec.whmcs_id.take(take).to_pylist()],
        )
    stats = {
        "recorded_confirmed": int((rec.confirmed > 0).sum()),
        "recorded_unaudited": int((candidates & ~covered).sum()),
        "recorded_unbacked": len(flagged),
    }
    # judged: money covers its days, or money (here or among the evidence) stands behind it
    audited = (rec.amount > 0) & (rec.source >= 0)
    judged = np.flatnonzero(audited & (covered | backed | (rec.open_amount <= 0)))
    subjects = rec.whmcs_id.take(pa.array(judged, type=pa.int64())).to_pylist()
    return Unbacked(stats, judged_frame(("unbacked_payment",), [str(w) for w in subjects]))


def recorded_invoice_of(rec: Recorded, ids: pa.Array) -> I64:
    """The invoice of the (first) recorded payment whose transid is each id, 0 where none."""
    position = codes_in(text(ids), rec.transid)
    found = position >= 0
    invoice = np.zeros(len(position), dtype=np.int64)
    invoice[found] = rec.invoice_id[position[found]]
    return invoice
