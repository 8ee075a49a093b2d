"""Clients and their invoices, payer names as banks print them, reference templates, typos."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from connectors.sandbox.synth.frames import I64, Text, _cat, _choose, _num, _pick, _scatter, _text
from connectors.sandbox.synth.model import SynthConfig
from connectors.sandbox.synth.vocab import (
    _EPOCH,
    COMPANY_A,
    COMPANY_B,
    COMPANY_C,
    FIRST_NAMES,
    LEGAL_FORMS,
    PRICE_TIERS,
    SURNAME_HEADS,
    SURNAME_MIDDLES,
    SURNAME_TAILS,
)


def _clients(cfg: SynthConfig, rng: np.random.Generator) -> pd.DataFrame:
    n = max(20, int(cfg.n_invoices * cfg.clients_per_invoice))
    zipf_first = 1.0 / np.arange(1, len(FIRST_NAMES) + 1) ** 0.6
    first = _choose(rng, n, zipf_first)
    heads = _choose(rng, n, 1.0 / np.arange(1, len(SURNAME_HEADS) + 1) ** 0.5)
    tails = _choose(rng, n, 1.0 / np.arange(1, len(SURNAME_TAILS) + 1) ** 0.3)
    middles = rng.integers(0, len(SURNAME_MIDDLES), n)
    plain = rng.random(n) < 0.1
    surname = pc.if_else(
        pa.array(plain),
        _pick(SURNAME_HEADS, heads),
        _cat(
            _pick(SURNAME_HEADS, heads),
            _pick(SURNAME_MIDDLES, middles),
            _pick(SURNAME_TAILS, tails),
        ),
    )
    first_text = _pick(FIRST_NAMES, first)
    is_company = rng.random(n) < cfg.company_share
    company = _cat(
        _pick(COMPANY_A, rng.integers(0, len(COMPANY_A), n)),
        " ",
        _pick(COMPANY_B, rng.integers(0, len(COMPANY_B), n)),
        " ",
        _pick(COMPANY_C, rng.integers(0, len(COMPANY_C), n)),
        " ",
        _pick(LEGAL_FORMS, rng.integers(0, len(LEGAL_FORMS), n)),
    )
    codes = [c for c, _ in cfg.currencies]
    currency = np.array(codes, dtype=object)[_choose(rng, n, [w for _, w in cfg.currencies])]
    return pd.DataFrame(
        {
            "client_id": np.arange(1, n + 1, dtype=np.int64),
            "first": first_text.to_numpy(zero_copy_only=False),
            "last": surname.to_numpy(zero_copy_only=False),
            "company": np.where(is_company, company.to_numpy(zero_copy_only=False), ""),
            "is_company": is_company,
            "currency": currency,
        }
    )


# invoice fates
_PAID_BEFORE, _CANCELLED, _UNPAID, _UNBACKED, _BANK, _STRIPE, _GOCARDLESS = range(7)


def _invoices(
    cfg: SynthConfig, rng: np.random.Generator, clients: pd.DataFrame, day0: int
) -> pd.DataFrame:
    n = cfg.n_invoices
    n_clients = len(clients)
    client = np.minimum((n_clients * rng.random(n) ** 1.6).astype(np.int64), n_clients - 1)
    bank_share = 1 - (
        cfg.paid_before_share + cfg.cancelled_share + cfg.unpaid_share + cfg.unbacked_share
        + cfg.stripe_share + cfg.gocardless_share
    )  # fmt: skip
    fate = _choose(
        rng,
        n,
        [
            cfg.paid_before_share, cfg.cancelled_share, cfg.unpaid_share, cfg.unbacked_share,
            bank_share, cfg.stripe_share, cfg.gocardless_share,
        ],
    )  # fmt: skip
    issued = day0 + rng.integers(0, cfg.days, n)
    old = fate == _PAID_BEFORE
    issued[old] = day0 - rng.integers(20, 120, int(old.sum()))
    order = np.lexsort((rng.random(n), issued))
    client, fate, issued = client[order], fate[order], issued[order]
    invoice_id = cfg.first_invoice_id + np.arange(n, dtype=np.int64)
    due = issued + np.array([7, 14, 14, 14, 30])[rng.integers(0, 5, n)]
    # amounts: price tiers, sometimes two items, sometimes an odd amount
    tiers = np.array(PRICE_TIERS, dtype=np.int64)
    weights = 1.0 / np.arange(1, len(tiers) + 1) ** 0.8
    total = tiers[_choose(rng, n, weights)]
    two = rng.random(n) < 0.25
    total[two] += tiers[_choose(rng, int(two.sum()), weights)]
    odd = rng.random(n) < 0.2
    total[odd] = np.exp(rng.uniform(np.log(500), np.log(250_000), int(odd.sum()))).astype(np.int64)
    currency = clients["currency"].to_numpy()[client]
    numbered = np.zeros(n, dtype=bool)
    numbered[int(n * (1 - cfg.numbered_share)) :] = True
    number = np.zeros(n, dtype=np.int64)
    number[numbered] = cfg.first_invoice_number + np.arange(int(numbered.sum()))
    year = (_EPOCH + issued.astype("timedelta64[D]")).astype("datetime64[Y]").astype(int) + 1970
    fmt = cfg.invoice_number_format
    num_text = _format_numbers(fmt, year, number)
    invoice_num = pc.if_else(pa.array(numbered), num_text, "")
    status = np.full(n, "Unpaid", dtype=object)
    open_roll = rng.random(n)
    status[open_roll < 0.03] = "Collections"
    status[(open_roll >= 0.03) & (open_roll < 0.05)] = "Payment Pending"
    status[fate == _PAID_BEFORE] = "Paid"
    status[fate == _UNBACKED] = "Paid"
    status[fate == _CANCELLED] = "Cancelled"
    balance = total.copy()
    balance[np.isin(fate, [_PAID_BEFORE, _UNBACKED])] = 0
    full_name = _cat(_text(clients["first"].to_numpy()), " ", _text(clients["last"].to_numpy()))
    return pd.DataFrame(
        {
            "invoice_id": invoice_id,
            "client_name": full_name.take(pa.array(client)).to_numpy(zero_copy_only=False),
            "company_name": clients["company"].to_numpy()[client],
            "invoice_num": invoice_num.to_numpy(zero_copy_only=False),
            "number": np.where(numbered, number, 0),
            "client": client,
            "issued": issued,
            "due": due,
            "total": total,
            "balance": balance,
            "currency": currency,
            "status": status,
            "fate": fate,
        }
    )


def _format_numbers(fmt: str, year: I64, number: I64) -> Text:
    parts: list[Text | str] = []
    rest = fmt
    while rest:
        head, brace, tail = rest.partition("{")
        if head:
            parts.append(head)
        if not brace:
            break
        token, _, rest = tail.partition("}")
        parts.append(
            {"YEAR": _num(year), "NUMBER": _num(number), "MONTH": "01", "DAY": "01"}[token]
        )
    return _cat(*parts) if len(parts) > 1 else _cat(parts[0], "")


def _payer_names(
    rng: np.random.Generator,
    clients: pd.DataFrame,
    client: I64,
    third_party: float,
    empty: float,
) -> Text:
    """How a bank shows the payer: the client's name in one of many spellings, or someone else."""
    n = len(client)
    first = _text(clients["first"].to_numpy()[client])
    last = _text(clients["last"].to_numpy()[client])
    company = _text(clients["company"].to_numpy()[client])
    is_company = clients["is_company"].to_numpy()[client] & (rng.random(n) < 0.75)
    initial = pc.utf8_slice_codeunits(first, 0, 1)
    folded = pc.utf8_upper(last)
    for umlaut, repl in (("Ü", "UE"), ("Ö", "OE"), ("Ä", "AE"), ("ß", "SS")):
        folded = pc.replace_substring(folded, umlaut, repl)
    person_styles: list[Callable[[Text], Text]] = [
        lambda r: _cat(first.take(r), " ", last.take(r)),
        lambda r: pc.utf8_upper(_cat(first.take(r), " ", last.take(r))),
        lambda r: pc.utf8_upper(_cat(last.take(r), " ", first.take(r))),
        lambda r: pc.utf8_upper(_cat(last.take(r), ", ", first.take(r))),
        lambda r: _cat(initial.take(r), ". ", last.take(r)),
        lambda r: pc.utf8_upper(_cat(last.take(r), " ", initial.take(r))),
        lambda r: _cat("Mr ", first.take(r), " ", last.take(r)),
        lambda r: _cat("HERR ", pc.utf8_upper(first.take(r)), " ", folded.take(r)),
        lambda r: _cat("DR. ", initial.take(r), ". ", pc.utf8_upper(last.take(r))),
        lambda r: _cat(pc.utf8_upper(first.take(r)), " ", folded.take(r)),
    ]
    company_styles: list[Callable[[Text], Text]] = [
        lambda r: company.take(r),
        lambda r: pc.utf8_upper(company.take(r)),
        lambda r: _strip_legal(company.take(r)),
        lambda r: pc.utf8_upper(_strip_legal(company.take(r))),
    ]
    kind = np.where(is_company, 1, 0)
    roll = rng.random(n)
    kind[roll < third_party] = 2
    kind[roll >= 1 - empty] = 3
    style = rng.integers(0, 10_000, n)
    parts: list[tuple[I64, Text]] = []
    for k, styles in ((0, person_styles), (1, company_styles)):
        rows = np.flatnonzero(kind == k)
        which = style[rows] % len(styles)
        for s, build in enumerate(styles):
            sub = rows[which == s]
            if len(sub):
                parts.append((sub, build(pa.array(sub))))
    others = np.flatnonzero(kind == 2)
    if len(others):
        stranger = rng.integers(0, len(clients), len(others))
        parts.append(
            (
                others,
                pc.utf8_upper(
                    _cat(
                        _text(clients["first"].to_numpy()[stranger]),
                        " ",
                        _text(clients["last"].to_numpy()[stranger]),
                    )
                ),
            )
        )
    blanks = np.flatnonzero(kind == 3)
    if len(blanks):
        parts.append((blanks, _text([""] * len(blanks))))
    return _scatter(n, parts)


