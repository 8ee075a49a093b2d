"""Validate a normalised batch with its Great Expectations suite before it loads.

Rows that break an expectation move to quarantine, each listing the names of the expectations it
broke; the rest load. When the share of bad rows passes the threshold the batch is held back
whole: nothing of it loads and the run fails with the reason. Results are kept per run.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import logging
import numbers
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

import expectations
from recon.db.models import Run, ValidationResult
from recon.errors import BatchHeldError, ReconError
from tasks.load import Batch, Reject

log = logging.getLogger("recon.validate")

ROW = "_row"
DEFAULT_HOLD_THRESHOLD = 0.05
DEFAULT_GRACE_DAYS = 3
DEFAULT_MAX_ABS_AMOUNT_MINOR = 10**10  # 100 million in a two-decimal currency
VERDICT_FORMAT = 1
"""Bumped when the way a GX result is read into outcomes changes: older verdicts are not reused."""
REUSE_LOOKBACK_RUNS = 10
"""How many of the tenant's latest runs over the same window are searched for a reusable verdict."""

SUITE_FOR: dict[tuple[str, str], str] = {
    ("gocardless", "transactions"): "bank_transactions",
    ("bank", "transactions"): "bank_transactions",
    ("gocardless_payments", "transactions"): "gocardless_payments",
    ("stripe", "transactions"): "stripe_transactions",
    ("stripe", "payouts"): "payouts",
    ("gocardless_payments", "payouts"): "payouts",
    ("whmcs", "invoices"): "whmcs_invoices",
    ("whmcs", "recorded"): "whmcs_transactions",
}


@dataclass(frozen=True)
class ValidationPolicy:
    """The tenant's thresholds for validation."""

    hold_threshold: float = DEFAULT_HOLD_THRESHOLD
    grace_days: int = DEFAULT_GRACE_DAYS
    max_abs_amount_minor: int = DEFAULT_MAX_ABS_AMOUNT_MINOR


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict on a batch."""

    name: str
    expectation: str
    success: bool
    failed_rows: frozenset[int]
    error: str | None = None


@dataclass
class ValidationOutcome:
    """The verdict on one batch, and the batch as it should load (good rows, more rejects)."""

    suite: str
    batch: Batch
    rows_evaluated: int
    rows_failed: int
    held: bool
    expectations: list[ExpectationOutcome] = field(default_factory=list)
    fingerprint: str | None = None
    """What the verdict depends on (suite, GX version, parameters, the frame), hashed."""
    definition: str | None = None
    """The same without the frame: equal for every batch of a suite validated alike."""
    reused_from: str | None = None
    """The run whose stored verdict was reused instead of running GX, if any."""

    @property
    def bad_share(self) -> float:
        """Rows quarantined (by parsing or by validation) over all raw records of the batch."""
        total = len(self.batch.rows) + len(self.batch.rejects)
        return len(self.batch.rejects) / total if total else 0.0

    @property
    def success(self) -> bool:
        """True when no row broke an expectation."""
        return self.rows_failed == 0

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary for the `validation_results` table."""
        return {
            "suite": self.suite,
            "rows_evaluated": self.rows_evaluated,
            "rows_failed": self.rows_failed,
            "held": self.held,
            "expectations": [
                {
                    "name": e.name,
                    "type": e.expectation,
                    "success": e.success,
                    "failed_rows": len(e.failed_rows),
                    "failed_row_indexes": sorted(e.failed_rows),
                    **({"error": e.error} if e.error else {}),
                }
                for e in self.expectations
            ],
            **({"fingerprint": self.fingerprint} if self.fingerprint else {}),
            **({"definition": self.definition} if self.definition else {}),
            **({"reused_from": self.reused_from} if self.reused_from else {}),
        }


_context_lock = threading.Lock()
_run_lock = threading.Lock()
_context: Any = None
_warming: threading.Thread | None = None
_warming_lock = threading.Lock()  # not the context lock: that one is held for the whole build


def prepare() -> None:
    """Start building the GX context in a background thread, once per process.

    Importing great-expectations and building its context take seconds (most of a batch's
    "validate" time; validating itself takes a fraction of a second): started when a run begins
    to serve its sources, it overlaps their provider calls instead of following them. The first
    validation waits for it through the context lock, as it would for its own build.
    """
    global _warming
    with _warming_lock:
        if _context is not None or _warming is not None:
            return
        _warming = threading.Thread(target=_warm, name="gx-context", daemon=True)
        _warming.start()


def _warm() -> None:
    try:
        _gx_context()
    except Exception:  # the first validation builds it again and reports the failure
        log.warning("building the great-expectations context ahead of time failed", exc_info=True)


