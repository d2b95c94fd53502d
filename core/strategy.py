"""The strategy API: one interface used unchanged in backtest, paper, shadow and live.

A strategy reacts to market data, fills and timers, and asks for orders through its context; the driver (the
backtest engine or the streaming agent) decides where the resulting intents go. Intents are deterministic given
the same inputs: idempotency keys derive from the triggering event (or from the clock), so a replay yields the
same orders.

Drivers feed the context what happened to the strategy's orders (`record_fill`, `record_order`), fire its timers
(`next_timer_at`, `pop_due_timer`) and collect its intents (`pending`, `drain`); strategies only call the other
methods.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from core.accounts import Account
from core.clock import Clock
from core.fills import Fill
from core.market import Bar, Quote
from core.orders import Order, OrderIntent, strategy_intent
from core.types import ZERO, Frozen, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from core.strategies import STRATEGIES, SmaCrossover

__all__ = ["STRATEGIES", "NoParams", "SmaCrossover", "Strategy", "StrategyContext", "Timer"]


@dataclass(frozen=True, slots=True)
class Timer:
    """A timer firing: its name and the time it was due (the clock reads this time during `on_timer`)."""

    name: str
    at: datetime


class StrategyContext:
    """What a strategy may see and do. Positions here are the strategy's own view, updated from its fills."""

    def __init__(self, strategy_id: str, account: Account, clock: Clock, new_trace_id: Callable[[], str]) -> None:
        self.strategy_id = strategy_id
        self.account = account
        self.clock = clock
        self._new_trace_id = new_trace_id
        self._positions: dict[str, Decimal] = {}
        self._working: dict[str, tuple[str, Decimal]] = {}
        """order id -> (instrument, signed quantity asked for and not yet filled) of orders still working."""
        self.pending: list[OrderIntent] = []
        """The intents asked for since the last `drain`, for drivers to check once per event before draining (a read
        rather than a call); only `submit` and `drain` change it."""
        self._timers: list[tuple[datetime, int, str]] = []
        """Heap of (due, generation, name); an entry is live while its generation is the name's current one."""
        self.next_timer_at: datetime | None = None
        """When the earliest live timer is due; None without timers. Kept current on every change of the timers, so
        the driver's per-event check is a plain read."""
        self._timer_generation: dict[str, int] = {}
        self._timer_intervals: dict[str, timedelta] = {}
        self._generations = 0
        self._key_instant: datetime | None = None
        self._key_count = 0

    # --- for strategies -------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def position(self, instrument_id: str) -> Decimal:
        return self._positions.get(instrument_id, ZERO)

    def working(self, instrument_id: str) -> Decimal:
        """Signed quantity of this strategy's orders in the instrument that are neither filled nor ended."""
        total = ZERO
        for iid, quantity in self._working.values():
            if iid == instrument_id:
                total += quantity
        return total

    def submit(self, instrument_id: str, side: Side, quantity: Decimal, idempotency_key: str, *,
               order_type: OrderType = OrderType.MARKET, limit_price: Decimal | None = None,
               time_in_force: TimeInForce = TimeInForce.GTC) -> OrderIntent:
        intent = strategy_intent(trace_id=self._new_trace_id(), account=self.account, strategy_id=self.strategy_id,
                                 idempotency_key=idempotency_key, instrument_id=instrument_id, side=side,
                                 order_type=order_type, quantity=quantity, limit_price=limit_price,
                                 time_in_force=time_in_force, created_at=self.clock.now())
        self.pending.append(intent)
        self._working[intent.order_id] = (intent.instrument_id, intent.quantity * intent.side.sign)  # as validated
        return intent

    def buy(self, instrument_id: str, quantity: Decimal, *, limit_price: Decimal | None = None,
            time_in_force: TimeInForce = TimeInForce.GTC, key: str | None = None) -> OrderIntent:
        """A market buy, or a limit buy when `limit_price` is given. `key` defaults to one derived from the clock."""
        return self._order(instrument_id, Side.BUY, quantity, limit_price, time_in_force, key)

    def sell(self, instrument_id: str, quantity: Decimal, *, limit_price: Decimal | None = None,
             time_in_force: TimeInForce = TimeInForce.GTC, key: str | None = None) -> OrderIntent:
        return self._order(instrument_id, Side.SELL, quantity, limit_price, time_in_force, key)

    def target_position(self, instrument_id: str, target: Decimal, *, limit_price: Decimal | None = None,
                        time_in_force: TimeInForce = TimeInForce.GTC, key: str | None = None) -> OrderIntent | None:
        """Order the difference between `target` and the position plus working orders; None when there is none."""
        delta = target - self.position(instrument_id) - self.working(instrument_id)
        if delta == ZERO:
            return None
        side = Side.BUY if delta > ZERO else Side.SELL
        return self._order(instrument_id, side, abs(delta), limit_price, time_in_force, key)

    def set_timer(self, name: str, interval: timedelta, *, first: datetime | None = None) -> None:
        """Fire `on_timer` every `interval`, first at `first` (default: now + interval). Replaces a same-name timer."""
        if interval <= timedelta(0):
            raise ValueError(f"timer {name!r}: interval must be positive, got {interval}")
        self._timer_intervals[name] = interval
        self._schedule(name, first if first is not None else self.clock.now() + interval)

    def set_alarm(self, name: str, at: datetime) -> None:
        """Fire `on_timer` once at `at`. Replaces a same-name timer."""
        self._timer_intervals.pop(name, None)
        self._schedule(name, at)

    def cancel_timer(self, name: str) -> None:
        self._timer_intervals.pop(name, None)
        self._timer_generation.pop(name, None)
        self._drop_dead_timers()

    # --- for drivers ----------------------------------------------------------------------------------------

    def record_fill(self, fill: Fill) -> None:
        signed = fill.quantity * fill.side.sign
        self._positions[fill.instrument_id] = self.position(fill.instrument_id) + signed
        working = self._working.get(fill.order_id)
        if working is not None:
            left = working[1] - signed
            if left == ZERO:
                del self._working[fill.order_id]
            else:
                self._working[fill.order_id] = (working[0], left)

    def record_order(self, order: Order) -> None:
        """An update of one of the strategy's orders: an ended order no longer counts as working."""
        if order.status.is_terminal:
            self._working.pop(order.order_id, None)

    def drain(self) -> list[OrderIntent]:
        """Hand the intents asked for since the last drain to the driver."""
        pending = self.pending
        if not pending:
            return []  # the common case, once per event: leave the context's list in place
        self.pending = []
        return pending

    def pop_due_timer(self, until: datetime) -> Timer | None:
        """The earliest timer due at or before `until`, rescheduling it when it repeats; None when none is due."""
        if not self._timers or self._timers[0][0] > until:
            return None
        at, _, name = heapq.heappop(self._timers)
        interval = self._timer_intervals.get(name)
        if interval is None:
            del self._timer_generation[name]
            self._drop_dead_timers()
        else:
            self._schedule(name, at + interval)  # from the due time, so a repeating timer never drifts
        return Timer(name, at)

    # --- internals ------------------------------------------------------------------------------------------

    def _order(self, instrument_id: str, side: Side, quantity: Decimal, limit_price: Decimal | None,
               time_in_force: TimeInForce, key: str | None) -> OrderIntent:
        order_type = OrderType.MARKET if limit_price is None else OrderType.LIMIT
        return self.submit(instrument_id, side, quantity, key if key is not None else self._clock_key(),
                           order_type=order_type, limit_price=limit_price, time_in_force=time_in_force)

    def _clock_key(self) -> str:
        # The clock instant and a count within it: the same replay gives the same keys, a restart new ones.
        now = self.clock.now()
        if now != self._key_instant:
            self._key_instant, self._key_count = now, 0
        self._key_count += 1
        return f"{now.isoformat()}#{self._key_count}"

    def _schedule(self, name: str, at: datetime) -> None:
        self._generations += 1
        self._timer_generation[name] = self._generations
        heapq.heappush(self._timers, (at, self._generations, name))
        self._drop_dead_timers()

    def _drop_dead_timers(self) -> None:
        # Keeps the heap's top live, so `next_timer_at` is its due time.
        timers = self._timers
        while timers and self._timer_generation.get(timers[0][2]) != timers[0][1]:
            heapq.heappop(timers)
        self.next_timer_at = timers[0][0] if timers else None


