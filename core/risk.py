"""Pre-trade risk: small pure checks, each returning a denial or nothing, and one place that decides.

Every decision, approved or denied, is one immutable `RiskDecision` carrying a code from `core.reasons`.
The driver gathers what the checks need into a `RiskContext` (position, quote, equity, exposures, the
trading state from kill switches and drawdown, the account's recent order count); the checks never do I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from core.control import TradingState
from core.instruments import AssetClass, Instrument
from core.ledger import Exposure, Ledger
from core.market import Quote
from core.orders import OrderIntent
from core.reasons import ReasonCode
from core.trusted import builder
from core.types import ZERO, Frozen, Positive, UtcDatetime

BPS = Decimal(10_000)
POLICY_SCOPE = r"^(account|org):[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$|^default$"


class RiskPolicy(Frozen):
    """Limits for one account or organisation. Fractions are of equity (0.5 = 50%)."""

    policy_id: str = Field(min_length=1)
    version: int = Field(ge=1)
    scope: str = Field(default="default", pattern=POLICY_SCOPE)
    """`account:<id>`, `org:<id>`, or `default` (paper and shadow fallback; never enough for live)."""
    max_order_notional: Positive
    max_position_quantity: Positive
    """Absolute position per instrument, in instrument units (contracts, shares, coins)."""
    max_gross_leverage: Positive = Decimal(4)
    price_band_bps: Positive = Decimal(500)
    """A limit price further than this from the mid is a fat finger."""
    max_quote_age_s: Positive = Decimal(30)
    max_orders_per_window: int = Field(default=50, ge=1)
    order_rate_window_s: Positive = Decimal(1)
    max_concentration: Positive = Decimal(1)
    """Largest share of equity one instrument's position may take."""
    asset_class_caps: dict[AssetClass, Positive] = Field(default_factory=dict)
    """Gross notional cap per asset class; classes not listed are uncapped."""
    max_daily_drawdown: Positive = Decimal("0.05")
    """Loss from start-of-day equity that moves the account to reduce-only."""

    @model_validator(mode="after")
    def _fractions(self) -> RiskPolicy:
        if self.max_daily_drawdown >= 1:
            raise ValueError("max_daily_drawdown must be a fraction below 1")
        return self

    @property
    def explicit(self) -> bool:
        return self.scope != "default"


class RiskDecision(Frozen):
    schema_version: Literal[1] = 1
    intent: OrderIntent
    approved: bool
    reason_code: ReasonCode
    reason_detail: str = ""
    policy_id: str | None = None
    policy_version: int | None = None
    decided_at: UtcDatetime
    market: Quote | None = None
    """The quote an approved order was judged against: a paper or shadow order is simulated against this market,
    as the backtest does, so the same decision fills at the same price in both (and the router needs no second
    read of the market). Sealed with the rest of the decision."""
    seal: str = ""
    """HMAC of the decision by the risk gate (core.seal); the OMS refuses a decision without a valid one."""


class Denial(Frozen):
    code: ReasonCode
    detail: str


class RiskContext(Frozen):
    """What the gate knows when it decides."""

    instrument: Instrument | None
    position_quantity: Decimal
    quote: Quote | None
    equity: Decimal | None = None
    """Marked account equity; None when it cannot be marked (equity-based checks then deny)."""
    gross_exposure: Decimal = ZERO
    """Sum over positions of |quantity x mark x multiplier|."""
    asset_class_exposure: Mapping[AssetClass, Decimal] = Field(default_factory=dict)
    trading_state: TradingState = TradingState.ACTIVE
    trading_state_reason: str = ""
    orders_in_window: int = 0
    """Orders the account sent within the policy's rate window, before this one."""


def freshest(known: Quote | None, signal: Quote | None) -> Quote | None:
    """The newer of the market view's quote and the one a strategy acted on (same instrument): the gate and the
    simulator never price an order off a quote older than its signal, whichever reached them first."""
    if known is None or signal is None:
        return known or signal
    return signal if (signal.ts, signal.seq) > (known.ts, known.seq) else known


_trusted_context = builder(RiskContext)


def context_for(instrument_id: str, instrument: Instrument | None, ledger: Ledger, exposure: Exposure,
                quote: Quote | None, trading_state: TradingState, trading_state_reason: str,
                orders_in_window: int) -> RiskContext:
    """What the gate knows of an order in `instrument_id` (`instrument`: its catalog entry, if any), from the
    account's ledger and its exposure at the marks. Every value comes from validated records: no re-validation
    per order."""
    return _trusted_context(
        instrument=instrument, position_quantity=ledger.quantity(instrument_id),
        quote=quote, equity=exposure.equity, gross_exposure=exposure.gross,
        asset_class_exposure=exposure.by_asset_class, trading_state=trading_state,
        trading_state_reason=trading_state_reason, orders_in_window=orders_in_window)


