"""Bank transfers: who pays which invoices, how much, with which reference and noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from connectors.sandbox.synth.frames import (
    _LS,
    I64,
    Bools,
    Text,
    _cat,
    _choose,
    _dotted,
    _ids,
    _iso,
    _money,
    _num,
    _pick,
    _scatter,
    _text,
    _Txns,
)
from connectors.sandbox.synth.model import SynthConfig
from connectors.sandbox.synth.parties import (
    _BANK,
    _BANK_KINDS,
    _DECOYS,
    _DUPLICATE,
    _FEE_SHORT,
    _LISTED,
    _MULTI_STYLES,
    _NO_REFERENCE,
    _NORMAL,
    _OTHER_CURRENCY,
    _OVERPAID,
    _PARTIAL,
    _PREFIXES,
    _RECORDED,
    _SINGLE_STYLES,
    _SUFFIXES,
    _UNLISTED,
    _by_template,
    _payer_names,
    _typo,
)


@dataclass(frozen=True)
class _BankLeads:
    """One bank payment per group of bank-paid invoices (a group is one invoice unless combined).

    `bank`: positions in `inv` of the bank-paid invoices; `group`: each one's group (the leader's
    position in `bank`); `leader`: positions in `bank` of the groups' leaders. The invoice columns
    are read once, before any is updated.
    """

    bank: I64
    group: I64
    leader: I64
    booked: I64
    balance: I64
    total: I64
    issued: I64
    currency: npt.NDArray[np.object_]
    inv_ids: I64
    numbers: I64
    client: I64

    @property
    def lead_inv(self) -> I64:
        """Positions in `inv` of the leaders' invoices."""
        return self.bank[self.leader]


@dataclass(frozen=True)
class _BankRefs:
    """What each leader's transfer shows, and which noise it got."""

    reference: Text
    payer: Text
    single: npt.NDArray[np.bool_]
    typo: npt.NDArray[np.bool_]
    decoy: npt.NDArray[np.bool_]
    no_ref: npt.NDArray[np.bool_]
    cut: npt.NDArray[np.bool_]


def _bank_payments(
    cfg: SynthConfig,
    rng: np.random.Generator,
    inv: pd.DataFrame,
    clients: pd.DataFrame,
    txns: _Txns,
    truth: list[pd.DataFrame],
    recorded: list[pd.DataFrame],
) -> None:
    """Bank transfers for the invoices paid by bank, with every kind of noise; their truth."""
    leads, kind = _bank_groups(cfg, rng, inv)
    lead_kind, amounts, pay_ccy = _bank_amounts(rng, leads, kind)
    refs = _bank_references(cfg, rng, inv, clients, leads, lead_kind, amounts, pay_ccy)
    n_lead = len(leads.leader)
    ids = _ids("bk_", np.arange(n_lead, dtype=np.int64), 16, 11)
    case = np.array([name for name, _ in _BANK_KINDS], dtype=object)[lead_kind]
    normal = lead_kind == _NORMAL
    case = np.where(refs.single & refs.no_ref & normal, "no_reference", case)
    case = np.where(refs.typo & normal & ~refs.no_ref, "typo", case)
    case = np.where(refs.cut & normal & (case == "ref"), "cut_reference", case)
    case = np.where(refs.decoy & (case == "ref"), "decoy", case)
    expected = np.array([kind for _, kind in _BANK_KINDS], dtype=object)[lead_kind]
    booked = leads.booked[leads.leader]
    txns.add(
        ids, "bank", booked, amounts, pay_ccy, refs.payer, refs.reference, case, expected, True
    )
    truth.append(_bank_truth(leads, lead_kind, amounts, ids))
    recorded.append(_bank_recorded(rng, inv, leads, lead_kind))
    _bank_second_parts(rng, leads, lead_kind, amounts, pay_ccy, refs, txns, truth)