class NoParams(Frozen):
    """The parameters of a strategy that takes none."""


P = TypeVar("P", bound=Frozen)


class Strategy(Generic[P]):
    """Base of every strategy; each hook is optional and a strategy overrides those it needs.

    Parameters are a frozen model (`params_model`) validated from the driver's mapping at construction, so an
    unknown or malformed parameter stops a backtest or a worker before the first event.
    """

    params_model: type[P]

    def __init__(self, strategy_id: str, params: Mapping[str, Any] | None = None) -> None:
        self.strategy_id = strategy_id
        self.params: P = self.params_model.model_validate(dict(params or {}))

    def on_start(self, ctx: StrategyContext) -> None:
        """Called once before the first event."""

    def on_quote(self, quote: Quote, ctx: StrategyContext) -> None:
        """Called for every quote of a subscribed instrument."""

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        """Called for every bar of a subscribed instrument, at the bar's end."""

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        """Called for every fill of this strategy's orders, after the context's position is updated."""

    def on_timer(self, timer: Timer, ctx: StrategyContext) -> None:
        """Called when a timer set through the context is due; the clock reads `timer.at`."""


def __getattr__(name: str) -> Any:
    # The registry and the built-in strategies live in core.strategies, which imports this module's API, so they
    # are looked up lazily: `from core.strategy import STRATEGIES` keeps working without an import cycle.
    if name in ("STRATEGIES", "SmaCrossover"):
        import core.strategies

        return getattr(core.strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
