"""A seeded synthetic world of a WHMCS hosting business: invoices, money, and the truth.

`generate(SynthConfig(n_invoices=..., seed=...))` returns a `World` whose frames have the shapes
of the `recon match` files (DESIGN §4.3: amounts as decimal strings, ISO dates), plus the ground
truth: which payment settles which invoice with what amount, and which exception each other
transaction should raise. Everything is vectorised with numpy and Arrow, so a million invoices
take seconds, and the same seed gives the same world, byte for byte.

Each kind of noise has its own rate in `SynthConfig`: references in many styles and languages,
bank prefixes, cuts at 18 characters, decoy numbers (client ids, dates, phones, amounts, order
numbers), typos, payments without reference, payer names written every which way or by someone
else, combined payments, partial and over-payments, bank fees deducted, duplicates, payments for
closed invoices and in other currencies, outgoing payments and non-customer credits, Stripe and
GoCardless charges with fees, refunds, disputes and payouts (some arriving short), staff-recorded
bank payments and recorded payments with no money behind them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]

from recon.matching.parsing import format_minor
from recon.money import minor_exponent

I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Text: TypeAlias = Any  # an Arrow string array (pyarrow has no type stubs)

_EPOCH = np.datetime64("1970-01-01", "D")


def _words(text: str, sep: str = " ") -> tuple[str, ...]:
    return tuple(word for word in text.split(sep) if word)


FIRST_NAMES = _words(
    "John James Robert Michael William David Richard Joseph Thomas Charles Mary Patricia Jennifer "
    "Linda Elizabeth Barbara Susan Jessica Sarah Karen Hans Peter Klaus Jürgen Uwe Sabine Petra "
    "Andrea Monika Ursula Lukas Leon Finn Jonas Paul Emma Mia Hannah Lea Sophie Jan Pieter Daan "
    "Sem Bram Anne Sanne Lotte Fleur Jean Pierre Michel Philippe Alain Marie Nathalie Isabelle "
    "Sylvie Camille José Antonio Manuel Francisco Carmen Lucía Marta Giuseppe Giovanni Marco "
    "Francesca Chiara Giulia Lars Erik Anders Ingrid Astrid Piotr Krzysztof Anna Katarzyna Olga "
    "Mehmet Ahmet Ayşe Fatma Ali Omar Yusuf Aisha Wei Li Ming Hiroshi Yuki Sanjay Priya Rahul "
    "George Edward Oliver Harry Jack Charlotte Amelia Olivia Isla Grace Felix Maximilian Moritz "
    "Tobias Florian Katharina Julia Laura Lena Sven Niels Ruben Thijs Sophie Inès Léa Chloé Hugo "
    "Louis Gabriel Raphaël Pablo Diego Javier Sofía Valentina Alessandro Lorenzo Matteo Elena "
    "Björn Henrik Magnus Freya Maja Tomasz Jakub Zofia Agnieszka Emre Burak Elif Zeynep Arjun "
    "Anika Kenji Haruto Sakura Chen Jun Mei Noah Liam Ethan Ava Chloe Ella Zoe"
)
SURNAME_HEADS = _words(
    "Smith John Will Brown Tay Ander Thom Jack Whit Har Mart Thomp Rob Wal Wright Müll Schmi "
    "Schnei Fisch Web Mey Wag Beck Schul Hoff Kö Rich Klein Wolf Schrö Neu Schwarz Zimmer Braun "
    "Krü Hof Hart Lang Wer Jans De Vries Van Dijk Bak Viss Smit Mey Mul Bos Vos Peet Hend Dub Dur "
    "Lef Mor Lau Sim Mich Garc Rodr Gonz Fern Lop Mart Sanch Per Ross Russ Ferr Esp Bian Roma Col "
    "Ric Nowa Kowal Wiśn Wójc Kowalcz Kamin Lew Zieli Szymań Yıl Kaya Demir Şah Çel Nils Johans "
    "Karls Ander Lind Berg Ström Holm Nord Sand Öst"
)
SURNAME_MIDDLES = ("", "", "", "", "en", "er", "in", "ow", "ak", "el", "an", "is", "or", "ut", "ic",
                   "ar", "os", "im", "ol", "ur", "eb", "ad", "ist", "end", "orn")  # fmt: skip
SURNAME_TAILS = _words(
    "son sen er mann ner ski ska ez es ini elli ard ot ow ak ik dorf berg feld stein ström lund "
    "gren a i o e ley ton ford wood field ington ers man s"
)
COMPANY_A = _words(
    "Nord Süd Alpen Blue Red Green Silver Golden Bright Rapid Smart Prime Nova Terra Aqua Sky "
    "Cloud Data Net Web Pixel Byte Code Digital Cyber Quantum Solar Urban Metro Euro Atlas Orion "
    "Vega Polar Delta Omega Alpha Sigma Apex Summit Harbor River Lake Forest Stone Iron Oak Pine "
    "Maple Cedar Falcon Eagle Lion Fox Wolf Bear"
)
COMPANY_B = _words(
    "Hosting Media Systems Solutions Consulting Design Labs Works Studio Services Networks Tech "
    "Software Logistics Trading Marketing Commerce Ventures Partners Group Digital Data Online "
    "Web Cloud IT Security Energy Health Foods Travel Games Apps Print Audio Vision Bau Handel "
    "Immobilien"
)
COMPANY_C = _words(
    "Berlin Hamburg München Köln Wien Zürich Amsterdam Rotterdam Utrecht Paris Lyon Madrid "
    "Barcelona Milano Roma Warszawa Stockholm Oslo London Leeds Dublin Praha Brno Graz Basel Bern "
    "Lille Gent Antwerpen International Europe Nord West Ost Süd Plus Pro One Two Max"
)
LEGAL_FORMS = _words(
    "GmbH|Ltd|B.V.|SARL|S.L.|Oy|AB|Inc.|LLC|AG|GmbH & Co. KG|S.r.l.|UG|N.V.|ApS", sep="|"
)
PRICE_TIERS = (
    399, 499, 750, 999, 1200, 1499, 1999, 2490, 2999, 3900, 4999, 5900, 7900, 9900, 12900,
    19900, 24900, 49900,
)  # fmt: skip
SUPPLIERS = _words(
    "Hetzner Online GmbH|OVH SAS|Amazon Web Services EMEA|DigitalOcean LLC|Microsoft Ireland|Telekom Deutschland GmbH|Vodafone|Google Cloud EMEA|cPanel LLC|WHMCS Limited|Stadtwerke|Finanzamt|Techniker Krankenkasse|Allianz Versicherung|Miete GmbH|Staples",
    sep="|",
)
NON_CUSTOMERS = _words(
    "FINANZAMT MUENCHEN|HMRC|Deutsche Bank AG|Own account transfer|Savings account|ALLIANZ VERSICHERUNGS AG|AMAZON PAYMENTS EUROPE|PAYPAL EUROPE|Bundesagentur fuer Arbeit|Interest|Sparkasse|KfW Bankengruppe|Verizon refund|Rental deposit|",
    sep="|",
)


@dataclass(frozen=True)
class SynthConfig:
    """Size, seed and the rate of every kind of noise (shares of the relevant population)."""

    n_invoices: int = 10_000
    seed: int = 7
    start: str = "2025-07-01"
    days: int = 365
    invoice_number_format: str = "INV-{YEAR}-{NUMBER}"
    first_invoice_id: int = 10_001
    first_invoice_number: int = 1
    numbered_share: float = 0.7
    clients_per_invoice: float = 0.25
    company_share: float = 0.35
    currencies: tuple[tuple[str, float], ...] = (("EUR", 0.85), ("USD", 0.10), ("GBP", 0.05))
    # what became of each invoice
    paid_before_share: float = 0.06
    cancelled_share: float = 0.02
    unpaid_share: float = 0.05
    unbacked_share: float = 0.003
    stripe_share: float = 0.22
    gocardless_share: float = 0.06
    # bank payments
    recorded_bank_share: float = 0.10
    multi_listed: float = 0.03
    multi_unlisted: float = 0.01
    partial: float = 0.02
    overpaid: float = 0.01
    fee_short: float = 0.02
    duplicate: float = 0.005
    other_currency: float = 0.004
    # references and payers of bank payments
    no_reference: float = 0.07
    typo: float = 0.02
    decoy: float = 0.25
    bank_prefix: float = 0.25
    cut_at_18: float = 0.15
    third_party_payer: float = 0.08
    empty_payer: float = 0.02
    # cards and direct debits
    stripe_unrecorded: float = 0.02
    refund: float = 0.005
    dispute: float = 0.002
    payout_short: float = 0.02
    payout_breakdown_off: float = 0.01
    # lines that are not customer payments (shares of n_invoices)
    closed_payments: float = 0.005
    non_customer: float = 0.03
    outgoing: float = 0.06


@dataclass(frozen=True)
class World:
    """The synthetic inputs (§4.3 shapes, all text) and the truth to grade a matcher against.

    `truth`: transaction_id, invoice_id, amount_minor, currency, confirms (the payment confirms a
    WHMCS-recorded one). `cases`: one row per transaction: case, expected exception kind ("" if
    none), customer (a payment by a customer), belongs (it should be allocated to invoices).
    `unbacked`: whmcs_txn_id of the recorded payments that no money backs.
    """

    invoices: pd.DataFrame
    transactions: pd.DataFrame
    recorded: pd.DataFrame
    payouts: pd.DataFrame
    payout_lines: pd.DataFrame
    truth: pd.DataFrame
    cases: pd.DataFrame
    unbacked: pd.DataFrame
    config: SynthConfig = field(default_factory=SynthConfig)

    def write_csv(self, folder: Path) -> dict[str, Path]:
        """Write the five input files as UTF-8 CSV; returns their paths by name."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("invoices", "transactions", "recorded", "payouts", "payout_lines"):
            frame: pd.DataFrame = getattr(self, name)
            path = folder / f"{name}.csv"
            table = pa.Table.from_pandas(frame, preserve_index=False)
            pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))
            paths[name] = path
        return paths