def reference_price(intent: OrderIntent, quote: Quote | None) -> Decimal | None:
    """The price the order's notional is measured at: its limit, else the touch it would take."""
    if intent.limit_price is not None:
        return intent.limit_price
    return quote.touch(intent.side) if quote is not None else None


def reduces_position(intent: OrderIntent, position: Decimal) -> bool:
    signed = intent.quantity * intent.side.sign
    return position != ZERO and (signed > ZERO) != (position > ZERO) and abs(signed) <= abs(position)


def check_trading_state(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: datetime) -> Denial | None:
    if ctx.trading_state is TradingState.HALTED:
        return Denial(code=ReasonCode.KILL_SWITCH_HALTED, detail=ctx.trading_state_reason)
    if ctx.trading_state is TradingState.REDUCE_ONLY and not reduces_position(intent, ctx.position_quantity):
        return Denial(code=ReasonCode.REDUCE_ONLY,
                      detail=f"{ctx.trading_state_reason} position={ctx.position_quantity}")
    return None


def check_instrument(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: datetime) -> Denial | None:
    instrument = ctx.instrument
    if instrument is None:
        return Denial(code=ReasonCode.UNKNOWN_INSTRUMENT, detail=f"instrument={intent.instrument_id}")
    if not instrument.tradeable:
        return Denial(code=ReasonCode.INSTRUMENT_NOT_TRADEABLE,
                      detail=f"instrument={intent.instrument_id} status={instrument.status or 'not_tradeable'}")
    if instrument.expiry is not None and at >= instrument.expiry:
        return Denial(code=ReasonCode.INSTRUMENT_NOT_TRADEABLE,
                      detail=f"instrument={intent.instrument_id} status=expired expiry={instrument.expiry.isoformat()}")
    if not instrument.is_whole_lot(intent.quantity):
        return Denial(code=ReasonCode.QUANTITY_OFF_LOT,
                      detail=f"quantity={intent.quantity} lot_size={instrument.lot_size}")
    if intent.limit_price is not None and not instrument.is_on_tick(intent.limit_price):
        return Denial(code=ReasonCode.PRICE_OFF_TICK,
                      detail=f"price={intent.limit_price} tick_size={instrument.tick_size}")
    return None


def check_quote(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: datetime) -> Denial | None:
    quote = ctx.quote
    if quote is None:
        if intent.limit_price is None:
            return Denial(code=ReasonCode.NO_MARKET_PRICE, detail=f"instrument={intent.instrument_id}")
        return None  # a limit order is bounded by its own price; the band check needs a quote and is skipped
    age = (at - quote.ts).total_seconds()
    if age > policy.max_quote_age_s:
        return Denial(code=ReasonCode.STALE_QUOTE, detail=f"age_s={age:.3f} limit_s={policy.max_quote_age_s}")
    if intent.limit_price is not None and quote.mid > ZERO:
        distance_bps = abs(intent.limit_price - quote.mid) / quote.mid * BPS
        if distance_bps > policy.price_band_bps:
            return Denial(code=ReasonCode.PRICE_OUTSIDE_BAND,
                          detail=f"price={intent.limit_price} mid={quote.mid} distance_bps={distance_bps:.1f} "
                                 f"limit_bps={policy.price_band_bps}")
    return None


def check_max_notional(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: datetime) -> Denial | None:
    assert ctx.instrument is not None  # check_instrument runs first
    price = reference_price(intent, ctx.quote)
    assert price is not None  # check_quote denies a market order without a quote
    notional = intent.quantity * price * ctx.instrument.multiplier
    if notional > policy.max_order_notional:
        return Denial(code=ReasonCode.MAX_ORDER_NOTIONAL_EXCEEDED,
                      detail=f"notional={notional} limit={policy.max_order_notional}")
    return None


def _position_after(intent: OrderIntent, ctx: RiskContext) -> Decimal:
    return ctx.position_quantity + intent.quantity * intent.side.sign


def check_max_position(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: datetime) -> Denial | None:
    after = _position_after(intent, ctx)
    if abs(after) > policy.max_position_quantity and abs(after) > abs(ctx.position_quantity):
        return Denial(code=ReasonCode.MAX_POSITION_EXCEEDED,
                      detail=f"position_after={after} limit={policy.max_position_quantity}")
    return None