def _gx_context() -> Any:
    """One ephemeral GX context per process, with every suite registered."""
    # GX takes seconds to import: only a process that validates pays for it.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from expectations.suites import SUITES, build_suite

    global _context
    with _context_lock:
        if _context is None:
            context = gx.get_context(mode="ephemeral")
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            source = context.data_sources.add_pandas("recon")
            asset = source.add_dataframe_asset("batch")
            definition = asset.add_batch_definition_whole_dataframe("whole")
            for name in SUITES:
                suite = context.suites.add_or_update(build_suite(name))
                context.validation_definitions.add(
                    gx.ValidationDefinition(data=definition, suite=suite, name=name)
                )
            _context = context
        return _context


def _frame_for(suite: str, rows: pd.DataFrame) -> pd.DataFrame:
    frame = rows.reset_index(drop=True).copy()
    frame[ROW] = range(len(frame))
    if suite == "stripe_transactions":
        amount = pd.to_numeric(frame["amount_minor"], errors="coerce").astype("Int64")
        fee = pd.to_numeric(frame["fee_minor"], errors="coerce").astype("Int64")
        frame["amount_minus_fee"] = amount - fee
        if "net_minor" not in frame:
            frame["net_minor"] = pd.NA
    return frame


def run_suite(
    suite: str, rows: pd.DataFrame, parameters: dict[str, Any]
) -> list[ExpectationOutcome]:
    """Validate `rows` against `suite`; which rows broke which expectation."""
    if rows.empty:
        return []
    frame = _frame_for(suite, rows)
    context = _gx_context()
    # GX's context and validation definitions are shared state, not safe across threads (the
    # flow extracts sources concurrently): one validation at a time.
    with _run_lock:
        definition = context.validation_definitions.get(suite)
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]},
        )
    outcomes = []
    for item in result.results:
        config = item.expectation_config
        meta = (config.meta or {}) if config is not None else {}
        name = str(meta.get("name") or (config.type if config else "unknown"))
        error = None
        info = item.exception_info or {}
        if info.get("raised_exception"):
            error = str(info.get("exception_message") or "the expectation raised an error")
        failed = frozenset(
            int(entry[ROW])
            for entry in (item.result or {}).get("unexpected_index_list") or []
            if isinstance(entry, dict) and ROW in entry
        )
        outcomes.append(
            ExpectationOutcome(
                name=name,
                expectation=config.type if config else "unknown",
                success=bool(item.success),
                failed_rows=failed,
                error=error,
            )
        )
    return outcomes


def _integer_money(batch: Batch, rows: pd.DataFrame) -> pd.DataFrame:
    """Money columns as nullable integers: pandas turns ints with a missing value into floats,
    which is exact below 2**53; anything with a fraction is a bug upstream, not data."""
    rows = rows.copy()
    for column in batch.dataset.money:
        if column in rows and pd.api.types.is_float_dtype(rows[column]):
            values = rows[column].dropna()
            if not (values == values.round()).all():
                raise ReconError(f"{batch.dataset.name}.{column} holds fractions of a minor unit")
            rows[column] = rows[column].astype("Int64")
    return rows


def _row_key(batch: Batch, record: dict[str, Any], seen: dict[str, int]) -> str:
    key = "|".join(str(record.get(column)) for column in batch.dataset.key)
    seen[key] += 1
    return key if seen[key] == 1 else f"{key}#{seen[key]}"


def _reject(batch: Batch, record: dict[str, Any], key: str, reasons: list[str]) -> Reject:
    day_column = batch.dataset.dates[0] if batch.dataset.dates else None
    amount_column = batch.dataset.money[0] if batch.dataset.money else None
    day = record.get(day_column) if day_column else None
    amount = record.get(amount_column) if amount_column else None
    currency = record.get("currency")
    return Reject(
        row_key=key,
        reasons=tuple(reasons),
        record={k: v for k, v in record.items() if k != ROW},
        account_ref=str(record["account_ref"]) if record.get("account_ref") else None,
        booked_on=day if isinstance(day, dt.date) else None,
        amount_minor=int(amount) if isinstance(amount, numbers.Integral) else None,
        currency=str(currency)[:8] if isinstance(currency, str) else None,
        raw_payload_id=record.get("raw_payload_id")
        if pd.notna(record.get("raw_payload_id"))
        else None,
    )


def validation_parameters(
    window_from: dt.date, window_to: dt.date, policy: ValidationPolicy
) -> dict[str, Any]:
    """The suite parameters a batch of `window` is validated with, today."""
    grace = dt.timedelta(days=policy.grace_days)
    return {
        "window_from": window_from - grace,
        "window_to": window_to + grace,
        "max_abs_amount_minor": policy.max_abs_amount_minor,
        "min_amount_minor": -policy.max_abs_amount_minor,
        # Tomorrow in UTC: a provider a timezone ahead may already book "tomorrow".
        "latest_day": dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1),
    }