# ---------------------------------------------------------------------------------------------
# text helpers


_LS = pa.large_string()


def _text(values: Sequence[str] | npt.NDArray[np.object_]) -> Text:
    return pa.array(values, type=_LS)


def _num(values: npt.NDArray[np.integer]) -> Text:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), _LS)


def _cat(*parts: Text | str) -> Text:
    arrays = [p if isinstance(p, pa.Array) else pa.scalar(p, _LS) for p in parts]
    return pc.binary_join_element_wise(*arrays, pa.scalar("", _LS))


def _pick(words: Sequence[str], index: npt.NDArray[np.integer]) -> Text:
    return _text(words).take(pa.array(np.asarray(index, dtype=np.int64)))


def _scatter(n: int, parts: list[tuple[I64, Text]]) -> Text:
    """Assemble a column from pieces built for subsets of rows."""
    rows = np.concatenate([r for r, _ in parts]) if parts else np.zeros(0, np.int64)
    if len(rows) != n or (n and np.bincount(rows, minlength=n).max() != 1):
        raise ValueError("pieces must cover every row exactly once")
    merged = pa.concat_arrays([t.cast(_LS) for _, t in parts]) if parts else _text([])
    inverse = np.empty(n, dtype=np.int64)
    inverse[rows] = np.arange(n)
    return merged.take(pa.array(inverse))


