"""Base model, shared enums and validated scalar types of the pure core."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from core.attribute_lookup import use_generic_lookup


class Frozen(BaseModel):
    """Immutable message/config base: unknown fields are an error, never silently dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        use_generic_lookup(cls)  # field reads without pydantic's __getattr__ hook: see core.attribute_lookup


def _no_float(value: Any) -> Any:
    # A float has already lost precision; money and quantities must arrive as str, int or Decimal.
    if isinstance(value, float):
        raise ValueError("float is not accepted for money or quantities; send a decimal string")
    return value


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite decimal")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be > 0")
    return value


Amount = Annotated[Decimal, BeforeValidator(_no_float), AfterValidator(_finite)]
"""A signed decimal amount (cash, PnL, signed position)."""
NonNegative = Annotated[Amount, AfterValidator(_non_negative)]
Positive = Annotated[Amount, AfterValidator(_positive)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

ZERO = Decimal(0)
ONE = Decimal(1)
"""Decimal constants for comparisons and arithmetic: an int operand is converted to a Decimal on every use."""


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return _SIGNS[self]  # a dict read: `self is Side.BUY` goes through the enum class (3x the time)


_SIGNS = {Side.BUY: 1, Side.SELL: -1}


class ExecutionMode(StrEnum):
    PAPER = "paper"
    SHADOW = "shadow"
    LIVE = "live"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"


class TimeInForce(StrEnum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    DAY = "day"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"
