"""Load normalised rows: upsert on natural keys, quarantine what cannot load, move the
watermark and prove conservation, all in ONE database transaction per batch.

Re-loading the same batch changes nothing: a row is only updated when its content hash differs
(a pending bank line that later books, a WHMCS invoice whose balance moved). Conservation is
checked against what the database holds after the writes, per (account, currency, day):
raw records = loaded + quarantined, by count and by sum. Any difference aborts the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Table, and_, literal, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from recon.canonical import Dataset
from recon.db.models import QuarantinedRow, Watermark
from recon.db.tenancy import tenant_session
from recon.errors import ReconError
from tasks.payout_links import unlinked_rows, with_stored_payouts

_KEY_CHUNK = 400
_WRITE_CHUNK = 2000


class ConservationError(ReconError):
    """Raw records and loaded + quarantined rows disagree; nothing of the batch was kept."""


@dataclass(frozen=True)
class Reject:
    """A raw record that cannot be loaded, with every reason, kept whole in quarantine."""

    row_key: str
    reasons: tuple[str, ...]
    record: dict[str, Any]
    account_ref: str | None = None
    booked_on: dt.date | None = None
    amount_minor: int | None = None
    currency: str | None = None
    raw_payload_id: int | None = None


@dataclass
class Batch:
    """What one normalisation produced for one dataset of one account.

    `rows` is a canonical frame (plus `raw_payload_id`); `rejects` the records that go to
    quarantine. Together they hold every distinct raw record exactly once.
    """

    provider: str
    dataset: Dataset
    rows: pd.DataFrame
    rejects: list[Reject] = field(default_factory=list)


@dataclass(frozen=True)
class LoadResult:
    """What one load did."""

    dataset: str
    inserted: int
    updated: int
    unchanged: int
    quarantined: int

    @property
    def loaded(self) -> int:
        """Rows now in the table for this batch."""
        return self.inserted + self.updated + self.unchanged


def content_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a row's canonical JSON (sorted keys, dates as ISO strings)."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def quarantine_key(record: dict[str, Any]) -> str:
    """A stable key for a raw record that has no usable id of its own."""
    return "sha256:" + content_hash(record)


def _python_value(value: Any) -> Any:
    """A plain Python value for the database: numpy scalars unwrapped, NaN/NaT as None."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()  # numpy scalar -> int/str
    return value


def _records(dataset: Dataset, rows: pd.DataFrame, tenant_id: str) -> list[dict[str, Any]]:
    missing = [c for c in dataset.columns if c not in rows.columns]
    if missing:
        raise ValueError(f"{dataset.name} rows lack columns {missing}")
    records = []
    for raw in rows.to_dict("records"):
        record = {column: _python_value(raw[column]) for column in dataset.columns}
        for column in dataset.money:
            if record[column] is not None and not isinstance(record[column], int):
                raise TypeError(f"{dataset.name}.{column} must be integer minor units")
        record["content_sha256"] = content_hash(record)
        if "raw_payload_id" in rows.columns and hasattr(dataset.model, "raw_payload_id"):
            record["raw_payload_id"] = _python_value(raw["raw_payload_id"])
        record["tenant_id"] = tenant_id
        records.append(record)
    return records