def _choose(
    rng: np.random.Generator, n: int, weights: Sequence[float] | npt.NDArray[np.floating]
) -> I64:
    w = np.asarray(weights, dtype=float)
    return np.asarray(rng.choice(len(w), size=n, p=w / w.sum()), dtype=np.int64)


def _iso(days: npt.NDArray[np.integer]) -> Text:
    return pc.cast(pa.array(np.asarray(days, dtype=np.int32), type=pa.date32()), _LS)


def _dotted(days: npt.NDArray[np.integer]) -> Text:
    stamps = pc.cast(
        pa.array(np.asarray(days, dtype=np.int32), type=pa.date32()), pa.timestamp("s")
    )
    return pc.cast(pc.strftime(stamps, format="%d.%m.%Y"), _LS)


def _ids(prefix: str, serial: I64, width: int, salt: int) -> Text:
    """Unique, random-looking ids (ch_3Nx...): the last ten characters are a bijection of the
    serial number (unique), the others are scrambled from it (random-looking)."""
    alphabet = np.frombuffer(
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8
    )
    unique = serial.astype(np.uint64) % np.uint64(62**10)
    unique = (unique * np.uint64(7_919_000_003) + np.uint64(salt)) % np.uint64(62**10)
    with np.errstate(over="ignore"):
        scrambled = serial.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt)
    chars = np.empty((len(serial), width), dtype=np.uint8)
    for k in range(width):
        source = unique if k < 10 else scrambled
        chars[:, width - 1 - k] = alphabet[(source % np.uint64(62)).astype(np.int64)]
        if k < 10:
            unique //= np.uint64(62)
        else:
            scrambled //= np.uint64(62)
    body = pa.array(chars.reshape(-1).view(f"S{width}"), type=pa.binary(width))
    return _cat(prefix, pc.cast(body, _LS))


def _money(minor: I64, currency: npt.NDArray[np.object_]) -> Text:
    codes, uniques = pd.factorize(np.asarray(currency, dtype=object))
    table = np.array([minor_exponent(str(c)) for c in uniques], dtype=np.int64)
    return format_minor(np.asarray(minor, dtype=np.int64), table[codes])


# ---------------------------------------------------------------------------------------------
# the world


@dataclass
class _Txns:
    """Transactions being built, with their truth."""

    ids: list[Text] = field(default_factory=list)
    source: list[npt.NDArray[np.object_]] = field(default_factory=list)
    booked: list[I64] = field(default_factory=list)
    amount: list[I64] = field(default_factory=list)
    currency: list[npt.NDArray[np.object_]] = field(default_factory=list)
    payer: list[Text] = field(default_factory=list)
    reference: list[Text] = field(default_factory=list)
    case: list[npt.NDArray[np.object_]] = field(default_factory=list)
    expected: list[npt.NDArray[np.object_]] = field(default_factory=list)
    customer: list[Bools] = field(default_factory=list)

    def add(
        self,
        ids: Text,
        source: str,
        booked: I64,
        amount: I64,
        currency: npt.NDArray[np.object_],
        payer: Text,
        reference: Text,
        case: str | npt.NDArray[np.object_],
        expected: str | npt.NDArray[np.object_],
        customer: bool,
    ) -> None:
        n = len(ids)
        self.ids.append(ids.cast(_LS))
        self.source.append(np.full(n, source, dtype=object))
        self.booked.append(np.asarray(booked, dtype=np.int64))
        self.amount.append(np.asarray(amount, dtype=np.int64))
        self.currency.append(np.asarray(currency, dtype=object))
        self.payer.append(payer.cast(_LS))
        self.reference.append(reference.cast(_LS))
        self.case.append(np.broadcast_to(np.asarray(case, dtype=object), (n,)).copy())
        self.expected.append(np.broadcast_to(np.asarray(expected, dtype=object), (n,)).copy())
        self.customer.append(np.full(n, customer, dtype=bool))


