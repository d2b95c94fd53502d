"""The strategy API: one interface used unchanged in backtest, paper, shadow and live.

A strategy reacts to market data and fills and asks for orders through its context; the driver (backtest
engine or streaming agent) decides where the resulting intents go. Intents are deterministic given the same
inputs: idempotency keys derive from the triggering event, so a replay yields the same orders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.accounts import Account
from core.clock import Clock
from core.fills import Fill
from core.market import Quote
from core.orders import IntentSource, OrderIntent
from core.types import ZERO, OrderType, Side, TimeInForce


class StrategyContext:
    """What a strategy may see and do. Positions here are the strategy's own view, updated from its fills."""

    def __init__(self, strategy_id: str, account: Account, clock: Clock, new_trace_id: Callable[[], str]) -> None:
        self.strategy_id = strategy_id
        self.account = account
        self.clock = clock
        self._new_trace_id = new_trace_id
        self._positions: dict[str, Decimal] = {}
        self._pending: list[OrderIntent] = []

    def now(self) -> datetime:
        return self.clock.now()

    def position(self, instrument_id: str) -> Decimal:
        return self._positions.get(instrument_id, ZERO)

    def submit(self, instrument_id: str, side: Side, quantity: Decimal, idempotency_key: str, *,
               order_type: OrderType = OrderType.MARKET, limit_price: Decimal | None = None,
               time_in_force: TimeInForce = TimeInForce.GTC) -> OrderIntent:
        intent = OrderIntent(
            trace_id=self._new_trace_id(), account_id=self.account.account_id, owner=self.account.owner,
            strategy_id=self.strategy_id, idempotency_key=idempotency_key, instrument_id=instrument_id,
            side=side, order_type=order_type, quantity=quantity, limit_price=limit_price,
            time_in_force=time_in_force, requested_mode=self.account.mode, source=IntentSource.STRATEGY,
            created_at=self.clock.now(),
        )
        self._pending.append(intent)
        return intent

    def record_fill(self, fill: Fill) -> None:
        self._positions[fill.instrument_id] = self.position(fill.instrument_id) + fill.quantity * fill.side.sign

    def drain(self) -> list[OrderIntent]:
        """Hand the intents asked for since the last drain to the driver."""
        pending, self._pending = self._pending, []
        return pending


class Strategy:
    """Base of every strategy; each hook is optional and a strategy overrides those it needs."""

    def __init__(self, strategy_id: str, params: dict[str, Any] | None = None) -> None:
        self.strategy_id = strategy_id
        self.params = params or {}

    def on_start(self, ctx: StrategyContext) -> None:
        """Called once before the first event."""

    def on_quote(self, quote: Quote, ctx: StrategyContext) -> None:
        """Called for every quote of a subscribed instrument."""

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        """Called for every fill of this strategy's orders, after the context's position is updated."""

    def on_timer(self, now: datetime, ctx: StrategyContext) -> None:
        """Called on the driver's timer."""


class SmaCrossover(Strategy):
    """Long `quantity` while the fast SMA of mid prices is above the slow one, flat otherwise.

    Params: fast (int), slow (int), quantity (dict instrument_id -> Decimal; instruments not listed are ignored).
    """

    def __init__(self, strategy_id: str, params: dict[str, Any] | None = None) -> None:
        super().__init__(strategy_id, params)
        self.fast = int(self.params.get("fast", 10))
        self.slow = int(self.params.get("slow", 30))
        if not 0 < self.fast < self.slow:
            raise ValueError(f"SmaCrossover needs 0 < fast < slow, got fast={self.fast} slow={self.slow}")
        self.quantity: dict[str, Decimal] = {k: Decimal(v) for k, v in self.params.get("quantity", {}).items()}
        self._windows: dict[str, _SmaPair] = {}
        self._targets: dict[str, Decimal] = {}

    def on_quote(self, quote: Quote, ctx: StrategyContext) -> None:
        size = self.quantity.get(quote.instrument_id)
        if size is None:
            return
        pair = self._windows.setdefault(quote.instrument_id, _SmaPair(self.fast, self.slow))
        signal = pair.push(quote.mid)
        if signal is None:
            return
        target = size if signal else ZERO
        current = self._targets.get(quote.instrument_id, ZERO)
        if target == current:
            return
        self._targets[quote.instrument_id] = target
        delta = target - current
        side = Side.BUY if delta > 0 else Side.SELL
        ctx.submit(quote.instrument_id, side, abs(delta), idempotency_key=f"{quote.instrument_id}:{quote.seq}")


class _SmaPair:
    """Running fast and slow sums over one price series; O(1) per update."""

    def __init__(self, fast: int, slow: int) -> None:
        self.fast, self.slow = fast, slow
        self._prices: list[Decimal] = []
        self._fast_sum = ZERO
        self._slow_sum = ZERO

    def push(self, price: Decimal) -> bool | None:
        """Return whether fast > slow, or None until the slow window is full."""
        self._prices.append(price)
        self._fast_sum += price
        self._slow_sum += price
        n = len(self._prices)
        if n > self.fast:
            self._fast_sum -= self._prices[n - 1 - self.fast]
        if n > self.slow:
            self._slow_sum -= self._prices.pop(0)
        if len(self._prices) < self.slow:
            return None
        return self._fast_sum * self.slow > self._slow_sum * self.fast


STRATEGIES: dict[str, type[Strategy]] = {"sma_crossover": SmaCrossover}