def _strip_legal(company: Text) -> Text:
    pattern = "|".join(rf" {f.replace('.', chr(92) + '.')}$" for f in LEGAL_FORMS)
    pattern = pattern.replace("&", "&")
    return pc.replace_substring_regex(company, pattern=f"(?:{pattern})", replacement="")


_SINGLE_STYLES: tuple[tuple[str, float], ...] = (
    ("{NUM}", 14),
    ("Invoice #{N}", 8),
    ("Invoice {N}", 6),
    ("invoice no. {N}", 3),
    ("INVOICE NR {N}", 2),
    ("inv{N}", 3),
    ("INV {N}", 4),
    ("Rechnung {N}", 6),
    ("Rechnung {N} Kd-Nr {C}", 4),
    ("Rechnungsnr. {N}", 3),
    ("RE {N}", 3),
    ("Rg.-Nr. {N}", 2),
    ("Facture no {N}", 3),
    ("Facture n° {N}", 2),
    ("Factuur {N}", 3),
    ("Factuurnummer {N}", 2),
    ("Fattura n. {N}", 2),
    ("Factura {N}", 2),
    ("Faktura nr {N}", 2),
    ("{N}", 8),
    ("{N} {C}", 3),
    ("Payment {N} {NAME}", 3),
    ("{NAME} {N}", 3),
    ("Kunde {C} Rechnung {N}", 2),
)