def generate(config: SynthConfig | None = None) -> World:
    """Build the world for a configuration (deterministic for a given seed)."""
    cfg = config or SynthConfig()
    rng = np.random.default_rng(cfg.seed)
    day0 = int((np.datetime64(cfg.start, "D") - _EPOCH).astype(np.int64))
    clients = _clients(cfg, rng)
    inv = _invoices(cfg, rng, clients, day0)
    txns = _Txns()
    truth: list[pd.DataFrame] = []
    recorded: list[pd.DataFrame] = []
    _bank_payments(cfg, rng, inv, clients, txns, truth, recorded)
    payouts, lines = _provider_payments(cfg, rng, inv, clients, txns, truth, recorded)
    unbacked = _unbacked(rng, inv, recorded)
    _closed_payments(cfg, rng, inv, clients, txns)
    _non_customer(cfg, rng, inv, txns, day0)
    _outgoing(cfg, rng, inv, txns, day0)
    return _assemble(cfg, inv, txns, truth, recorded, payouts, lines, unbacked)


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
    bank, group, leader, numbers, inv_ids = (
        leads.bank, leads.group, leads.leader, leads.numbers, leads.inv_ids
    )  # fmt: skip
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
        # the other invoices of the group, quoted the same way as the first
        others: list[Text] = []
        for k, member in enumerate(_other_members(group, leader[listed])):
            exists = member >= 0
            m_inv = bank[np.maximum(member, 0)]
            use_num = quote_num[listed] & (numbers[m_inv] > 0)
            number = _num(np.where(use_num, numbers[m_inv], inv_ids[m_inv]))
            written = pc.if_else(
                pa.array(use_num), _text(inv["invoice_num"].to_numpy()[m_inv]), number
            )
            joiner = ", " if k else ""
            others.append(pc.if_else(pa.array(exists), _cat(joiner, number), ""))
            others.append(pc.if_else(pa.array(exists), _cat(joiner, written), ""))
        multi_values = {
            "N1": values["N"].take(pa.array(listed)),
            "N2": _cat(others[0], others[2]),
            "NUM1": values["NUM"].take(pa.array(listed)),
            "NUM2": _cat(others[1], others[3]),
        }
        parts.append(
            (listed, _by_template(rng, np.arange(len(listed)), _MULTI_STYLES, multi_values))
        )
    unlisted = rows_all[lead_kind == _UNLISTED]
    if len(unlisted):
        parts.append(
            (unlisted, _pick(_NO_REFERENCE, rng.integers(0, len(_NO_REFERENCE), len(unlisted))))
        )
    reference = _scatter(n_lead, parts)
    return _bank_noise(cfg, rng, reference, payer, single, typo, lead_kind, values)


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


@dataclass(frozen=True)
class _Provider:
    """One card or direct-debit provider as the world draws it."""

    fate: int
    source: str
    prefix: str
    salt: int
    width: int
    payer_text: str


_PROVIDERS = (
    _Provider(_STRIPE, "stripe", "ch_", 21, 24, "STRIPE"),
    _Provider(_GOCARDLESS, "gocardless", "PM", 37, 12, "GOCARDLESS LTD"),
)


@dataclass(frozen=True)
class _Money:
    """Provider balance lines of one provider: ids, days, amounts, currencies."""

    ids: Text
    booked: I64
    amount: I64
    ccy: npt.NDArray[np.object_]


