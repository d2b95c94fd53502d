"""Pre-trade risk: small pure checks, each returning a denial or nothing, and one place that decides.

Every decision, approved or denied, is one immutable `RiskDecision` carrying a code from `ReasonCode`.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Literal

from pydantic import Field

from core.instruments import Instrument
from core.market import Quote
from core.orders import OrderIntent
from core.reasons import ReasonCode
from core.types import Frozen, Positive, UtcDatetime


class RiskPolicy(Frozen):
    policy_id: str = Field(min_length=1)
    version: int = Field(ge=1)
    max_order_notional: Positive
    max_position_quantity: Positive
    """Absolute position per instrument, in instrument units (contracts, shares, coins)."""


class RiskDecision(Frozen):
    schema_version: Literal[1] = 1
    intent: OrderIntent
    approved: bool
    reason_code: ReasonCode
    reason_detail: str = ""
    policy_id: str | None = None
    policy_version: int | None = None
    decided_at: UtcDatetime


class Denial(Frozen):
    code: ReasonCode
    detail: str


class RiskContext(Frozen):
    """What the gate knows when it decides: the instrument, the account's position, the latest quote."""

    instrument: Instrument | None
    position_quantity: Decimal
    quote: Quote | None


def reference_price(intent: OrderIntent, quote: Quote | None) -> Decimal | None:
    """The price the order's notional is measured at: its limit, else the touch it would take."""
    if intent.limit_price is not None:
        return intent.limit_price
    return quote.touch(intent.side) if quote is not None else None


def check_instrument(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy) -> Denial | None:
    instrument = ctx.instrument
    if instrument is None:
        return Denial(code=ReasonCode.UNKNOWN_INSTRUMENT, detail=f"instrument={intent.instrument_id}")
    if not instrument.tradeable:
        return Denial(code=ReasonCode.INSTRUMENT_NOT_TRADEABLE, detail=f"instrument={intent.instrument_id}")
    if not instrument.is_whole_lot(intent.quantity):
        return Denial(code=ReasonCode.QUANTITY_OFF_LOT,
                      detail=f"quantity={intent.quantity} lot_size={instrument.lot_size}")
    if intent.limit_price is not None and not instrument.is_on_tick(intent.limit_price):
        return Denial(code=ReasonCode.PRICE_OFF_TICK,
                      detail=f"price={intent.limit_price} tick_size={instrument.tick_size}")
    return None


def check_max_notional(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy) -> Denial | None:
    assert ctx.instrument is not None  # check_instrument runs first
    price = reference_price(intent, ctx.quote)
    if price is None:
        return Denial(code=ReasonCode.NO_MARKET_PRICE, detail=f"instrument={intent.instrument_id}")
    notional = intent.quantity * price * ctx.instrument.multiplier
    if notional > policy.max_order_notional:
        return Denial(code=ReasonCode.MAX_ORDER_NOTIONAL_EXCEEDED,
                      detail=f"notional={notional} limit={policy.max_order_notional}")
    return None


def check_max_position(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy) -> Denial | None:
    after = ctx.position_quantity + intent.quantity * intent.side.sign
    if abs(after) > policy.max_position_quantity and abs(after) > abs(ctx.position_quantity):
        return Denial(code=ReasonCode.MAX_POSITION_EXCEEDED,
                      detail=f"position_after={after} limit={policy.max_position_quantity}")
    return None


Check = Callable[[OrderIntent, RiskContext, RiskPolicy], Denial | None]

PRE_TRADE_CHECKS: tuple[Check, ...] = (check_instrument, check_max_notional, check_max_position)


def evaluate(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: UtcDatetime) -> RiskDecision:
    """Run every pre-trade check in order; the first denial decides."""
    for check in PRE_TRADE_CHECKS:
        denial = check(intent, ctx, policy)
        if denial is not None:
            return deny(intent, denial, policy, at)
    return RiskDecision(intent=intent, approved=True, reason_code=ReasonCode.APPROVED,
                        policy_id=policy.policy_id, policy_version=policy.version, decided_at=at)


def deny(intent: OrderIntent, denial: Denial, policy: RiskPolicy | None, at: UtcDatetime) -> RiskDecision:
    """The one way a denial is issued."""
    return RiskDecision(
        intent=intent, approved=False, reason_code=denial.code, reason_detail=denial.detail,
        policy_id=policy.policy_id if policy else None, policy_version=policy.version if policy else None,
        decided_at=at,
    )
