"""Collects allocations and exceptions as the stages produce them, then builds the frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from recon.matching.book import Book
from recon.matching.parsing import format_minor
from recon.matching.vec import lexsort

I64 = npt.NDArray[np.int64]


def _column(
    blocks: list[dict[str, npt.NDArray[np.generic]]], name: str, kind: type
) -> npt.NDArray[np.generic]:
    if not blocks:
        return np.zeros(0, dtype=kind)
    return np.concatenate([b[name] for b in blocks]).astype(kind, copy=False)


@dataclass
class Ledger:
    """Allocation and exception rows, kept as arrays until the end."""

    book: Book
    _rules: dict[str, int] = field(default_factory=dict)
    _alloc: list[dict[str, npt.NDArray[np.generic]]] = field(default_factory=list)
    _first_invoice: I64 | None = None
    _exc: list[dict[str, npt.NDArray[np.generic]]] = field(default_factory=list)

    def allocate(
        self,
        p: I64,
        invoice_id: I64,
        amount: I64,
        rule: str | I64,
        confidence: I64,
        auto: npt.NDArray[np.bool_],
        names: Sequence[str] = (),
    ) -> None:
        """Record allocations: payment positions, WHMCS invoice ids, minor amounts.

        `rule` is one rule name for all rows, or per row an index into `names`.
        """
        if not len(p):
            return
        if self._first_invoice is None:
            self._first_invoice = np.full(self.book.n_transactions, np.iinfo(np.int64).max)
        np.minimum.at(self._first_invoice, p, invoice_id)
        if isinstance(rule, str):
            codes = np.full(len(p), self._rules.setdefault(rule, len(self._rules)), np.int64)
        else:
            table = np.array([self._rules.setdefault(n, len(self._rules)) for n in names])
            codes = table[np.asarray(rule, dtype=np.int64)]
        self._alloc.append(
            {
                "p": np.asarray(p, dtype=np.int64),
                "invoice_id": np.asarray(invoice_id, dtype=np.int64),
                "amount": np.asarray(amount, dtype=np.int64),
                "rule": codes.astype(np.int64),
                "confidence": np.asarray(confidence, dtype=np.int64),
                "auto": np.asarray(auto, dtype=np.bool_),
            }
        )

    def except_(
        self,
        kind: str,
        p: I64,
        invoice_id: I64,
        amount: I64,
        currency: I64,
        detail: list[str],
        subject: list[str] | None = None,
        *,
        rule: Sequence[str] | None = None,
        confidence: I64 | None = None,
    ) -> None:
        """Record exceptions of one kind; p is -1 and invoice_id 0 where there is none.

        `subject` names what each one is about when that is neither a payment nor an invoice
        alone (a payout id, a WHMCS payment id); "" where the payment and invoice say it.
        `rule` and `confidence` are those of the candidate an exception names (a runner-up);
        without them the rows have none.
        """
        if not len(detail):
            return
        n = len(detail)
        self._exc.append(
            {
                "kind": np.full(len(detail), kind, dtype=object),
                "p": np.asarray(p, dtype=np.int64),
                "invoice_id": np.asarray(invoice_id, dtype=np.int64),
                "amount": np.asarray(amount, dtype=np.int64),
                "ccy": np.asarray(currency, dtype=np.int64),
                "detail": np.asarray(detail, dtype=object),
                "subject": np.asarray(subject or [""] * n, dtype=object),
                "rule": np.asarray(rule if rule is not None else [""] * n, dtype=object),
                "confidence": (
                    np.asarray(confidence, dtype=np.int64)
                    if confidence is not None
                    else np.full(n, -1, dtype=np.int64)
                ),
            }
        )

    def invoice_of(self, p: I64) -> I64:
        """The (lowest) invoice id each payment was allocated to so far, 0 where none."""
        out = np.zeros(len(p), dtype=np.int64)
        if self._first_invoice is None or not len(p):
            return out
        known = p >= 0
        first = self._first_invoice[p[known]]
        out[known] = np.where(first == np.iinfo(np.int64).max, 0, first)
        return out

    def money(self, amount: I64, currency: I64) -> list[str]:
        """Amounts as text with their currency, for details ("12.50 EUR")."""
        if not len(amount):
            return []
        text = format_minor(np.asarray(amount), self.book.exponent[np.asarray(currency)])
        codes = np.asarray(self.book.currencies, dtype=object)[np.asarray(currency)]
        return [f"{a} {c}" for a, c in zip(text.to_pylist(), codes, strict=True)]

    def _currency_names(self, codes: I64) -> pd.Series:
        names = np.asarray(self.book.currencies, dtype=object)
        return pd.Series(names[codes] if len(codes) else np.zeros(0, object), dtype="str")

    def allocations(self) -> pd.DataFrame:
        """The allocations, in booking order of the payments, then by invoice and rule.

        Booking order (position) is (booked_on, transaction_id): a stable order by keys.
        """
        p = np.asarray(_column(self._alloc, "p", np.int64), dtype=np.int64)
        invoice = np.asarray(_column(self._alloc, "invoice_id", np.int64), dtype=np.int64)
        code = np.asarray(_column(self._alloc, "rule", np.int64), dtype=np.int64)
        names = np.array(sorted(self._rules, key=self._rules.__getitem__), dtype=object)
        # rule codes follow first use; rank them by name so the order depends on names only
        by_name = np.empty(len(names), dtype=np.int64)
        by_name[np.argsort(names.astype(str), kind="stable")] = np.arange(len(names))
        order = lexsort((by_name[code], invoice, p)) if len(p) else np.zeros(0, np.int64)
        p, invoice, code = p[order], invoice[order], code[order]
        rule = names[code] if len(code) else np.zeros(0, dtype=object)
        auto = np.asarray(_column(self._alloc, "auto", np.bool_), dtype=np.bool_)[order]
        return pd.DataFrame(
            {
                "transaction_id": self.book.txn_ids(p).to_pandas(),
                "invoice_id": invoice,
                "amount": np.asarray(_column(self._alloc, "amount", np.int64))[order],
                "currency": self._currency_names(self.book.txn_ccy[p]),
                "rule": pd.Series(rule, dtype="str"),
                "confidence": np.asarray(_column(self._alloc, "confidence", np.int64))[order],
                "decision": pd.Series(np.where(auto, "auto", "review"), dtype="str"),
            }
        )

    def exceptions(self) -> pd.DataFrame:
        """The exceptions, by kind, then payment (booking order), invoice and detail.

        `rule` and `confidence` are missing (NaN, <NA>) where a row names no candidate's.
        """
        kind = np.asarray(_column(self._exc, "kind", object), dtype=object)
        p = np.asarray(_column(self._exc, "p", np.int64), dtype=np.int64)
        invoice = np.asarray(_column(self._exc, "invoice_id", np.int64), dtype=np.int64)
        detail = np.asarray(_column(self._exc, "detail", object), dtype=object)
        subject = np.asarray(_column(self._exc, "subject", object), dtype=object)
        order = (
            lexsort((detail.astype(str), invoice, p, kind.astype(str)))
            if len(p)
            else np.zeros(0, np.int64)
        )
        kind, p, invoice, detail = kind[order], p[order], invoice[order], detail[order]
        subject = subject[order]
        rule = np.asarray(_column(self._exc, "rule", object), dtype=object)[order]
        rule[rule == ""] = None  # missing, as in rows others add to the frame without a rule
        confidence = np.asarray(_column(self._exc, "confidence", np.int64), dtype=np.int64)[order]
        if len(p) and len(self.book.txn_id):
            ids = self.book.txn_ids(np.maximum(p, 0))
        else:  # no payment to name (a window with none can still raise payout exceptions)
            ids = pa.array([""] * len(p), pa.large_string())
        txn = pc.if_else(pa.array(p >= 0), ids, pa.scalar("", pa.large_string()))
        return pd.DataFrame(
            {
                "kind": pd.Series(kind, dtype="str"),
                "transaction_id": txn.to_pandas(),
                "invoice_id": invoice,
                "amount": np.asarray(_column(self._exc, "amount", np.int64))[order],
                "currency": self._currency_names(
                    np.asarray(_column(self._exc, "ccy", np.int64), dtype=np.int64)[order]
                ),
                "detail": pd.Series(detail, dtype="str"),
                "subject": pd.Series(subject, dtype="str"),
                "rule": pd.Series(rule, dtype="str"),
                "confidence": pd.arrays.IntegerArray(confidence, confidence < 0),
            }
        )
