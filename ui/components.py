"""Small shared widgets: money as text, errors as sentences, empty states, pagination."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import streamlit as st

from recon.errors import ReconError
from recon.money import format_amount

T = TypeVar("T")
_MARKDOWN = re.compile(r"([\\`*_\[\]()<>#!|~$])")


def plain(text: object) -> str:
    """Text that may hold data (a provider's payer or reference, an error naming it) made inert
    for the Markdown that st.error, st.caption and headers render: no link, image or markup."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def money(minor: int | None, currency: str | None) -> str:
    """An amount in minor units as text with its currency ("12.50 EUR"); "" when unknown."""
    if minor is None or not currency:
        return ""
    try:
        return f"{format_amount(minor, currency)} {currency}"
    except ValueError:
        return f"{minor} (minor units) {currency}"


def amounts(items: Iterable[Any]) -> str:
    """Sums per currency (objects with `minor` and `currency`) joined; "0" when none."""
    parts = [money(a.minor, a.currency) for a in items]
    return ", ".join(parts) if parts else "0"


def call(action: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call a service; a refusal or a broken rule is shown as its one sentence, never a
    traceback, and the call returns None."""
    try:
        return action(*args, **kwargs)
    except ReconError as exc:
        st.error(plain(exc))
        return None


def empty(message: str) -> None:
    """An empty state that says what to do."""
    st.info(message)


def keyset_pager(key: str, next_after: int | None) -> int | None:
    """Newer/older buttons over a keyset cursor kept in session state; returns the current one."""
    stack: list[int | None] = st.session_state.setdefault(f"{key}_stack", [None])
    left, right = st.columns(2)
    if left.button("Newer", key=f"{key}_newer", disabled=len(stack) <= 1):
        stack.pop()
        st.rerun()
    if right.button("Older", key=f"{key}_older", disabled=next_after is None):
        stack.append(next_after)
        st.rerun()
    return stack[-1]


def cursor(key: str) -> int | None:
    """The keyset cursor of the pager `key` (None: the first page)."""
    stack: list[int | None] = st.session_state.setdefault(f"{key}_stack", [None])
    return stack[-1]


def reset_pager(key: str) -> None:
    """Back to the first page (after a filter changed)."""
    st.session_state[f"{key}_stack"] = [None]


def metric_amounts(column: Any, label: str, items: Iterable[Any]) -> None:
    """A metric of sums per currency: the first currency's figure, its currency in the label,
    every currency in the help (a list of currencies does not fit a metric)."""
    listed = list(items)
    if not listed:
        column.metric(label, "0")
        return
    first = listed[0]
    more = f" +{len(listed) - 1}" if len(listed) > 1 else ""
    figure = money(first.minor, first.currency).removesuffix(f" {first.currency}")
    column.metric(f"{label} ({first.currency}{more})", figure, help=amounts(listed))