def _dedupe(dataset: Dataset, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per natural key; the last seen wins (pages come in order, bookings last)."""
    by_key: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in records:
        by_key[tuple(record[k] for k in dataset.key)] = record
    return list(by_key.values())


def _insert(session: Session, table: Table) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")


def _existing_hashes(
    session: Session, dataset: Dataset, records: Sequence[dict[str, Any]], tenant_id: str
) -> dict[tuple[Any, ...], tuple[str | None, Any]]:
    """(content hash, settled-column value) of the rows that already exist, by natural key."""
    table = dataset.model.__table__
    assert isinstance(table, Table)
    key_columns = [table.c[k] for k in dataset.key]
    found: dict[tuple[Any, ...], tuple[str | None, Any]] = {}
    settled = table.c[dataset.settled[0]] if dataset.settled else literal(None)
    keys = [tuple(r[k] for k in dataset.key) for r in records]
    for start in range(0, len(keys), _KEY_CHUNK):
        chunk = keys[start : start + _KEY_CHUNK]
        condition = (
            key_columns[0].in_([k[0] for k in chunk])
            if len(key_columns) == 1
            else tuple_(*key_columns).in_(chunk)
        )
        # Core statements are not scoped by the ORM guard: name the tenant (RLS does it on PG).
        statement = select(*key_columns, table.c.content_sha256, settled).where(
            table.c.tenant_id == tenant_id, condition
        )
        for row in session.execute(statement):
            found[tuple(row[: len(key_columns)])] = (row[-2], row[-1])
    return found


def _would_unsettle(dataset: Dataset, stored: Any, record: dict[str, Any]) -> bool:
    if not dataset.settled:
        return False
    column, done, before = dataset.settled
    return bool(stored == done and record[column] == before)


def _upsert(session: Session, dataset: Dataset, records: list[dict[str, Any]]) -> tuple[int, int]:
    """Insert new rows and update changed ones; returns (inserted, updated).

    An unchanged row costs a hash compare and no statement: only new and changed records are
    sent, as one executemany (compiled once) per chunk. The statement keeps its own guard (update
    only when the hash differs, never unsettle a booked line) for a row written in between.
    """
    if not records:
        return 0, 0
    table = dataset.model.__table__
    assert isinstance(table, Table)
    existing = _existing_hashes(session, dataset, records, records[0]["tenant_id"])
    new: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    for record in records:
        stored = existing.get(tuple(record[k] for k in dataset.key))
        if stored is None:
            new.append(record)
        elif stored[0] != record["content_sha256"] and not _would_unsettle(
            dataset, stored[1], record
        ):
            changed.append(record)
    writes = new + changed
    if not writes:
        return 0, 0
    statement = _insert(session, table)
    changing = [c for c in writes[0] if c not in (*dataset.key, "tenant_id")]
    condition = table.c.content_sha256.is_distinct_from(statement.excluded.content_sha256)
    if dataset.settled:
        column, done, before = dataset.settled
        # A booked line is never set back to pending by an older page or window.
        condition = and_(
            condition, ~and_(table.c[column] == done, statement.excluded[column] == before)
        )
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", *dataset.key],
        set_={
            **{c: statement.excluded[c] for c in changing},
            "updated_at": statement.excluded.updated_at,
        },
        where=condition,
    )
    now = dt.datetime.now(dt.UTC)
    for start in range(0, len(writes), _WRITE_CHUNK):
        chunk = [
            {**r, "created_at": now, "updated_at": now}
            for r in writes[start : start + _WRITE_CHUNK]
        ]
        session.execute(statement, chunk)
    return len(new), len(changed)


def _quarantine(session: Session, batch: Batch, tenant_id: str, run_id: str | None) -> None:
    if not batch.rejects:
        return
    table = QuarantinedRow.__table__
    assert isinstance(table, Table)
    values = [
        {
            "tenant_id": tenant_id,
            "run_id": run_id,
            "provider": batch.provider,
            "dataset": batch.dataset.name,
            "account_ref": r.account_ref,
            "row_key": r.row_key,
            "booked_on": r.booked_on,
            "amount_minor": r.amount_minor,
            "currency": r.currency,
            "reasons": list(r.reasons),
            "record": json.loads(json.dumps(r.record, default=str)),
            "raw_payload_id": r.raw_payload_id,
            "created_at": dt.datetime.now(dt.UTC),
        }
        for r in {r.row_key: r for r in batch.rejects}.values()
    ]
    statement = _insert(session, table).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["tenant_id", "provider", "dataset", "row_key"],
        set_={"reasons": statement.excluded.reasons, "run_id": statement.excluded.run_id},
    )
    session.execute(statement)


def _conservation_groups(dataset: Dataset) -> tuple[str | None, str | None, str | None]:
    """(account column, day column, amount column) of a dataset, where it has them."""
    account = "account_ref" if "account_ref" in dataset.columns else None
    day = dataset.dates[0] if dataset.dates else None
    amount = dataset.money[0] if dataset.money else None
    return account, day, amount


def expected_totals(batch: Batch) -> pd.DataFrame:
    """Per (account, currency, day): how many distinct raw records there are, and their sum."""
    records = _dedupe(batch.dataset, _records(batch.dataset, batch.rows, ""))
    return _expected_totals(batch, records)


def _expected_totals(batch: Batch, records: list[dict[str, Any]]) -> pd.DataFrame:
    account, day, amount = _conservation_groups(batch.dataset)
    loaded = [
        {
            "account": r[account] if account else "",
            "currency": r.get("currency") or "",
            "day": r[day] if day else None,
            "amount": r[amount] if amount else 0,
        }
        for r in records
    ]
    quarantined = [
        {
            "account": q.account_ref or "",
            "currency": q.currency or "",
            "day": q.booked_on,
            "amount": q.amount_minor or 0,
        }
        for q in {q.row_key: q for q in batch.rejects}.values()
    ]
    return _totals(
        pd.DataFrame(loaded + quarantined, columns=["account", "currency", "day", "amount"])
    )


def _totals(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.fillna({"account": "", "currency": "", "amount": 0}).astype({"amount": "int64"})
    frame["day"] = frame["day"].map(lambda d: d.isoformat() if isinstance(d, dt.date) else "")
    grouped = frame.groupby(["account", "currency", "day"], dropna=False)["amount"]
    return (
        pd.DataFrame({"count": grouped.size(), "sum": grouped.sum()})
        .reset_index()
        .sort_values(["account", "currency", "day"])
        .reset_index(drop=True)
    )


def stored_totals(session: Session, batch: Batch, tenant_id: str) -> pd.DataFrame:
    """The same totals, read back after the writes: a record counts as loaded only when the
    table holds its key with exactly its content (or a settled version it may not undo), and
    as quarantined only when the quarantine holds its key."""
    records = _dedupe(batch.dataset, _records(batch.dataset, batch.rows, tenant_id))
    return _stored_totals(session, batch, tenant_id, records)


def _stored_totals(
    session: Session, batch: Batch, tenant_id: str, records: list[dict[str, Any]]
) -> pd.DataFrame:
    dataset = batch.dataset
    account, day, amount = _conservation_groups(dataset)
    stored = _existing_hashes(session, dataset, records, tenant_id) if records else {}
    rows: list[dict[str, Any]] = []
    for record in records:
        found = stored.get(tuple(record[k] for k in dataset.key))
        if found is None:
            continue
        content, settled = found
        if content != record["content_sha256"] and not _would_unsettle(dataset, settled, record):
            continue
        rows.append(
            {
                "account": record[account] if account else "",
                "currency": record.get("currency") or "",
                "day": record[day] if day else None,
                "amount": record[amount] if amount else 0,
            }
        )
    row_keys = list({q.row_key for q in batch.rejects})
    for start in range(0, len(row_keys), _KEY_CHUNK):
        statement = select(
            QuarantinedRow.account_ref.label("account"),
            QuarantinedRow.currency.label("currency"),
            QuarantinedRow.booked_on.label("day"),
            QuarantinedRow.amount_minor.label("amount"),
        ).where(
            and_(
                QuarantinedRow.provider == batch.provider,
                QuarantinedRow.dataset == dataset.name,
                QuarantinedRow.row_key.in_(row_keys[start : start + _KEY_CHUNK]),
            )
        )
        rows += [dict(r._mapping) for r in session.execute(statement)]
    frame = pd.DataFrame(rows, columns=["account", "currency", "day", "amount"])
    frame["amount"] = frame["amount"].fillna(0)
    return _totals(frame)


def check_conservation(expected: pd.DataFrame, stored: pd.DataFrame, what: str) -> None:
    """Raise ConservationError naming the first (account, currency, day) that disagrees."""
    merged = expected.merge(
        stored, on=["account", "currency", "day"], how="outer", suffixes=("_raw", "_db")
    ).fillna(0)
    bad = merged[
        (merged["count_raw"] != merged["count_db"]) | (merged["sum_raw"] != merged["sum_db"])
    ]
    if not bad.empty:
        first = bad.iloc[0]
        raise ConservationError(
            f"conservation failed for {what} on account {first['account'] or '-'}, "
            f"{first['currency'] or '-'}, {first['day'] or '-'}: raw {int(first['count_raw'])} "
            f"records summing {int(first['sum_raw'])}, stored {int(first['count_db'])} summing "
            f"{int(first['sum_db'])}; nothing of this batch was kept"
        )


def _move_watermark(
    session: Session,
    tenant_id: str,
    provider: str,
    account_ref: str,
    dataset: str,
    through: dt.date,
) -> None:
    mark = session.scalar(
        select(Watermark).where(
            Watermark.provider == provider,
            Watermark.account_ref == account_ref,
            Watermark.dataset == dataset,
        )
    )
    if mark is None:
        session.add(
            Watermark(
                tenant_id=tenant_id,
                provider=provider,
                account_ref=account_ref,
                dataset=dataset,
                loaded_through=through,
            )
        )
    elif through > mark.loaded_through:
        mark.loaded_through = through


def restrict(batch: Batch, first: dt.date, last: dt.date) -> Batch:
    """The part of a batch served for the days [first, last]: rows whose window date (the
    dataset's first date column: `booked_on`, `arrival_on`) lies in them, and the rejects dated
    in them or not dated at all (a record whose date cannot be read is kept wherever it is
    served: quarantine is keyed, so it is counted once). Datasets without a date are returned
    whole; `restrict_lines` cuts payout lines to the payouts kept."""
    if not batch.dataset.dates:
        return batch
    column = batch.dataset.dates[0]
    days = [_python_value(v) for v in batch.rows[column]] if column in batch.rows else []
    mask = [isinstance(d, dt.date) and first <= d <= last for d in days]
    rows = batch.rows[mask] if mask else batch.rows.iloc[0:0]
    rejects = [r for r in batch.rejects if r.booked_on is None or first <= r.booked_on <= last]
    return Batch(batch.provider, batch.dataset, rows.reset_index(drop=True), rejects)


def restrict_lines(lines: Batch, payouts: Batch, cut: Batch) -> Batch:
    """Payout lines less those of the payouts that `cut` (the payouts batch restricted to some
    days) left out of `payouts` (the whole batch). A line whose payout is not among the
    payouts' rows at all (quarantined, or listed on another page) is kept, as a fresh load of
    the window keeps it; lines' rejects are kept whole."""
    if lines.rows.empty:
        return lines

    def keys(batch: Batch) -> set[tuple[Any, Any]]:
        return set(zip(batch.rows["source"], batch.rows["payout_id"], strict=True))

    dropped = keys(payouts) - keys(cut)
    mask = [
        (source, payout) not in dropped
        for source, payout in zip(lines.rows["source"], lines.rows["payout_id"], strict=True)
    ]
    return Batch(
        lines.provider, lines.dataset, lines.rows[mask].reset_index(drop=True), lines.rejects
    )


def load_batch_in(
    session: Session,
    tenant_id: str,
    batch: Batch,
    *,
    run_id: str | None = None,
    watermark: tuple[str, dt.date] | None = None,
) -> LoadResult:
    """Load one batch inside the caller's transaction (see `load_batch`)."""
    # A payout loaded in another window links its transactions both ways (tasks.payout_links).
    rows = with_stored_payouts(session, tenant_id, batch.dataset, batch.rows)
    batch = Batch(batch.provider, batch.dataset, rows, batch.rejects)
    records = _dedupe(batch.dataset, _records(batch.dataset, batch.rows, tenant_id))
    inserted, updated = _upsert(session, batch.dataset, records)
    _quarantine(session, batch, tenant_id, run_id)
    check_conservation(
        _expected_totals(batch, records),
        _stored_totals(session, batch, tenant_id, records),
        f"{batch.provider} {batch.dataset.name}",
    )
    if watermark is not None:
        account_ref, through = watermark
        _move_watermark(
            session, tenant_id, batch.provider, account_ref, batch.dataset.name, through
        )
    for source, dataset, linked in unlinked_rows(session, tenant_id, batch.dataset, batch.rows):
        load_batch_in(session, tenant_id, Batch(source, dataset, linked), run_id=run_id)
    return LoadResult(
        dataset=batch.dataset.name,
        inserted=inserted,
        updated=updated,
        unchanged=len(records) - inserted - updated,
        quarantined=len({r.row_key for r in batch.rejects}),
    )


def load_batch(
    engine: Engine,
    tenant_id: str,
    batch: Batch,
    *,
    run_id: str | None = None,
    watermark: tuple[str, dt.date] | None = None,
) -> LoadResult:
    """Upsert, quarantine, check conservation and move the watermark in one transaction."""
    with tenant_session(engine, tenant_id) as session:
        return load_batch_in(session, tenant_id, batch, run_id=run_id, watermark=watermark)


def load_batches(
    engine: Engine, tenant_id: str, batches: Iterable[Batch], *, run_id: str | None = None
) -> list[LoadResult]:
    """Several batches in one transaction (all of a window's datasets land together)."""
    with tenant_session(engine, tenant_id) as session:
        return [load_batch_in(session, tenant_id, b, run_id=run_id) for b in batches]