def _bank_groups(
    cfg: SynthConfig, rng: np.random.Generator, inv: pd.DataFrame
) -> tuple[_BankLeads, I64]:
    """Which invoices are paid by bank, in which kind of payment, grouped, and when booked."""
    bank = np.flatnonzero(inv["fate"].to_numpy() == _BANK)
    n = len(bank)
    shares = [
        cfg.recorded_bank_share, cfg.multi_listed, cfg.multi_unlisted, cfg.partial,
        cfg.overpaid, cfg.fee_short, cfg.duplicate, cfg.other_currency,
    ]  # fmt: skip
    kind = _choose(rng, n, [1 - sum(shares), *shares])
    client = inv["client"].to_numpy()
    kind[(kind == _LISTED) | (kind == _UNLISTED)] = _NORMAL
    group = _combined_payments(cfg, rng, client[bank], kind)
    issued = inv["issued"].to_numpy()
    leader = np.flatnonzero(group == np.arange(n))
    delay = np.where(
        rng.random(n) < 0.6,
        rng.integers(0, 15, n),
        np.where(rng.random(n) < 0.9, rng.integers(14, 46, n), rng.integers(45, 121, n)),
    )
    latest = issued[bank].copy()
    np.maximum.at(latest, group, issued[bank])
    leads = _BankLeads(
        bank=bank,
        group=group,
        leader=leader,
        booked=latest + delay,
        balance=inv["balance"].to_numpy(),
        total=inv["total"].to_numpy(),
        issued=issued,
        currency=inv["currency"].to_numpy(),
        inv_ids=inv["invoice_id"].to_numpy(),
        numbers=inv["number"].to_numpy(),
        client=client,
    )
    return leads, kind


