"""The write actions pages offer, each one service call. The outcome (done, or the refusal's one
sentence) is kept as a flash message for the next run of the page, which shows fresh data: a
conflict is its message plus a refreshed view. The service checks the role and grant itself, so
calling these as an auditor (a forged widget) is refused the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import streamlit as st

from recon.errors import ReconError, RuleViolationError
from ui.components import plain

FLASH_KEY = "ui_flash"


def flash(level: str, message: str) -> None:
    """Keep a message for the next run (level: success, error, warning, info)."""
    st.session_state[FLASH_KEY] = (level, message)


def show_flash() -> None:
    """Show (once) the message the last action left."""
    kept = st.session_state.pop(FLASH_KEY, None)
    if kept:
        level, message = kept
        shown = getattr(st, level if level in {"success", "error", "warning", "info"} else "info")
        shown(plain(message))


def _do(done: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        result = action(*args, **kwargs)
    except ReconError as exc:
        flash("error", str(exc))
        return None
    flash("success", done)
    return result


def parse_amount(text: str) -> Decimal:
    """A decimal amount typed by a person ("12.50"); RuleViolationError when it is not one."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise RuleViolationError(f"{text!r} is not an amount; type it like 12.50") from None
    if not value.is_finite() or value <= 0:
        raise RuleViolationError(f"{text!r} is not a positive amount")
    return value


def assign(engine: Any, acting: str, tenant: str, exception_id: int, to: str, version: int) -> Any:
    from recon.review import exceptions

    return _do(f"exception {exception_id} assigned to {to}", exceptions.assign, engine, acting,
               tenant, exception_id, to, version)  # fmt: skip


def unassign(engine: Any, acting: str, tenant: str, exception_id: int, version: int) -> Any:
    from recon.review import exceptions

    return _do(f"exception {exception_id} unassigned", exceptions.unassign, engine, acting,
               tenant, exception_id, version)  # fmt: skip


def comment(engine: Any, acting: str, tenant: str, exception_id: int, text: str) -> Any:
    from recon.review import exceptions

    return _do("comment added", exceptions.comment, engine, acting, tenant, exception_id, text)


def resolve(engine: Any, acting: str, tenant: str, exception_id: int, kind: str, note: str,
            version: int) -> Any:  # fmt: skip
    from recon.review import exceptions

    return _do(f"exception {exception_id} resolved ({kind})", exceptions.resolve, engine,
               acting, tenant, exception_id, kind, note or None, version)  # fmt: skip


def reopen(engine: Any, acting: str, tenant: str, exception_id: int, version: int) -> Any:
    from recon.review import exceptions

    return _do(f"exception {exception_id} reopened", exceptions.reopen, engine, acting, tenant,
               exception_id, version)  # fmt: skip


def allocate(engine: Any, acting: str, tenant: str, ref: str,
             parts: Sequence[tuple[str, str]], note: str) -> Any:  # fmt: skip
    """Match a payment by hand to invoices with amounts typed as decimals."""
    from recon.review import allocations

    try:
        amounts = [(invoice, parse_amount(text)) for invoice, text in parts]
    except RuleViolationError as exc:
        flash("error", str(exc))
        return None
    if not amounts:
        flash("error", "enter an amount next to at least one invoice")
        return None
    return _do(f"{ref} allocated to {', '.join(i for i, _ in amounts)}", allocations.allocate,
               engine, acting, tenant, ref, amounts, note or None)  # fmt: skip


def accept(engine: Any, acting: str, tenant: str, *, ids: Sequence[int] | None = None,
           min_confidence: int | None = None) -> Any:  # fmt: skip
    """Accept suggestions by id, or all at or above a confidence; refusals are listed."""
    from recon.review import allocations

    result = _do("suggestions accepted", allocations.accept_suggestions, engine, acting, tenant,
                 allocation_ids=list(ids) if ids is not None else None,
                 min_confidence=min_confidence)  # fmt: skip
    if result is not None:
        refused = "; ".join(f"{r.allocation_id}: {r.reason}" for r in result.refused)
        message = f"{len(result.accepted)} suggestion(s) accepted"
        flash(
            "warning" if refused else "success",
            message + (f"; refused {refused}" if refused else ""),
        )
    return result