@functools.cache
def _suite_source(suite: str) -> bytes:
    """The suite's committed JSON and the code that builds it, read without importing GX (a
    test keeps the two equal; the code is hashed too, so an edit not yet exported still counts)."""
    folder = Path(expectations.__file__).resolve().parent
    return (folder / "json" / f"{suite}.json").read_bytes() + (folder / "suites.py").read_bytes()


@functools.cache
def _gx_version() -> str:
    return importlib.metadata.version("great_expectations")


def definition_digest(suite: str, parameters: Mapping[str, Any]) -> str:
    """sha256 of what a verdict depends on besides the frame: the suite's definition, the GX
    version, the way results are read and the expectation parameters."""
    digest = hashlib.sha256()
    digest.update(f"{VERDICT_FORMAT}|{_gx_version()}|{suite}|".encode())
    digest.update(_suite_source(suite))
    digest.update(json.dumps(dict(parameters), sort_keys=True, default=str).encode())
    return digest.hexdigest()


def frame_digest(frame: pd.DataFrame) -> str | None:
    """A stable content hash of the frame given to GX: column names, dtypes and values (object
    columns also by their values' types, since pandas hashes those as text); None when a column
    cannot be hashed, and then no verdict is reused."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps([len(frame), [[str(c), str(t)] for c, t in frame.dtypes.items()]]).encode()
    )
    try:
        for column in frame.columns:
            values = frame[column]
            digest.update(pd.util.hash_pandas_object(values, index=False).to_numpy().tobytes())
            if values.dtype == object:
                kind = pd.api.types.infer_dtype(values, skipna=False)
                digest.update(kind.encode())
                if kind.startswith("mixed"):
                    types = values.map(lambda v: type(v).__qualname__)
                    digest.update(
                        pd.util.hash_pandas_object(types, index=False).to_numpy().tobytes()
                    )
    except (TypeError, ValueError):
        return None
    return digest.hexdigest()


@dataclass(frozen=True)
class StoredVerdict:
    """A verdict kept by an earlier run for the same fingerprint."""

    run_id: str
    expectations: list[ExpectationOutcome]


def _stored_outcomes(result: Mapping[str, Any]) -> list[ExpectationOutcome] | None:
    outcomes = []
    for entry in result.get("expectations") or []:
        indexes = entry.get("failed_row_indexes")
        if not isinstance(indexes, list) or len(indexes) != entry.get("failed_rows"):
            return None
        outcomes.append(
            ExpectationOutcome(
                name=str(entry["name"]),
                expectation=str(entry["type"]),
                success=bool(entry["success"]),
                failed_rows=frozenset(int(i) for i in indexes),
                error=entry.get("error"),
            )
        )
    return outcomes


def find_verdicts(
    session: Session,
    window: tuple[dt.date, dt.date],
    wanted: Iterable[tuple[str, str, str]],
    *,
    by: str = "fingerprint",
) -> dict[str, StoredVerdict]:
    """Stored verdicts of the tenant (the session's) for (suite, dataset, digest) triples, keyed
    by digest, among its latest runs over the same window; `by` is `fingerprint` (the verdict
    itself) or `definition` (a verdict of the same suite and parameters, whatever the frame)."""
    wanted = list(wanted)
    if not wanted:
        return {}
    runs = (
        select(Run.id)
        .where(Run.window_from == window[0], Run.window_to == window[1])
        .order_by(Run.started_at.desc())
        .limit(REUSE_LOOKBACK_RUNS)
    )
    rows = session.execute(
        select(ValidationResult.run_id, ValidationResult.dataset, ValidationResult.suite,
               ValidationResult.result)
        .where(
            ValidationResult.run_id.in_(runs.scalar_subquery()),
            ValidationResult.suite.in_({suite for suite, _, _ in wanted}),
        )
        .order_by(ValidationResult.id.desc())
    )  # fmt: skip
    keys = {(suite, dataset, digest) for suite, dataset, digest in wanted}
    found: dict[str, StoredVerdict] = {}
    for run_id, dataset, suite, result in rows:
        digest = (result or {}).get(by)
        if not isinstance(digest, str) or digest in found or (suite, dataset, digest) not in keys:
            continue
        outcomes = _stored_outcomes(result)
        if outcomes is not None:
            found[digest] = StoredVerdict(str(result.get("reused_from") or run_id), outcomes)
    return found


@dataclass
class Check:
    """A batch ready for its suite: the rows as GX sees them, the parameters, the digests."""

    batch: Batch
    suite: str | None
    rows: pd.DataFrame
    parameters: dict[str, Any]
    fingerprint: str | None
    definition: str | None

    @property
    def needs_gx(self) -> bool:
        """Whether GX has anything to look at (an empty batch or one without a suite has not)."""
        return self.suite is not None and not self.rows.empty


def check_for(
    batch: Batch,
    *,
    window_from: dt.date,
    window_to: dt.date,
    policy: ValidationPolicy | None = None,
) -> Check:
    """Ready `batch` for validation: its suite, parameters, rows, and the digests of both."""
    policy = policy or ValidationPolicy()
    suite = SUITE_FOR.get((batch.provider, batch.dataset.name))
    parameters = validation_parameters(window_from, window_to, policy)
    if suite is None:
        return Check(batch, None, batch.rows, parameters, None, None)
    rows = _integer_money(batch, batch.rows.reset_index(drop=True))
    definition = definition_digest(suite, parameters)
    frame = frame_digest(_frame_for(suite, rows)) if not rows.empty else None
    fingerprint = None
    if frame is not None:
        fingerprint = hashlib.sha256(f"{definition}|{frame}".encode()).hexdigest()
    return Check(batch, suite, rows, parameters, fingerprint, definition)


def validate_batch(
    batch: Batch,
    *,
    window_from: dt.date,
    window_to: dt.date,
    policy: ValidationPolicy | None = None,
) -> ValidationOutcome:
    """Split `batch` into rows that load and rows that go to quarantine; decide whether to hold."""
    check = check_for(batch, window_from=window_from, window_to=window_to, policy=policy)
    return validate_check(check, policy)


def validate_check(
    check: Check, policy: ValidationPolicy | None = None, reuse: StoredVerdict | None = None
) -> ValidationOutcome:
    """Validate a readied batch, with GX or, when `reuse` is given (a stored verdict of the
    same fingerprint), from that verdict without starting GX."""
    policy = policy or ValidationPolicy()
    batch, suite, rows = check.batch, check.suite, check.rows
    if suite is None:
        return ValidationOutcome("none", batch, len(batch.rows), 0, held=False)
    if reuse is not None and check.fingerprint is not None:
        outcomes = reuse.expectations
    else:
        reuse = None
        outcomes = run_suite(suite, rows, check.parameters)
    broken = [o for o in outcomes if o.error]
    if broken:
        raise ReconError(
            f"validation suite {suite} could not run expectation {broken[0].name}: "
            f"{broken[0].error}"
        )
    reasons: dict[int, list[str]] = defaultdict(list)
    for outcome in outcomes:
        for row in outcome.failed_rows:
            reasons[row].append(outcome.name)
    failed = sorted(reasons)
    seen: dict[str, int] = defaultdict(int)
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in rows.to_dict("records")
    ]
    new_rejects = [
        _reject(batch, records[i], _row_key(batch, records[i], seen), sorted(set(reasons[i])))
        for i in failed
    ]
    kept = rows.drop(index=failed).reset_index(drop=True)
    checked = Batch(batch.provider, batch.dataset, kept, [*batch.rejects, *new_rejects])
    verdict = ValidationOutcome(
        suite, checked, len(rows), len(failed), False, list(outcomes),
        fingerprint=check.fingerprint, definition=check.definition,
        reused_from=reuse.run_id if reuse else None,
    )  # fmt: skip
    verdict.held = verdict.bad_share > policy.hold_threshold
    if failed:
        log.warning(
            "%s: %d of %d rows broke expectations (%s)%s",
            suite,
            len(failed),
            len(rows),
            ", ".join(sorted({n for r in reasons.values() for n in r})),
            f" (verdict of run {reuse.run_id})" if reuse else "",
        )
    return verdict


def store_outcome(session: Session, run_id: str, outcome: ValidationOutcome) -> ValidationResult:
    """Keep the verdict of one batch with its run."""
    row = ValidationResult(
        run_id=run_id,
        dataset=outcome.batch.dataset.name,
        suite=outcome.suite,
        success=outcome.success,
        rows_evaluated=outcome.rows_evaluated,
        rows_failed=outcome.rows_failed,
        held=outcome.held,
        result=outcome.summary(),
    )
    session.add(row)
    return row


def raise_if_held(outcome: ValidationOutcome, policy: ValidationPolicy | None = None) -> None:
    """Fail with a clear reason when the batch was held back."""
    if not outcome.held:
        return
    threshold = (policy or ValidationPolicy()).hold_threshold
    bad = len(outcome.batch.rejects)
    total = len(outcome.batch.rows) + bad
    raise BatchHeldError(
        f"the {outcome.batch.provider} {outcome.batch.dataset.name} batch was held back: "
        f"{bad} of {total} records could not be loaded, more than the {threshold:.0%} "
        "threshold; nothing of it was loaded, see the validation results of this run"
    )