def _bank_amounts(
    rng: np.random.Generator, leads: _BankLeads, kind: I64
) -> tuple[I64, I64, npt.NDArray[np.object_]]:
    """Each leader's kind (kinds that cannot apply fall back to normal), amount and currency."""
    bank, group, leader, balance = leads.bank, leads.group, leads.leader, leads.balance
    pay_amount = np.zeros(len(bank), dtype=np.int64)
    np.add.at(pay_amount, group, balance[bank])
    lead_kind = kind[leader]
    amounts = pay_amount[leader].copy()
    lead_inv = leads.lead_inv
    fee_cap = np.minimum(balance[lead_inv] * 3 // 100, 2500)
    is_fee = (lead_kind == _FEE_SHORT) & (fee_cap >= 2)
    lead_kind[(lead_kind == _FEE_SHORT) & ~is_fee] = _NORMAL
    fee = np.maximum(1, (rng.uniform(0.2, 1.0, len(leader)) * fee_cap).astype(np.int64))
    amounts[is_fee] -= fee[is_fee]
    extra = rng.integers(100, 5000, len(leader))
    amounts[lead_kind == _OVERPAID] += extra[lead_kind == _OVERPAID]
    first_part = (balance[lead_inv] * rng.uniform(0.3, 0.7, len(leader))).astype(np.int64)
    partial = (lead_kind == _PARTIAL) & (first_part > 0)
    lead_kind[(lead_kind == _PARTIAL) & ~partial] = _NORMAL
    amounts[partial] = first_part[partial]
    pay_ccy = leads.currency[lead_inv].copy()
    other = lead_kind == _OTHER_CURRENCY
    pay_ccy[other] = np.where(pay_ccy[other] == "EUR", "USD", "EUR")
    return lead_kind, amounts, pay_ccy


def _bank_references(
    cfg: SynthConfig,
    rng: np.random.Generator,
    inv: pd.DataFrame,
    clients: pd.DataFrame,
    leads: _BankLeads,
    lead_kind: I64,
    amounts: I64,
    pay_ccy: npt.NDArray[np.object_],
) -> _BankRefs:
    """The payer and reference of each leader's transfer, with the noise banks add."""
    leader, numbers, inv_ids = leads.leader, leads.numbers, leads.inv_ids
    lead_inv = leads.lead_inv
    client = leads.client
    n_lead = len(leader)
    # the number each payer quotes: the invoice number when there is one, mostly
    quote_num = (numbers[lead_inv] > 0) & (rng.random(n_lead) < 0.8)
    shown = np.where(quote_num, numbers[lead_inv], inv_ids[lead_inv])
    typo = (rng.random(n_lead) < cfg.typo) & (shown >= 100) & (lead_kind == _NORMAL)
    shown_typo = np.where(typo, _typo(rng, shown), shown)
    num_text = _text(inv["invoice_num"].to_numpy()[lead_inv])
    full_num = pc.if_else(pa.array(quote_num & ~typo), num_text, _num(shown_typo))
    payer = _payer_names(rng, clients, client[lead_inv], cfg.third_party_payer, cfg.empty_payer)
    names = pc.utf8_upper(_cat(_text(clients["first"].to_numpy()[client[lead_inv]]), " ",
                               _text(clients["last"].to_numpy()[client[lead_inv]])))  # fmt: skip
    values = {
        "N": _num(shown_typo),
        "NUM": full_num,
        "C": _num(clients["client_id"].to_numpy()[client[lead_inv]]),
        "NAME": names,
        "DATE": _iso(leads.booked[leader] - rng.integers(0, 30, n_lead)),
        "DOTTED": _dotted(leads.issued[lead_inv]),
        "PHONE": _num(rng.integers(1_000_000, 9_999_999, n_lead)),
        "AMOUNT": _money(amounts, pay_ccy),
        "ORDER": _num(rng.integers(1000, 999_999, n_lead)),
    }
    rows_all = np.arange(n_lead)
    single = ~np.isin(lead_kind, [_LISTED, _UNLISTED])
    parts: list[tuple[I64, Text]] = []
    s_rows = rows_all[single]
    parts.append((s_rows, _by_template(rng, s_rows, _SINGLE_STYLES, values)))
    listed = rows_all[lead_kind == _LISTED]
    if len(listed):
        parts.append((listed, _listed_references(rng, inv, leads, listed, quote_num, values)))
    unlisted = rows_all[lead_kind == _UNLISTED]
    if len(unlisted):
        parts.append(
            (unlisted, _pick(_NO_REFERENCE, rng.integers(0, len(_NO_REFERENCE), len(unlisted))))
        )
    reference = _scatter(n_lead, parts)
    return _bank_noise(cfg, rng, reference, payer, single, typo, lead_kind, values)


def _listed_references(
    rng: np.random.Generator,
    inv: pd.DataFrame,
    leads: _BankLeads,
    listed: I64,
    quote_num: Bools,
    values: dict[str, Text],
) -> Text:
    """References of the payments that list several invoices: the leader's number, then the
    other invoices of the group, quoted the same way as the first."""
    bank, group, leader, numbers, inv_ids = (
        leads.bank, leads.group, leads.leader, leads.numbers, leads.inv_ids
    )  # fmt: skip
    others: list[Text] = []
    for k, member in enumerate(_other_members(group, leader[listed])):
        exists = member >= 0
        m_inv = bank[np.maximum(member, 0)]
        use_num = quote_num[listed] & (numbers[m_inv] > 0)
        number = _num(np.where(use_num, numbers[m_inv], inv_ids[m_inv]))
        written = pc.if_else(pa.array(use_num), _text(inv["invoice_num"].to_numpy()[m_inv]), number)
        joiner = ", " if k else ""
        others.append(pc.if_else(pa.array(exists), _cat(joiner, number), ""))
        others.append(pc.if_else(pa.array(exists), _cat(joiner, written), ""))
    multi_values = {
        "N1": values["N"].take(pa.array(listed)),
        "N2": _cat(others[0], others[2]),
        "NUM1": values["NUM"].take(pa.array(listed)),
        "NUM2": _cat(others[1], others[3]),
    }
    return _by_template(rng, np.arange(len(listed)), _MULTI_STYLES, multi_values)


def _bank_noise(
    cfg: SynthConfig,
    rng: np.random.Generator,
    reference: Text,
    payer: Text,
    single: npt.NDArray[np.bool_],
    typo: npt.NDArray[np.bool_],
    lead_kind: I64,
    values: dict[str, Text],
) -> _BankRefs:
    """Decoys, bank prefixes and suffixes, no reference at all, cuts at 18 characters."""
    n_lead = len(lead_kind)
    decoy = (rng.random(n_lead) < cfg.decoy) & single
    if decoy.any():
        rows = np.flatnonzero(decoy)
        reference = _append(reference, rows, _by_template(rng, rows, _DECOYS, values))
    prefixed = rng.random(n_lead) < cfg.bank_prefix
    if prefixed.any():
        rows = np.flatnonzero(prefixed)
        pre = _pick(_PREFIXES, rng.integers(0, len(_PREFIXES), len(rows)))
        reference = _replace_rows(reference, rows, _cat(pre, reference.take(pa.array(rows))))
    suffixed = rng.random(n_lead) < cfg.bank_prefix / 3
    if suffixed.any():
        rows = np.flatnonzero(suffixed)
        suf = _pick(_SUFFIXES, rng.integers(0, len(_SUFFIXES), len(rows)))
        reference = _replace_rows(reference, rows, _cat(reference.take(pa.array(rows)), suf))
    no_ref = (rng.random(n_lead) < cfg.no_reference) & single & (lead_kind != _OTHER_CURRENCY)
    if no_ref.any():
        rows = np.flatnonzero(no_ref)
        reference = _replace_rows(
            reference, rows, _pick(_NO_REFERENCE, rng.integers(0, len(_NO_REFERENCE), len(rows)))
        )
    cut = rng.random(n_lead) < cfg.cut_at_18
    if cut.any():
        rows = np.flatnonzero(cut)
        reference = _replace_rows(
            reference, rows, pc.utf8_slice_codeunits(reference.take(pa.array(rows)), 0, 18)
        )
    return _BankRefs(reference, payer, single, typo, decoy, no_ref, cut)


def _bank_truth(leads: _BankLeads, lead_kind: I64, amounts: I64, ids: Text) -> pd.DataFrame:
    """Truth of the leaders: allocations to every member of the group."""
    bank = leads.bank
    member = np.arange(len(bank))
    lead_pos = np.searchsorted(leads.leader, leads.group)
    m_kind = lead_kind[lead_pos]
    ok = m_kind != _OTHER_CURRENCY
    m_amount = np.where(
        np.isin(m_kind, [_PARTIAL, _FEE_SHORT]), amounts[lead_pos], leads.balance[bank]
    )
    return pd.DataFrame(
        {
            "transaction_id": ids.take(pa.array(lead_pos[ok])).to_numpy(zero_copy_only=False),
            "invoice_id": leads.inv_ids[bank[member[ok]]],
            "amount_minor": m_amount[ok],
            "currency": leads.currency[bank[member[ok]]],
            "confirms": m_kind[ok] == _RECORDED,
        }
    )


def _bank_recorded(
    rng: np.random.Generator, inv: pd.DataFrame, leads: _BankLeads, lead_kind: I64
) -> pd.DataFrame:
    """Staff-recorded payments: the invoice is Paid in WHMCS already (updated in `inv`)."""
    rec_rows = np.flatnonzero(lead_kind == _RECORDED)
    rec_inv = leads.lead_inv[rec_rows]
    inv.loc[rec_inv, "status"] = "Paid"
    inv.loc[rec_inv, "balance"] = 0
    return pd.DataFrame(
        {
            "whmcs_txn_id": _num(10_000_000 + rec_rows).to_numpy(zero_copy_only=False),
            "invoice_id": leads.inv_ids[rec_inv],
            "recorded_on": leads.booked[leads.leader][rec_rows] + rng.integers(0, 4, len(rec_rows)),
            "amount": leads.total[rec_inv],
            "fees": np.zeros(len(rec_rows), dtype=np.int64),
            "currency": leads.currency[rec_inv],
            "gateway": "banktransfer",
            "transid": "",
        }
    )


def _bank_second_parts(
    rng: np.random.Generator,
    leads: _BankLeads,
    lead_kind: I64,
    amounts: I64,
    pay_ccy: npt.NDArray[np.object_],
    refs: _BankRefs,
    txns: _Txns,
    truth: list[pd.DataFrame],
) -> None:
    """Second parts of partial payments, and duplicates."""
    part = np.flatnonzero(lead_kind == _PARTIAL)
    dup = np.flatnonzero(lead_kind == _DUPLICATE)
    extra_rows = np.concatenate([part, dup])
    if not len(extra_rows):
        return
    lead_inv = leads.lead_inv
    later = leads.booked[leads.leader][extra_rows] + rng.integers(3, 25, len(extra_rows))
    rest = np.concatenate([leads.balance[lead_inv[part]] - amounts[part], amounts[dup]])
    n_lead = len(leads.leader)
    ids2 = _ids("bk_", n_lead + np.arange(len(extra_rows), dtype=np.int64), 16, 11)
    ref2 = refs.reference.take(pa.array(extra_rows))
    payer2 = refs.payer.take(pa.array(extra_rows))
    case2 = np.array(["partial"] * len(part) + ["duplicate"] * len(dup), dtype=object)
    expected2 = np.array([""] * len(part) + ["duplicate_payment"] * len(dup), dtype=object)
    txns.add(ids2, "bank", later, rest, pay_ccy[extra_rows], payer2, ref2, case2, expected2, True)
    truth.append(
        pd.DataFrame(
            {
                "transaction_id": ids2.take(pa.array(np.arange(len(part)))).to_numpy(
                    zero_copy_only=False
                ),
                "invoice_id": leads.inv_ids[lead_inv[part]],
                "amount_minor": rest[: len(part)],
                "currency": leads.currency[lead_inv[part]],
                "confirms": False,
            }
        )
    )


def _combined_payments(cfg: SynthConfig, rng: np.random.Generator, client: I64, kind: I64) -> I64:
    """Group ids (the leader's position): two or three invoices of one client paid at once."""
    n = len(client)
    order = np.lexsort((np.arange(n), client))
    c = client[order]
    first = np.ones(n, dtype=bool)
    first[1:] = c[1:] != c[:-1]
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    position = np.arange(n) - start
    run = np.bincount(np.cumsum(first) - 1)[np.cumsum(first) - 1]
    eligible_clients = first & (run >= 2)
    expected_invoices = 2.4 * eligible_clients.sum()
    share = cfg.multi_listed + cfg.multi_unlisted
    rate = min(1.0, share * n / expected_invoices) if expected_invoices else 0.0
    chosen = eligible_clients & (rng.random(n) < rate)
    size = np.where(rng.random(n) < 0.6, 2, 3)
    listed = rng.random(n) < cfg.multi_listed / share if share else np.zeros(n, bool)
    # spread the leader's choice over its run
    leader_at = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    in_group = chosen[leader_at] & (position < np.minimum(size[leader_at], run))
    group = np.arange(n, dtype=np.int64)
    sorted_group = np.where(in_group, order[leader_at], order)
    group[order] = sorted_group
    members = order[in_group]
    kind[members] = np.where(listed[leader_at[in_group]], _LISTED, _UNLISTED)
    return group


def _other_members(group: I64, leaders: I64) -> list[I64]:
    """The second and third invoice of each leader's group (-1 where the group is smaller)."""
    order = np.lexsort((np.arange(len(group)), group))
    g = group[order]
    start = np.searchsorted(g, leaders)
    out = []
    for k in (1, 2):
        at = np.minimum(start + k, len(g) - 1)
        out.append(np.where(g[at] == leaders, order[at], -1).astype(np.int64))
    return out


def _append(base: Text, rows: I64, tail: Text) -> Text:
    return _replace_rows(base, rows, _cat(base.take(pa.array(rows)), tail))


def _replace_rows(base: Text, rows: I64, values: Text) -> Text:
    mask = np.zeros(len(base), dtype=bool)
    mask[rows] = True
    order = np.argsort(rows, kind="stable")
    return pc.replace_with_mask(base, pa.array(mask), values.take(pa.array(order)).cast(_LS))
