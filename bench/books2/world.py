"""The second world: one WHMCS tenant's books for a quarter, its bank statement, and the truth.

Cases (per bank credit): `ref_exact` (the number as printed), `ref_mangled_*` (separators
dropped or changed, lower case, digits only, glued to letters), `ref_cut` (the bank cut the
text before or inside the number), `name_amount` (no reference; the payer's name as the bank
prints it and the exact amount), `third_party_ref` (someone else pays, quoting the number),
`combined_ref` / `combined_noref` (one payment for two or three invoices of one client),
`partial`, `overpaid`, `non_customer` (credits that are no client's payment), `outgoing`.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.books2.numbering import Numbering, mangle, reference, tenant_formats
from bench.books2.people import FIRST, bank_name, make_client, stranger

INVOICE_HEADER = (
    "invoice_id", "invoice_num", "client_id", "client_name", "company_name", "issued_on",
    "due_on", "total", "balance", "currency", "status",
)  # fmt: skip
TXN_HEADER = (
    "transaction_id", "source", "account_id", "booked_on", "amount", "currency", "counterparty",
    "reference",
)  # fmt: skip
RECORDED_HEADER = (
    "whmcs_txn_id", "invoice_id", "recorded_on", "amount", "fees", "currency", "gateway",
    "transid",
)  # fmt: skip
PAYOUT_HEADER = ("payout_id", "source", "arrival_on", "amount", "currency", "status")
LINE_HEADER = ("payout_id", "transaction_id")
LOCAL_CURRENCY = {"pl": "PLN", "cs": "CZK", "sv": "SEK"}
CASE_WEIGHTS = (
    ("ref_exact", 30),
    ("ref_mangled", 18),
    ("ref_cut", 8),
    ("name_amount", 15),
    ("third_party_ref", 5),
    ("combined_ref", 5),
    ("combined_noref", 4),
    ("partial", 3),
    ("overpaid", 2),
)
GENERIC = ["", "", "Hosting", "platnosc", "pago", "Betaling", "Zahlung", "webhosting", "faktura"]


@dataclass(frozen=True)
class Books:
    """The §4.3 input frames (all text), the truth and one case row per transaction."""

    invoices: pd.DataFrame
    transactions: pd.DataFrame
    recorded: pd.DataFrame
    payouts: pd.DataFrame
    payout_lines: pd.DataFrame
    truth: pd.DataFrame
    cases: pd.DataFrame
    formats: tuple[str, ...]

    def write_csv(self, folder: Path) -> dict[str, Path]:
        """Write the five input files as UTF-8 CSV; returns their paths by name."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("invoices", "transactions", "recorded", "payouts", "payout_lines"):
            path = folder / f"{name}.csv"
            getattr(self, name).to_csv(path, index=False)
            paths[name] = path
        return paths


@dataclass
class _Client:
    client_id: int
    language: str
    first: str
    last: str
    person: str
    company: str
    currency: str
    field: int