def _provider_payments(
    cfg: SynthConfig,
    rng: np.random.Generator,
    inv: pd.DataFrame,
    clients: pd.DataFrame,
    txns: _Txns,
    truth: list[pd.DataFrame],
    recorded: list[pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stripe charges and GoCardless payments, their fees, refunds, disputes and payouts.

    The steps draw from `rng` in a fixed order (charges, refunds and disputes, payouts, payout
    credits), so the same seed gives the same world.
    """
    payout_frames: list[pd.DataFrame] = []
    line_frames: list[pd.DataFrame] = []
    for provider in _PROVIDERS:
        rows = np.flatnonzero(inv["fate"].to_numpy() == provider.fate)
        if not len(rows):
            continue
        charges = _provider_charges(cfg, rng, provider, inv, clients, rows, txns, truth, recorded)
        fees = _provider_fees(provider, charges, txns)
        back = _refunds_and_disputes(cfg, rng, provider, charges, txns)
        payouts, lines = _payouts(cfg, rng, provider, [charges, fees, back])
        payout_frames.append(payouts)
        line_frames.append(lines)
        _payout_credits(cfg, rng, provider, payouts, txns)
    for frame in payout_frames:
        del frame["_amount"]
    payouts_all = pd.concat(payout_frames, ignore_index=True) if payout_frames else pd.DataFrame()
    lines_all = pd.concat(line_frames, ignore_index=True) if line_frames else pd.DataFrame()
    return payouts_all, lines_all


def _provider_charges(
    cfg: SynthConfig,
    rng: np.random.Generator,
    provider: _Provider,
    inv: pd.DataFrame,
    clients: pd.DataFrame,
    rows: npt.NDArray[np.intp],
    txns: _Txns,
    truth: list[pd.DataFrame],
    recorded: list[pd.DataFrame],
) -> _Money:
    """The provider's charges of the invoices in `rows`; most recorded in WHMCS by transid."""
    n, source = len(rows), provider.source
    amount = inv["total"].to_numpy()[rows]
    ccy = inv["currency"].to_numpy()[rows]
    booked = inv["issued"].to_numpy()[rows] + rng.integers(0, 11, n)
    serial = np.arange(n, dtype=np.int64)
    ids = _ids(provider.prefix, serial, provider.width, provider.salt)
    company = _text(clients["company"].to_numpy()[inv["client"].to_numpy()[rows]])
    invoice_ids = _num(inv["invoice_id"].to_numpy()[rows])
    described = pc.if_else(
        pa.array(pc.equal(company, "").to_numpy(zero_copy_only=False)),
        _cat("Invoice #", invoice_ids),
        _cat(company, " - Invoice #", invoice_ids),
    )
    payer = _payer_names(rng, clients, inv["client"].to_numpy()[rows], 0.1, 0.1)
    unrecorded = rng.random(n) < cfg.stripe_unrecorded
    case = np.where(unrecorded, f"{source}_description", f"{source}_recorded")
    txns.add(ids, source, booked, amount, ccy, payer, described, case, "", True)
    truth.append(
        pd.DataFrame(
            {
                "transaction_id": ids.to_numpy(zero_copy_only=False),
                "invoice_id": inv["invoice_id"].to_numpy()[rows],
                "amount_minor": amount,
                "currency": ccy,
                "confirms": ~unrecorded,
            }
        )
    )
    rec = ~unrecorded
    inv.loc[rows[rec], "status"] = "Paid"
    inv.loc[rows[rec], "balance"] = 0
    recorded.append(
        pd.DataFrame(
            {
                "whmcs_txn_id": _num(
                    (20_000_000 if source == "stripe" else 30_000_000) + serial[rec]
                ).to_numpy(zero_copy_only=False),
                "invoice_id": inv["invoice_id"].to_numpy()[rows[rec]],
                "recorded_on": booked[rec],
                "amount": amount[rec],
                "fees": (amount[rec] * 15 // 1000 + 25),
                "currency": ccy[rec],
                "gateway": source,
                "transid": ids.filter(pa.array(rec)).to_numpy(zero_copy_only=False),
            }
        )
    )
    return _Money(ids, booked, amount, ccy)


def _provider_fees(provider: _Provider, charges: _Money, txns: _Txns) -> _Money:
    """The provider's fee on each charge (1.5 % + 25 minor units), booked the same day."""
    source, n = provider.source, len(charges.amount)
    fee = charges.amount * 15 // 1000 + 25
    fee_ids = _cat(charges.ids, ":fee")
    fee_ref = _cat(f"{source.capitalize()} fee for ", charges.ids)
    txns.add(fee_ids, source, charges.booked, -fee, charges.ccy, _text([""] * n), fee_ref,
             "provider_fee", "", False)  # fmt: skip
    return _Money(fee_ids, charges.booked, -fee, charges.ccy)


def _refunds_and_disputes(
    cfg: SynthConfig, rng: np.random.Generator, provider: _Provider, charges: _Money, txns: _Txns
) -> _Money:
    """Some charges refunded (half, at least 1) or disputed (whole), 3 to 29 days later."""
    n = len(charges.amount)
    roll = rng.random(n)
    back = np.flatnonzero(roll < cfg.refund + cfg.dispute)
    is_dispute = roll[back] < cfg.dispute
    back_ids = _cat(_ids("txn_", np.arange(n, dtype=np.int64)[back], 20, provider.salt + 1), "")
    back_ref = pc.if_else(
        pa.array(is_dispute),
        _cat("Dispute ", charges.ids.take(pa.array(back))),
        _cat("Refund for ", charges.ids.take(pa.array(back))),
    )
    amount = charges.amount[back]
    back_amount = -np.where(is_dispute, amount, np.maximum(amount // 2, 1))
    back_booked = charges.booked[back] + rng.integers(3, 30, len(back))
    kind = np.where(is_dispute, "dispute", "refund")
    txns.add(back_ids, provider.source, back_booked, back_amount, charges.ccy[back],
             _text([""] * len(back)), back_ref, kind, kind, False)  # fmt: skip
    return _Money(back_ids, back_booked, back_amount, charges.ccy[back])


def _payouts(
    cfg: SynthConfig, rng: np.random.Generator, provider: _Provider, parts: list[_Money]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Everything of a currency and day paid out two days later; some payouts declare an
    amount their lines do not add up to. Returns (payouts, payout lines); the payouts carry
    their lines' true sum as `_amount` for the bank credit."""
    all_ids = pa.concat_arrays([p.ids.cast(_LS) for p in parts])
    all_booked = np.concatenate([p.booked for p in parts])
    all_amount = np.concatenate([p.amount for p in parts])
    all_ccy = np.concatenate([p.ccy for p in parts])
    frame = pd.DataFrame({"day": all_booked + 2, "ccy": all_ccy, "amount": all_amount})
    key = frame.groupby(["ccy", "day"], sort=True).ngroup().to_numpy()
    sums = frame.groupby(["ccy", "day"], sort=True)["amount"].sum()
    n_po = len(sums)
    po_ids = _ids("po_" if provider.source == "stripe" else "PO",
                  np.arange(n_po, dtype=np.int64), 16, provider.salt + 2)  # fmt: skip
    po_day = sums.index.get_level_values(1).to_numpy(dtype=np.int64)
    po_amount = sums.to_numpy(dtype=np.int64)
    last_day = int(all_booked.max()) if len(all_booked) else 0
    declared = po_amount.copy()
    off = (rng.random(n_po) < cfg.payout_breakdown_off) & (po_amount > 0)
    declared[off] += rng.integers(-500, 500, int(off.sum())) | 1
    payouts = pd.DataFrame(
        {
            "payout_id": po_ids.to_numpy(zero_copy_only=False),
            "source": provider.source,
            "arrival_on": po_day,
            "amount": declared,
            "currency": sums.index.get_level_values(0).to_numpy(dtype=object),
            "status": np.where(po_day + 2 > last_day, "in_transit", "paid"),
            "_off": off,
            "_amount": po_amount,
        }
    )
    lines = pd.DataFrame(
        {
            "payout_id": po_ids.take(pa.array(key)).to_numpy(zero_copy_only=False),
            "transaction_id": all_ids.to_numpy(zero_copy_only=False),
        }
    )
    return payouts, lines


def _payout_credits(
    cfg: SynthConfig,
    rng: np.random.Generator,
    provider: _Provider,
    payouts: pd.DataFrame,
    txns: _Txns,
) -> None:
    """The bank credit of each paid payout, some arriving short (a negative payout, refunds
    beyond charges, is a debit of the bank account)."""
    status = payouts["status"].to_numpy()
    declared = payouts["amount"].to_numpy(dtype=np.int64)
    paid = np.flatnonzero((status == "paid") & (payouts["_amount"].to_numpy() != 0))
    short = (rng.random(len(paid)) < cfg.payout_short) & (declared[paid] > 0)
    credit = declared[paid].copy()
    cut = np.maximum(
        1, (credit[short] * rng.uniform(0.005, 0.05, int(short.sum()))).astype(np.int64)
    )
    credit[short] -= cut
    salt, payer_text = provider.salt, provider.payer_text
    credit_ids = _ids(
        "bk_po_", np.arange(len(paid), dtype=np.int64) + salt * 1_000_000, 16, salt + 3
    )
    po_ids = pa.array(payouts["payout_id"].to_numpy()[paid], type=_LS)
    reference = pc.utf8_slice_codeunits(_cat(f"{payer_text} PAYOUT ", po_ids), 0, 30)
    expected = np.where(short, "payout_shortfall", "")
    po_day = payouts["arrival_on"].to_numpy(dtype=np.int64)[paid]
    po_ccy = payouts["currency"].to_numpy(dtype=object)[paid]
    txns.add(credit_ids, "bank", po_day + rng.integers(0, 2, len(paid)), credit, po_ccy,
             _text([payer_text] * len(paid)), reference, "payout_credit", expected,
             False)  # fmt: skip


def _unbacked(
    rng: np.random.Generator, inv: pd.DataFrame, recorded: list[pd.DataFrame]
) -> pd.DataFrame:
    """Payments WHMCS recorded as received with no money behind them."""
    rows = np.flatnonzero(inv["fate"].to_numpy() == _UNBACKED)
    stripe = rng.random(len(rows)) < 0.5
    serial = np.arange(len(rows), dtype=np.int64)
    transid = pc.if_else(
        pa.array(stripe), _ids("ch_", serial + 10_000_000, 24, 99), _text([""] * len(rows))
    )
    ids = _num(40_000_000 + serial).to_numpy(zero_copy_only=False)
    recorded.append(
        pd.DataFrame(
            {
                "whmcs_txn_id": ids,
                "invoice_id": inv["invoice_id"].to_numpy()[rows],
                "recorded_on": inv["issued"].to_numpy()[rows] + rng.integers(0, 10, len(rows)),
                "amount": inv["total"].to_numpy()[rows],
                "fees": np.zeros(len(rows), dtype=np.int64),
                "currency": inv["currency"].to_numpy()[rows],
                "gateway": np.where(stripe, "stripe", "banktransfer"),
                "transid": transid.to_numpy(zero_copy_only=False),
            }
        )
    )
    return pd.DataFrame({"whmcs_txn_id": ids})


def _closed_payments(
    cfg: SynthConfig, rng: np.random.Generator, inv: pd.DataFrame, clients: pd.DataFrame,
    txns: _Txns,
) -> None:  # fmt: skip
    fate = inv["fate"].to_numpy()
    closed = np.flatnonzero(np.isin(fate, [_PAID_BEFORE, _CANCELLED]))
    n = min(len(closed), int(cfg.n_invoices * cfg.closed_payments))
    if not n:
        return
    rows = rng.choice(closed, size=n, replace=False)
    rows.sort()
    amount = inv["total"].to_numpy()[rows]
    day0 = int((np.datetime64(cfg.start, "D") - _EPOCH).astype(np.int64))
    booked = np.maximum(inv["issued"].to_numpy()[rows], day0) + rng.integers(5, 60, n)
    ids = _ids("bk_cl_", np.arange(n, dtype=np.int64), 14, 5)
    ref = _cat("Invoice ", _num(inv["invoice_id"].to_numpy()[rows]))
    payer = _payer_names(rng, clients, inv["client"].to_numpy()[rows], 0.0, 0.0)
    paid = fate[rows] == _PAID_BEFORE
    expected = np.where(paid, "duplicate_payment", "closed_invoice")
    txns.add(ids, "bank", booked, amount, inv["currency"].to_numpy()[rows], payer, ref,
             np.where(paid, "paid_invoice", "cancelled_invoice"), expected, True)  # fmt: skip


def _non_customer(
    cfg: SynthConfig, rng: np.random.Generator, inv: pd.DataFrame, txns: _Txns, day0: int
) -> None:
    n = int(cfg.n_invoices * cfg.non_customer)
    if not n:
        return
    ids = _ids("bk_nc_", np.arange(n, dtype=np.int64), 14, 7)
    who = _pick(NON_CUSTOMERS, rng.integers(0, len(NON_CUSTOMERS), n))
    amount = np.exp(rng.uniform(np.log(100), np.log(500_000), n)).astype(np.int64)
    rounded = rng.random(n) < 0.2
    amount[rounded] = (amount[rounded] // 10_000 + 1) * 10_000
    low, high = int(inv["invoice_id"].min()), int(inv["invoice_id"].max())
    values = {
        "R": _num(rng.integers(low, high + 1, n)),
        "S": _num(rng.integers(1000, 99_999, n)),
        "Y": _num(rng.integers(2023, 2027, n)),
    }
    styles = (
        ("Erstattung Umsatzsteuer {Y} StNr 143/{S}", 2),
        ("Interest {Y}", 2),
        ("Transfer from savings {S}", 2),
        ("Refund order {R}", 2),
        ("Gutschrift {R}", 2),
        ("Reimbursement {R}", 1),
        ("{R}", 1),
        ("", 1),
    )
    reference = _by_template(rng, np.arange(n), styles, values)
    booked = day0 + rng.integers(0, cfg.days, n)
    currency = np.full(n, "EUR", dtype=object)
    txns.add(ids, "bank", booked, amount, currency, who, reference, "non_customer",
             "unmatched_payment", False)  # fmt: skip


def _outgoing(
    cfg: SynthConfig, rng: np.random.Generator, inv: pd.DataFrame, txns: _Txns, day0: int
) -> None:
    n = int(cfg.n_invoices * cfg.outgoing)
    if not n:
        return
    ids = _ids("bk_out_", np.arange(n, dtype=np.int64), 14, 9)
    who = _pick(SUPPLIERS, rng.integers(0, len(SUPPLIERS), n))
    tiers = np.array(PRICE_TIERS, dtype=np.int64)
    amount = np.where(
        rng.random(n) < 0.5,
        tiers[rng.integers(0, len(tiers), n)],
        np.exp(rng.uniform(np.log(500), np.log(2_000_000), n)).astype(np.int64),
    )
    low, high = int(inv["invoice_id"].min()), int(inv["invoice_id"].max())
    values = {"R": _num(rng.integers(low, high + 1, n)), "S": _num(rng.integers(100, 99_999, n))}
    styles = (("Invoice {R}", 3), ("RE {R}", 2), ("Rechnung {S}", 2), ("Miete", 1), ("Gehalt", 1))
    reference = _by_template(rng, np.arange(n), styles, values)
    booked = day0 + rng.integers(0, cfg.days, n)
    currency = np.full(n, "EUR", dtype=object)
    txns.add(ids, "bank", booked, -amount, currency, who, reference, "outgoing", "", False)


def _table(columns: dict[str, Text | npt.NDArray[np.generic]]) -> pd.DataFrame:
    """A frame of text columns (pandas `str`, Arrow-backed) without a round trip via Python."""
    arrays = {
        name: (value if isinstance(value, pa.Array) else pa.array(value)).cast(_LS)
        if not (isinstance(value, np.ndarray) and value.dtype == bool)
        else pa.array(value)
        for name, value in columns.items()
    }
    frame: pd.DataFrame = pa.table(arrays).to_pandas()
    return frame


def _assemble(
    cfg: SynthConfig,
    inv: pd.DataFrame,
    txns: _Txns,
    truth: list[pd.DataFrame],
    recorded: list[pd.DataFrame],
    payouts: pd.DataFrame,
    lines: pd.DataFrame,
    unbacked: pd.DataFrame,
) -> World:
    currency = inv["currency"].to_numpy()
    invoices = _table(
        {
            "invoice_id": _num(inv["invoice_id"].to_numpy()),
            "invoice_num": inv["invoice_num"].to_numpy(),
            "client_id": _num(inv["client"].to_numpy() + 1),
            "client_name": inv["client_name"].to_numpy(),
            "company_name": inv["company_name"].to_numpy(),
            "issued_on": _iso(inv["issued"].to_numpy()),
            "due_on": _iso(inv["due"].to_numpy()),
            "total": _money(inv["total"].to_numpy(), currency),
            "balance": _money(inv["balance"].to_numpy(), currency),
            "currency": currency,
            "status": inv["status"].to_numpy(),
        }
    )
    ids = pa.concat_arrays(txns.ids)
    source = np.concatenate(txns.source)
    t_ccy = np.concatenate(txns.currency)
    transactions = _table(
        {
            "transaction_id": ids,
            "source": source,
            "account_id": np.where(source == "bank", "DE89370400440532013000", ""),
            "booked_on": _iso(np.concatenate(txns.booked)),
            "amount": _money(np.concatenate(txns.amount), t_ccy),
            "currency": t_ccy,
            "counterparty": pa.concat_arrays(txns.payer),
            "reference": pa.concat_arrays(txns.reference),
        }
    )
    rec = pd.concat(recorded, ignore_index=True)
    r_ccy = rec["currency"].to_numpy(dtype=object)
    recorded_frame = _table(
        {
            "whmcs_txn_id": rec["whmcs_txn_id"].to_numpy(dtype=object),
            "invoice_id": _num(rec["invoice_id"].to_numpy()),
            "recorded_on": _iso(rec["recorded_on"].to_numpy()),
            "amount": _money(rec["amount"].to_numpy(), r_ccy),
            "fees": _money(rec["fees"].to_numpy(), r_ccy),
            "currency": r_ccy,
            "gateway": rec["gateway"].to_numpy(dtype=object),
            "transid": rec["transid"].to_numpy(dtype=object),
        }
    )
    p_ccy = payouts["currency"].to_numpy(dtype=object)
    payout_frame = _table(
        {
            "payout_id": payouts["payout_id"].to_numpy(dtype=object),
            "source": payouts["source"].to_numpy(dtype=object),
            "arrival_on": _iso(payouts["arrival_on"].to_numpy()),
            "amount": _money(payouts["amount"].to_numpy(), p_ccy),
            "currency": p_ccy,
            "status": payouts["status"].to_numpy(dtype=object),
        }
    )
    truth_frame = pd.concat(truth, ignore_index=True)
    belongs = pc.is_in(ids, value_set=pa.array(truth_frame["transaction_id"]).cast(_LS))
    cases = _table(
        {
            "transaction_id": ids,
            "case": np.concatenate(txns.case),
            "expected": np.concatenate(txns.expected),
            "customer": np.concatenate(txns.customer),
        }
    )
    cases["belongs"] = belongs.to_numpy(zero_copy_only=False)
    return World(
        invoices=invoices,
        transactions=transactions,
        recorded=recorded_frame,
        payouts=payout_frame,
        payout_lines=_table(
            {
                "payout_id": lines["payout_id"].to_numpy(dtype=object),
                "transaction_id": lines["transaction_id"].to_numpy(dtype=object),
            }
        ),
        truth=truth_frame,
        cases=cases,
        unbacked=unbacked,
        config=cfg,
    )
