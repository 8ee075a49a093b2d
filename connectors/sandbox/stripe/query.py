"""Request parsing: Stripe's nested form parameters, strings, integers, limits and ranges."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.sandbox.stripe.model import JSON, StripeAPIError


def sort_key(item: JSON) -> tuple[int, str]:
    """Stripe's list order key: creation time, then id."""
    return int(item["created"]), str(item["id"])


def nested(params: Mapping[str, str]) -> dict[str, Any]:
    """Stripe's form encoding back to nested values: `created[gte]=1` → {"created": {"gte": "1"}}."""
    query: dict[str, Any] = {}
    for key, value in params.items():
        name, bracket, rest = key.partition("[")
        if bracket and rest.endswith("]"):
            inner = query.setdefault(name, {})
            if not isinstance(inner, dict):
                raise StripeAPIError(400, f"Invalid hash: {name}", param=name)
            inner[rest[:-1]] = value
        else:
            query[key] = value
    return query


def text_param(value: Any, name: str) -> str:
    """A non-empty string parameter; 400 otherwise."""
    if not isinstance(value, str) or not value:
        raise StripeAPIError(400, f"Invalid string: {value!r}", param=name)
    return value


def integer_param(value: Any, name: str) -> int:
    """An integer parameter; 400 otherwise."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise StripeAPIError(400, f"Invalid integer: {value}", param=name) from None


def page_limit(value: Any) -> int:
    """`limit` between 1 and 100 (default 10)."""
    if value is None:
        return 10
    limit = integer_param(value, "limit")
    if limit < 1:
        raise StripeAPIError(400, "This value must be greater than or equal to 1.", param="limit")
    if limit > 100:
        raise StripeAPIError(400, "This value must be less than or equal to 100.", param="limit")
    return limit


def in_range(value: int, wanted: Any, name: str) -> bool:
    """Whether `value` meets `wanted` (an integer or `{gt, gte, lt, lte}`)."""
    if not isinstance(wanted, dict):
        return value == integer_param(wanted, name)
    checks: dict[str, Callable[[int, int], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    for op, bound in wanted.items():
        check = checks.get(op)
        if check is None:
            raise StripeAPIError(400, f"Received unknown parameter: {name}[{op}]", param=name)
        if not check(value, integer_param(bound, f"{name}[{op}]")):
            return False
    return True