@dataclass
class _Invoice:
    invoice_id: int
    invoice_num: str
    client: _Client
    issued: dt.date
    total: int


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _prices(rng: random.Random) -> list[int]:
    base = rng.sample([399, 500, 750, 995, 1200, 1990, 2400, 2995, 4900, 7900, 9900, 14900], 7)
    vat = rng.choice((10000, 11900, 12100, 12300, 12500))
    return [(p * vat + 5000) // 10000 for p in base]


def generate_books(seed: int, n_invoices: int = 4000) -> Books:
    """Books of one tenant (its own numbering formats, languages and bank) from a seed."""
    rng = random.Random(f"books2:{seed}")
    languages = rng.sample(sorted(FIRST), 3)
    formats = tenant_formats(rng)
    prices = _prices(rng)
    end = dt.date(2026, 3, 31) + dt.timedelta(days=rng.randrange(0, 200))
    start = end - dt.timedelta(days=90)
    first_issue = start - dt.timedelta(days=300)
    clients: list[_Client] = []
    for k in range(max(3, n_invoices // 3)):
        language = languages[min(2, int(rng.random() ** 1.6 * 3))]
        first, last, person, company = make_client(rng, language)
        currency = LOCAL_CURRENCY.get(language, "EUR") if rng.random() < 0.3 else "EUR"
        field = rng.choice((27, 35, 35, 70, 140))
        clients.append(
            _Client(1000 + 7 * k, language, first, last, person, company, currency, field)
        )
    weights = [rng.paretovariate(1.5) for _ in clients]
    # invoices, in issue order; the numbering format changes at switch points
    issued = sorted(
        first_issue + dt.timedelta(days=rng.randrange(0, (end - first_issue).days - 5))
        for _ in range(n_invoices)
    )
    switches = sorted(rng.sample(range(1, n_invoices), len(formats) - 1))
    next_id = rng.randrange(1, 20_000)
    sequence = rng.randrange(1, 900)
    invoices: list[_Invoice] = []
    owner: dict[int, _Client] = {}
    for position, day in enumerate(issued):
        fmt: Numbering = formats[sum(position >= s for s in switches)]
        client = rng.choices(clients, weights)[0]
        items = rng.choice((1, 1, 1, 2, 3))
        total = sum(rng.choice(prices) for _ in range(items))
        next_id += 1 if rng.random() < 0.9 else rng.randrange(2, 6)
        sequence += 1
        invoices.append(_Invoice(next_id, fmt.printer(day.year, sequence), client, day, total))
        owner[next_id] = client
    txns: list[dict[str, object]] = []
    truth: list[tuple[str, int, int, str]] = []
    cases: list[tuple[str, str, str, bool, bool]] = []
    status: dict[int, str] = {}

    def add(client_currency: str, day: dt.date, amount: int, payer: str, ref: str, case: str,
            expected: str, customer: bool, alloc: list[tuple[int, int]]) -> None:  # fmt: skip
        tid = f"BK{seed:03d}{len(txns):07d}"
        txns.append(
            {
                "transaction_id": tid,
                "source": "bank",
                "account_id": "main",
                "booked_on": day.isoformat(),
                "amount": _money(amount),
                "currency": client_currency,
                "counterparty": payer,
                "reference": ref,
            }
        )
        for invoice_id, part in alloc:
            truth.append((tid, invoice_id, part, client_currency))
        cases.append((tid, case, expected, customer, bool(alloc)))

    open_by_client: dict[int, list[_Invoice]] = {}
    for inv in invoices:
        day = inv.issued
        if day < start - dt.timedelta(days=45):
            roll = rng.random()
            if roll < 0.92:  # overdue ones stay open and may be paid in the window
                status[int(inv.invoice_id)] = "Paid" if roll < 0.89 else "Cancelled"
                continue
        status[int(inv.invoice_id)] = "Unpaid"
        client = inv.client
        open_by_client.setdefault(client.client_id, []).append(inv)
    paid: set[int] = set()
    for _client_id, open_list in sorted(open_by_client.items()):
        for inv in open_list:
            invoice_id = int(inv.invoice_id)
            if invoice_id in paid or rng.random() < 0.18:
                continue
            client = inv.client
            issued_day = inv.issued
            day = issued_day + dt.timedelta(days=rng.randrange(0, 35))
            if issued_day < start - dt.timedelta(days=45):
                day = start + dt.timedelta(days=rng.randrange(0, (end - start).days + 1))
            if not start <= day <= end:
                continue
            total = int(inv.total)
            number = str(inv.invoice_num)
            case = rng.choices([c for c, _ in CASE_WEIGHTS], [w for _, w in CASE_WEIGHTS])[0]
            payer = bank_name(rng, client.first, client.last, client.company, client.language,
                              client.field)  # fmt: skip
            if case in ("combined_ref", "combined_noref"):
                others = [
                    o for o in open_list
                    if int(o.invoice_id) not in paid and o is not inv
                    and o.issued <= day
                ]  # fmt: skip
                if not others:
                    case = "ref_exact"
                else:
                    group = [inv, *rng.sample(others, min(len(others), rng.choice((1, 1, 2))))]
                    ids = [int(g.invoice_id) for g in group]
                    amounts = [int(g.total) for g in group]
                    paid.update(ids)
                    ref = (
                        reference(
                            rng,
                            client.language,
                            [str(g.invoice_num) for g in group],
                            client.client_id,
                        )
                        if case == "combined_ref"
                        else rng.choice(GENERIC)
                    )
                    add(client.currency, day, sum(amounts), payer, ref, case, "", True,
                        list(zip(ids, amounts, strict=True)))  # fmt: skip
                    continue
            paid.add(invoice_id)
            if case == "ref_exact":
                ref = reference(rng, client.language, [number], client.client_id)
            elif case == "ref_mangled":
                kind, text = mangle(rng, number)
                case = f"ref_mangled_{kind}"
                ref = reference(rng, client.language, [text], client.client_id)
            elif case == "ref_cut":
                full = reference(rng, client.language, [number], client.client_id)
                at = full.find(number)
                limit = rng.choice((18, 20, 27))
                if at < 0 or at >= limit:
                    cut_at = max(1, min(limit, at + rng.randrange(1, max(2, len(number)))))
                else:
                    cut_at = at + rng.randrange(1, max(2, len(number)))
                ref = full[:cut_at]
            elif case == "name_amount":
                ref = rng.choice(GENERIC)
            elif case == "third_party_ref":
                payer = stranger(rng)
                ref = reference(rng, client.language, [number], client.client_id)
            elif case == "partial":
                part = total * rng.choice((30, 50, 60)) // 100
                ref = reference(rng, client.language, [number], client.client_id)
                add(client.currency, day, part, payer, ref, case, "", True, [(invoice_id, part)])
                continue
            else:  # overpaid
                over = total + rng.choice((100, 500, 1000))
                ref = reference(rng, client.language, [number], client.client_id)
                add(client.currency, day, over, payer, ref, case, "overpayment", True,
                    [(invoice_id, total)])  # fmt: skip
                continue
            add(client.currency, day, total, payer, ref, case, "", True, [(invoice_id, total)])
    span = (end - start).days
    for _ in range(n_invoices // 30):
        day = start + dt.timedelta(days=rng.randrange(0, span + 1))
        ref = rng.choice(
            ("Zwrot VAT {n}", "Devolución {n}", "Återbetalning {n}", "Rente {n}", "Bonus {n}")
        ).format(n=rng.randrange(100, 99999))
        add("EUR", day, rng.randrange(500, 90000), stranger(rng), ref, "non_customer",
            "unmatched_payment", False, [])  # fmt: skip
    for _ in range(n_invoices // 20):
        day = start + dt.timedelta(days=rng.randrange(0, span + 1))
        add("EUR", day, -rng.randrange(500, 200000), stranger(rng), "Rechnung supplier",
            "outgoing", "", False, [])  # fmt: skip
    # rows come in no particular order
    order = list(range(len(txns)))
    rng.shuffle(order)
    invoice_rows = []
    for inv in invoices:
        client = inv.client
        invoice_id = int(inv.invoice_id)
        issued_day = inv.issued
        total = int(inv.total)
        state = status[invoice_id]
        invoice_rows.append(
            {
                "invoice_id": str(invoice_id),
                "invoice_num": str(inv.invoice_num),
                "client_id": str(client.client_id),
                "client_name": client.person,
                "company_name": client.company,
                "issued_on": issued_day.isoformat(),
                "due_on": (issued_day + dt.timedelta(days=14)).isoformat(),
                "total": _money(total),
                "balance": _money(total if state == "Unpaid" else 0),
                "currency": client.currency,
                "status": state,
            }
        )
    truth_frame = pd.DataFrame(
        truth, columns=["transaction_id", "invoice_id", "amount_minor", "currency"]
    )
    truth_frame["confirms"] = False
    case_frame = pd.DataFrame(
        [cases[i] for i in order],
        columns=["transaction_id", "case", "expected", "customer", "belongs"],
    )
    return Books(
        invoices=pd.DataFrame(invoice_rows, columns=list(INVOICE_HEADER), dtype="str"),
        transactions=pd.DataFrame([txns[i] for i in order], columns=list(TXN_HEADER), dtype="str"),
        recorded=pd.DataFrame(columns=list(RECORDED_HEADER), dtype="str"),
        payouts=pd.DataFrame(columns=list(PAYOUT_HEADER), dtype="str"),
        payout_lines=pd.DataFrame(columns=list(LINE_HEADER), dtype="str"),
        truth=truth_frame,
        cases=case_frame,
        formats=tuple(f.name for f in formats),
    )
