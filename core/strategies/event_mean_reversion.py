"""Mean reversion on event contracts: fade deviations of the YES price from its rolling mean.

YES prices live in [0, 1]. When the mid (or bar close) runs `entry` above its rolling mean the strategy sells
YES (short `quantity`), when it runs `entry` below it buys; it goes flat once the price is back within `exit` of
the mean. Orders are limits at the touch (the bar close on bars), on the tick grid and inside (0, 1).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from pydantic import Field, model_validator

from core.market import Bar, Quote
from core.strategy import Strategy, StrategyContext
from core.types import ZERO, Frozen, NonNegative, Positive, Side

EVENT_CONTRACT_PREFIX = "event_contract:"
ONE = Decimal(1)


class MeanReversionParams(Frozen):
    window: int = Field(default=20, ge=2)
    entry: Positive = Decimal("0.05")
    """Deviation from the rolling mean, in price (dollars per contract), that opens a position."""
    exit: NonNegative = Decimal("0.01")
    """Deviation at or below which the position is closed."""
    quantity: Positive = Decimal(10)
    tick: Positive = Decimal("0.01")

    @model_validator(mode="after")
    def _bands(self) -> MeanReversionParams:
        if self.exit >= self.entry:
            raise ValueError(f"exit ({self.exit}) must be below entry ({self.entry})")
        return self


class EventMeanReversion(Strategy[MeanReversionParams]):
    """Fades the YES price of every `event_contract:` instrument it is fed."""

    params_model = MeanReversionParams

    def __init__(self, strategy_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(strategy_id, params)
        self._windows: dict[str, _RollingMean] = {}
        self._targets: dict[str, Decimal] = {}

    def on_quote(self, quote: Quote, ctx: StrategyContext) -> None:
        self._on_price(quote.instrument_id, quote.mid, quote.bid, quote.ask, f"{quote.instrument_id}:{quote.seq}",
                       ctx)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        self._on_price(bar.instrument_id, bar.close, bar.close, bar.close,
                       f"{bar.instrument_id}:{bar.ts_end.isoformat()}", ctx)

    def _on_price(self, instrument_id: str, price: Decimal, bid: Decimal, ask: Decimal, key: str,
                  ctx: StrategyContext) -> None:
        if not instrument_id.startswith(EVENT_CONTRACT_PREFIX) or not ZERO < price < ONE:
            return  # not an event contract, or settled / no market: nothing to fade
        window = self._windows.get(instrument_id)
        if window is None:
            window = self._windows[instrument_id] = _RollingMean(self.params.window)
        mean = window.push(price)
        if mean is None:
            return
        p = self.params
        current = self._targets.get(instrument_id, ZERO)
        deviation = price - mean
        if deviation >= p.entry:
            target = -p.quantity
        elif deviation <= -p.entry:
            target = p.quantity
        elif abs(deviation) <= p.exit:
            target = ZERO
        else:
            return
        if target == current:
            return
        self._targets[instrument_id] = target
        side = Side.BUY if target > current else Side.SELL
        ctx.target_position(instrument_id, target, limit_price=self._limit(side, ask if side is Side.BUY else bid),
                            key=key)

    def _limit(self, side: Side, touch: Decimal) -> Decimal:
        """The touch on the tick grid, rounded passively, and kept strictly inside (0, 1)."""
        tick = self.params.tick
        rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
        price = (touch / tick).to_integral_value(rounding=rounding) * tick
        return min(max(price, tick), ONE - tick)


class _RollingMean:
    __slots__ = ("_prices", "_sum")

    def __init__(self, window: int) -> None:
        self._prices: deque[Decimal] = deque(maxlen=window)
        self._sum = ZERO

    def push(self, price: Decimal) -> Decimal | None:
        """The mean of the window including `price`, or None until the window is full."""
        prices = self._prices
        full = len(prices) == prices.maxlen
        self._sum += price - prices[0] if full else price
        prices.append(price)
        return self._sum / len(prices) if len(prices) == prices.maxlen else None
