"""Settings of the matching engine: thresholds, tolerances, windows and the invoice numbering.

Every field has a default that suits a typical WHMCS tenant; a tenant overrides them in a TOML or
JSON file (`recon match --config F`), either at the top level or under a `[matching]` table.
"""

from __future__ import annotations

import json
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recon.errors import ConfigError

_NUMBER_FORMAT_TOKENS = re.compile(r"\{(YEAR|YY|MONTH|DAY|NUMBER)\}")


class MatchConfig(BaseModel):
    """What the engine may decide on its own, and how loosely it compares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    auto_threshold: int = Field(
        default=90, ge=1, le=100, description="confidence for decision=auto"
    )
    review_threshold: int = Field(
        default=50, ge=1, le=100, description="lowest confidence suggested"
    )
    ambiguity_margin: int = Field(
        default=5, ge=0, le=100, description="a runner-up this close to the best makes it a review"
    )
    fee_tolerance_percent: Decimal = Field(
        default=Decimal("3"),
        ge=0,
        le=100,
        description="short payment accepted as fees, in % of balance",
    )
    fee_tolerance_max: Decimal = Field(
        default=Decimal("25.00"), ge=0, description="and at most this much, in major units"
    )
    invoice_number_format: str = Field(
        default="{NUMBER}",
        description="the tenant's WHMCS invoice number format; by default learned from invoice_num",
    )
    reference_cut_lengths: tuple[int, ...] = Field(
        default=(18,), description="lengths at which banks cut references"
    )
    min_bare_digits: int = Field(
        default=4, ge=1, le=12, description="shortest unlabelled invoice number"
    )
    ref_days_before_issue: int = Field(default=30, ge=0)
    ref_days_after_due: int = Field(default=730, ge=0)
    name_days_before_issue: int = Field(default=7, ge=0)
    name_days_after_due: int = Field(default=120, ge=0)
    name_overdue_days: int = Field(
        default=365,
        ge=0,
        description="an overdue invoice alone in having the amount is matched by name this long",
    )
    name_max_clients_per_key: int = Field(default=25, ge=1, description="more is too common a name")
    subset_max_invoices: int = Field(
        default=12, ge=2, le=16, description="cap of the subset-sum search"
    )
    recorded_window_days: int = Field(
        default=7, ge=0, description="WHMCS payment vs money, in days"
    )
    payout_days_before: int = Field(
        default=1, ge=0, description="bank credit before payout arrival"
    )
    payout_days_after: int = Field(default=5, ge=0, description="bank credit after payout arrival")
    payout_short_max_percent: Decimal = Field(default=Decimal("10"), ge=0, le=100)
    payout_payer_patterns: dict[str, str] = Field(
        default_factory=lambda: {"stripe": "STRIPE", "gocardless": "GOCARDLESS"},
        description="regular expression per payout source, matched on payer and reference",
    )
    gateway_sources: dict[str, str] = Field(
        default_factory=lambda: {
            "stripe": "stripe",
            "gocardless": "gocardless",
            "banktransfer": "bank",
            "bank_transfer": "bank",
            "banktransfers": "bank",
        },
        description="WHMCS gateway → transaction source whose money backs it",
    )
    max_passes: int = Field(default=8, ge=1, le=50)
    rule_confidence: dict[str, int] = Field(
        default_factory=dict, description="per-rule confidence overrides"
    )

    @field_validator("invoice_number_format")
    @classmethod
    def _format_has_number(cls, value: str) -> str:
        if "{NUMBER}" not in value:
            raise ValueError("must contain {NUMBER}")
        rest = _NUMBER_FORMAT_TOKENS.sub("", value)
        if "{" in rest or "}" in rest:
            raise ValueError("may only use {YEAR}, {YY}, {MONTH}, {DAY} and {NUMBER}")
        return value

    @field_validator("payout_payer_patterns")
    @classmethod
    def _patterns_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for source, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern for {source} does not compile ({exc})") from None
        return {source.lower(): pattern for source, pattern in value.items()}

    @field_validator("gateway_sources")
    @classmethod
    def _known_sources(cls, value: dict[str, str]) -> dict[str, str]:
        for gateway, source in value.items():
            if source not in {"bank", "stripe", "gocardless"}:
                raise ValueError(f"{gateway} maps to {source!r}, not bank, stripe or gocardless")
        return {gateway.lower(): source for gateway, source in value.items()}

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> MatchConfig:
        if self.review_threshold > self.auto_threshold:
            raise ValueError("review_threshold must not exceed auto_threshold")
        return self

    def fee_tolerance_minor(self, exponent: int) -> int:
        """The absolute fee tolerance in minor units of a currency with this exponent."""
        return int(
            self.fee_tolerance_max.scaleb(exponent).to_integral_value(rounding="ROUND_FLOOR")
        )

    @property
    def fee_tolerance_basis_points(self) -> int:
        """The relative fee tolerance in hundredths of a percent, exact for two decimals."""
        return int(self.fee_tolerance_percent.scaleb(2).to_integral_value(rounding="ROUND_FLOOR"))


def load_config(path: Path) -> MatchConfig:
    """Read a TOML or JSON settings file; a bad file is a one-sentence `ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path} ({exc.strerror}).") from None
    data: Any
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"the config file {path} is not valid {kind} ({exc}).") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the config file {path} must hold a table of settings.")
    if isinstance(data.get("matching"), dict):
        data = data["matching"]
    return config_from_mapping(data, str(path))


def config_from_mapping(data: dict[str, Any], origin: str = "config") -> MatchConfig:
    """Validate a mapping of settings; the first problem becomes one sentence."""
    try:
        return MatchConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        if first["type"] == "extra_forbidden":
            known = ", ".join(sorted(MatchConfig.model_fields))
            message = f"{origin}: unknown setting {where!r}; known settings are {known}."
        else:
            reason = str(first["msg"]).removeprefix("Value error, ")
            reason = reason[:1].lower() + reason[1:]
            subject = f"setting {where!r}: " if where else ""
            message = f"{origin}: {subject}{reason}."
        raise ConfigError(message) from None
