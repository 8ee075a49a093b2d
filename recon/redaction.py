"""Masking of secret values in any text that leaves the process (logs, errors, exports).

The secrets layer registers every value it resolves; `redact` replaces each registered value, and
the credential shapes that turn up in HTTP logs (Authorization headers, tokens in URLs, passwords in
connection strings), with `***`.

Importing this module installs a log record factory that masks every record as it is created, so
no handler sees a secret, whenever and by whom it was added (Prefect's API log handler included),
in every process that can hold a secret: a secret is registered only through this module.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import types
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

_P = ParamSpec("_P")
_R = TypeVar("_R")

MASK = "***"
_MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

_CREDENTIAL_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xyz / Basic xyz, X-Vault-Token: xyz, Stripe-style keys in headers
    (
        re.compile(
            r"(?i)\b(authorization|proxy-authorization|x-vault-token|api-key|x-api-key)"
            r"(['\"]?\s*[:=]\s*['\"]?)(?:(bearer|basic|token)\s+)?[^\s'\",}]+"
        ),
        rf"\1\2\3 {MASK}",
    ),
    # ?token=...&secret=... in URLs and form bodies
    (
        re.compile(
            r"(?i)([?&;](?:access_token|refresh_token|token|secret|secret_id|secret_key|"
            r"api_key|apikey|key|password|passwd|signature|sig|identifier|accesskey)=)[^&\s'\"#]+"
        ),
        rf"\1{MASK}",
    ),
    # scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s/]+@"), rf"\1{MASK}@"),
    # Stripe secret and restricted keys, webhook secrets
    (re.compile(r"\b(sk|rk|whsec)_(live|test)?_?[A-Za-z0-9]{8,}\b"), MASK),
)


def register_secret(value: str | None) -> None:
    """Remember a resolved secret so that `redact` masks it from now on."""
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    global _pattern
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def forget_all_secrets() -> None:
    """Drop every registered value (tests only)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def redact(text: str) -> str:
    """Mask registered secret values and credential shapes in `text`."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for shape, replacement in _CREDENTIAL_SHAPES:
        text = shape.sub(replacement, text)
    return text


def redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in a record's message, arguments, traceback and stack, in place (once)."""
    if getattr(record, "_recon_redacted", False):
        return
    record._recon_redacted = True
    try:
        message = record.getMessage()
    except Exception:  # a broken format string must not hide the record
        message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = message, None
    masked = redact(message)
    if masked != message:
        _mask_message(record, masked)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _mask_message(record: logging.LogRecord, masked: str) -> None:
    """Keep the template and positional arguments when masking them one by one gives the same
    text (formatters such as uvicorn's access log unpack `args`); else keep only the text."""
    if isinstance(record.msg, str) and isinstance(record.args, tuple):
        args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        template = redact(record.msg)
        try:
            same = (template % args if args else template) == masked
        except (TypeError, ValueError):
            same = False
        if same:
            record.msg, record.args = template, args
            return
    record.msg, record.args = masked, None


def redact_exception(exc: BaseException) -> BaseException:
    """Mask secrets in an exception's arguments, string attributes and notes, and in those of
    its cause and context, in place; return the same object (its type is unchanged)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    pending: list[BaseException] = []
    while current is not None or pending:
        if current is None:
            current = pending.pop()
        if id(current) in seen:
            current = None
            continue
        seen.add(id(current))
        try:
            current.args = tuple(redact(a) if isinstance(a, str) else a for a in current.args)
            for name, value in list(vars(current).items()):
                if isinstance(value, str):
                    setattr(current, name, redact(value))
                elif name == "__notes__" and isinstance(value, list):
                    value[:] = [redact(n) if isinstance(n, str) else n for n in value]
        except (AttributeError, TypeError):  # read-only attributes: keep what can be masked
            pass
        if current.__context__ is not None and current.__context__ is not current.__cause__:
            pending.append(current.__context__)
        current = current.__cause__
    return exc


def redact_exceptions(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Wrap a flow or task function so an exception leaving it is masked in place first.

    Prefect turns the exception into the run's failed state (message and stored result) after the
    function returns, which no log record factory sees; the same object is re-raised, so callers
    still see its type (and a `ReconError`'s exit code).
    """

    mask = redact_exception  # a closure cell: the wrapper runs with `fn`'s globals below

    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            mask(exc)
            raise

    # Prefect resolves the string annotations of a flow (`validate_parameters`) in the globals of
    # the function it holds: give the wrapper `fn`'s globals, not this module's.
    rebound = types.FunctionType(
        wrapper.__code__, fn.__globals__, fn.__name__, None, wrapper.__closure__
    )
    functools.update_wrapper(rebound, fn)
    # Prefect keys a task by its source function's code; keep one key per wrapped function.
    rebound.__prefect_task_source__ = fn  # type: ignore[attr-defined]
    rebound._recon_redacts_exceptions = True  # type: ignore[attr-defined]
    return cast("Callable[_P, _R]", rebound)


_factory_lock = threading.Lock()


def install_log_record_redaction() -> None:
    """Make every log record of this process masked at creation (idempotent)."""
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if getattr(current, "_recon_redacting", False):
            return

        def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = current(*args, **kwargs)
            redact_record(record)
            return record

        redacting_factory._recon_redacting = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(redacting_factory)


install_log_record_redaction()