def check_portfolio(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: datetime) -> Denial | None:
    """Concentration, asset-class caps and gross leverage, measured after the order at its reference price.
    An order that only reduces exposure always passes: limits must never trap a position."""
    held = abs(ctx.position_quantity)
    size_after = abs(_position_after(intent, ctx))
    if size_after <= held:
        return None
    assert ctx.instrument is not None
    price = reference_price(intent, ctx.quote)
    assert price is not None
    unit_value = price * ctx.instrument.multiplier
    added = (size_after - held) * unit_value
    equity = ctx.equity
    if equity is None or equity <= ZERO:
        return Denial(code=ReasonCode.EQUITY_UNKNOWN, detail=f"equity={equity}")
    concentration = size_after * unit_value / equity
    if concentration > policy.max_concentration:
        return Denial(code=ReasonCode.CONCENTRATION_EXCEEDED,
                      detail=f"concentration={concentration:.4f} limit={policy.max_concentration}")
    asset_class = ctx.instrument.asset_class
    cap = policy.asset_class_caps.get(asset_class)
    class_after = ctx.asset_class_exposure.get(asset_class, ZERO) + added
    if cap is not None and class_after > cap:
        return Denial(code=ReasonCode.ASSET_CLASS_CAP_EXCEEDED,
                      detail=f"asset_class={asset_class.value} exposure={class_after} limit={cap}")
    leverage = (ctx.gross_exposure + added) / equity
    if leverage > policy.max_gross_leverage:
        return Denial(code=ReasonCode.MAX_LEVERAGE_EXCEEDED,
                      detail=f"leverage={leverage:.4f} limit={policy.max_gross_leverage}")
    return None


def check_order_rate(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: datetime) -> Denial | None:
    if ctx.orders_in_window >= policy.max_orders_per_window:
        return Denial(code=ReasonCode.ORDER_RATE_EXCEEDED,
                      detail=f"orders={ctx.orders_in_window} window_s={policy.order_rate_window_s} "
                             f"limit={policy.max_orders_per_window}")
    return None


Check = Callable[[OrderIntent, RiskContext, RiskPolicy, datetime], Denial | None]

PRE_TRADE_CHECKS: tuple[Check, ...] = (check_trading_state, check_instrument, check_quote, check_max_notional,
                                       check_max_position, check_portfolio, check_order_rate)


_trusted_decision = builder(RiskDecision)


def evaluate(intent: OrderIntent, ctx: RiskContext, policy: RiskPolicy, at: UtcDatetime) -> RiskDecision:
    """Run every pre-trade check in order; the first denial decides."""
    for check in PRE_TRADE_CHECKS:
        denial = check(intent, ctx, policy, at)
        if denial is not None:
            return deny(intent, denial, policy, at)
    # Every field comes from validated records; skipping re-validation keeps the gate in microseconds.
    return _trusted_decision(intent=intent, approved=True, reason_code=ReasonCode.APPROVED,
                             policy_id=policy.policy_id, policy_version=policy.version, decided_at=at,
                             market=ctx.quote)


def deny(intent: OrderIntent, denial: Denial, policy: RiskPolicy | None, at: UtcDatetime) -> RiskDecision:
    """The one way a denial is issued."""
    return RiskDecision(
        intent=intent, approved=False, reason_code=denial.code, reason_detail=denial.detail,
        policy_id=policy.policy_id if policy else None, policy_version=policy.version if policy else None,
        decided_at=at,
    )


def drawdown_state(start_of_day_equity: Decimal, equity: Decimal, policy: RiskPolicy) -> tuple[TradingState, str]:
    """Reduce-only once equity fell more than the policy's daily drawdown below the start of the day."""
    if start_of_day_equity <= ZERO:
        return TradingState.ACTIVE, ""
    drawdown = (start_of_day_equity - equity) / start_of_day_equity
    if drawdown > policy.max_daily_drawdown:
        return TradingState.REDUCE_ONLY, (f"daily_drawdown={drawdown:.4f} limit={policy.max_daily_drawdown} "
                                          f"start_of_day_equity={start_of_day_equity} equity={equity}")
    return TradingState.ACTIVE, ""


class OrderRateWindow:
    """Sliding count of approved orders per account; the driver owns one and feeds it decisions."""

    def __init__(self) -> None:
        self._sent: dict[str, deque[datetime]] = {}
        self._windows: dict[Decimal, timedelta] = {}
        """Each policy's window as a timedelta, made once rather than per order."""

    def count(self, account_id: str, at: datetime, window_s: Decimal) -> int:
        sent = self._sent.get(account_id)
        if not sent:
            return 0
        window = self._windows.get(window_s)
        if window is None:
            window = self._windows[window_s] = timedelta(seconds=float(window_s))
        horizon = at - window
        while sent and sent[0] <= horizon:
            sent.popleft()
        return len(sent)

    def record(self, account_id: str, at: datetime) -> None:
        self._sent.setdefault(account_id, deque()).append(at)
