"""SMA crossover: long while the fast moving average is above the slow one, flat otherwise."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import Field, model_validator

from core.market import Bar, Quote
from core.strategy import Strategy, StrategyContext
from core.types import ZERO, Frozen, Positive


class SmaParams(Frozen):
    fast: int = Field(default=10, gt=0)
    slow: int = Field(default=30, gt=0)
    quantity: Positive | dict[str, Positive] = Field(default_factory=dict)
    """The long size: one for every instrument, or per instrument id (instruments not listed are ignored)."""

    @model_validator(mode="after")
    def _windows(self) -> SmaParams:
        if not self.fast < self.slow:
            raise ValueError(f"SmaCrossover needs 0 < fast < slow, got fast={self.fast} slow={self.slow}")
        return self

    def size(self, instrument_id: str) -> Decimal | None:
        return self.quantity.get(instrument_id) if isinstance(self.quantity, dict) else self.quantity


class SmaCrossover(Strategy[SmaParams]):
    """Long `quantity` while the fast SMA is above the slow one, flat otherwise; on bar closes or quote mids
    (feed an instrument one or the other: both would share its windows)."""

    params_model = SmaParams

    def __init__(self, strategy_id: str, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(strategy_id, params)
        self._crossings = _Crossings(self.params)

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        crossing = self._crossings[bar.instrument_id]
        if crossing is not None:
            target = crossing.update(bar.close)
            if target is not None:
                ctx.target_position(bar.instrument_id, target, key=f"{bar.instrument_id}:{bar.ts_end.isoformat()}")

    def on_quote(self, quote: Quote, ctx: StrategyContext) -> None:
        crossing = self._crossings[quote.instrument_id]
        if crossing is not None:
            target = crossing.update(quote.mid)
            if target is not None:
                # ts as well as seq: a feed restarts its seq, and a key seen before would be a duplicate order
                key = f"{quote.instrument_id}:{quote.ts.isoformat()}:{quote.seq}"
                ctx.target_position(quote.instrument_id, target, key=key)


class _Crossing:
    """Running fast and slow sums over one instrument's prices, and the target they give; O(1) per update."""

    __slots__ = ("fast", "fast_sum", "fast_weight", "prices", "size", "slow", "slow_sum", "slow_weight", "target")

    def __init__(self, fast: int, slow: int, size: Decimal) -> None:
        self.fast, self.slow, self.size = fast, slow, size
        # The window lengths as Decimals: the same products as with the ints, without converting them per update.
        self.fast_weight, self.slow_weight = Decimal(fast), Decimal(slow)
        self.prices: deque[Decimal] = deque(maxlen=slow)
        self.fast_sum = ZERO
        self.slow_sum = ZERO
        self.target = ZERO

    def update(self, price: Decimal) -> Decimal | None:
        """The new target when this price flips the signal; None otherwise and until the slow window is full."""
        prices = self.prices
        n = len(prices)
        if n == self.slow:  # both windows full: every update after the first `slow`
            fast_sum = self.fast_sum = self.fast_sum + (price - prices[-self.fast])
            slow_sum = self.slow_sum = self.slow_sum + (price - prices[0])  # the deque drops prices[0] on append
        else:
            fast_sum = self.fast_sum = self.fast_sum + (price - prices[-self.fast] if n >= self.fast else price)
            slow_sum = self.slow_sum = self.slow_sum + price
            if n + 1 < self.slow:
                prices.append(price)
                return None
        prices.append(price)
        # fast_sum / fast > slow_sum / slow, without the divisions
        target = self.size if fast_sum * self.slow_weight > slow_sum * self.fast_weight else ZERO
        if target is self.target:  # both are `size` or ZERO, and size > 0: identity is equality here
            return None
        self.target = target
        return target


class _Crossings(dict[str, _Crossing | None]):
    """The crossing of each instrument, made on first sight; None for an instrument the params do not trade."""

    def __init__(self, params: SmaParams) -> None:
        super().__init__()
        self._params = params

    def __missing__(self, instrument_id: str) -> _Crossing | None:
        size = self._params.size(instrument_id)
        crossing = self[instrument_id] = None if size is None else _Crossing(self._params.fast, self._params.slow,
                                                                              size)
        return crossing