_MULTI_STYLES: tuple[tuple[str, float], ...] = (
    ("Invoices {N1}, {N2}", 4),
    ("RE {N1}+{N2}", 2),
    ("{NUM1} {NUM2}", 3),
    ("{N1} {N2}", 2),
    ("Rechnungen {N1} und {N2}", 2),
    ("Factures {N1} et {N2}", 1),
)


_DECOYS: tuple[tuple[str, float], ...] = (
    (" Kd-Nr {C}", 3),
    (" Customer {C}", 2),
    (" {DATE}", 3),
    (" vom {DOTTED}", 2),
    (" Tel +49 30 {PHONE}", 1),
    (" EUR {AMOUNT}", 2),
    (" Order {ORDER}", 2),
    (" {C}", 2),
)


_PREFIXES = ("SEPA-UEBERWEISUNG ", "SVWZ+", "EREF+NOTPROVIDED SVWZ+", "/RFB/", "TRANSFER ", "FPS ")


_SUFFIXES = (" EREF: NOTPROVIDED", " /ROC/NOTPROVIDED", " END-TO-END-REF.: NICHT ANGEGEBEN")


_NO_REFERENCE = ("", "", "Payment", "Zahlung", "Thank you", "Hosting", "Überweisung")


def _fill(template: str, rows: I64, values: dict[str, Text]) -> Text:
    parts: list[Text | str] = []
    rest = template
    while rest:
        head, brace, tail = rest.partition("{")
        if head:
            parts.append(head)
        if not brace:
            break
        token, _, rest = tail.partition("}")
        parts.append(values[token].take(pa.array(rows)))
    if not parts:
        return _text([""] * len(rows))
    if len(parts) == 1:
        only = parts[0]
        return only if isinstance(only, pa.Array) else _text([only] * len(rows))
    return _cat(*parts)


def _by_template(
    rng: np.random.Generator,
    rows: I64,
    styles: Sequence[tuple[str, float]],
    values: dict[str, Text],
) -> Text:
    choice = _choose(rng, len(rows), [w for _, w in styles])
    parts = []
    for k, (template, _) in enumerate(styles):
        sub = np.flatnonzero(choice == k)
        if len(sub):
            parts.append((sub, _fill(template, rows[sub], values)))
    return _scatter(len(rows), parts)


def _typo(rng: np.random.Generator, value: I64) -> I64:
    """One digit changed or two neighbours swapped (never a leading zero, never unchanged)."""
    digits = np.floor(np.log10(np.maximum(value, 1))).astype(np.int64) + 1
    pos = (rng.random(len(value)) * (digits - 1)).astype(np.int64)
    p10 = 10**pos
    d0 = (value // p10) % 10
    d1 = (value // (p10 * 10)) % 10
    swap = (rng.random(len(value)) < 0.5) & (d0 != d1)
    swapped = value + (d1 - d0) * p10 + (d0 - d1) * p10 * 10
    new = (d0 + rng.integers(1, 10, len(value))) % 10
    changed = value + (new - d0) * p10
    return np.where(swap, swapped, changed)


# what happens to an invoice paid by bank transfer, and what its payment should raise
_BANK_KINDS = (
    ("ref", ""),
    ("recorded", ""),
    ("multi_listed", ""),
    ("multi_unlisted", ""),
    ("partial", ""),
    ("overpaid", "overpayment"),
    ("fee_short", "underpayment"),
    ("duplicate", ""),
    ("other_currency", "currency_mismatch"),
)


(
    _NORMAL, _RECORDED, _LISTED, _UNLISTED, _PARTIAL, _OVERPAID, _FEE_SHORT, _DUPLICATE,
    _OTHER_CURRENCY,
) = range(len(_BANK_KINDS))  # fmt: skip
