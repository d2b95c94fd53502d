"""The backtest engine: the pure core driven in process, under a simulated clock, one event at a time.

Every order takes the path it takes in the stream worker: the strategy's intents are drained from its
`StrategyContext` as the strategy runner does; each passes the risk gate (`core.risk.evaluate`, with the context
the gate gathers: position, latest quote, marked equity and exposures, the drawdown trading state, the order
rate); `core.execution.accept` makes the order (deterministic id, duplicate keys refused) and `route` decides
its mode; `simulate` fills it with the configured `FillModel`; each fill reaches the ledger once
(`core.ledger.FillJournal`, keyed by venue trade id) and then the strategy (`record_fill`, `on_fill`).

What the stream worker gets from Kafka and Redis, the engine keeps in memory: orders by id, the latest market per
instrument, the orders waiting for the market (in flight under latency, or resting), and the marks. Decisions are
not sealed: a seal protects the decisions topic from forged approvals, and here no topic exists.

Per event the work is small: advance the clock, update the touch and the mark, match waiting orders of that
instrument (if any), call the strategy, and mark the account to market for the equity curve.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from pydantic import Field

from backtest.data import MarketData
from core.accounts import Account
from core.clock import ManualClock
from core.control import TradingState
from core.execution import Duplicate, Route, admit, simulate
from core.fill_model import RESTING, FillModel
from core.fills import Fill
from core.instruments import Instrument, InstrumentCatalog
from core.ledger import FillJournal, Ledger
from core.market import Bar, Quote
from core.orders import Order, OrderIntent
from core.risk import OrderRateWindow, RiskPolicy, context_for, drawdown_state, evaluate
from core.strategy import Strategy, StrategyContext
from core.trusted import builder
from core.types import ZERO, Frozen, NonNegative

EquityPoint = tuple[datetime, Decimal]
PROGRESS_EVERY = 65_536
"""Events between two progress reports; the loop runs over slices of this size, so reporting costs nothing per
event."""
_SPREAD_DENOMINATOR = Decimal(20_000)  # bps of the close, halved: each side of the touch gets half the spread
_ACTIVE = (TradingState.ACTIVE, "")
_GC_THRESHOLD = (50_000, 20, 10)
"""The cyclic collector's thresholds during a run: a young collection every 50,000 net new containers rather than
700. The run's records (orders, fills, ledgers) are long-lived, not cyclic; each collection only traversed them
again (7% of a run)."""
_trusted_quote = builder(Quote)


class BacktestConfig(Frozen):
    account: Account
    policy: RiskPolicy
    fill_model: FillModel = FillModel()
    bar_spread_bps: NonNegative = Field(default=ZERO, lt=20_000)
    """For an instrument with bars and no quotes, the touch is the bar close +/- half this spread (0: bid = ask)."""


@dataclass(frozen=True)
class BacktestResult:
    trades: list[Fill]
    """Every fill applied to the ledger, in order."""
    orders: list[Order]
    """The last state of every order, in the order they were created; rejected ones carry their reason."""
    duplicates: list[tuple[OrderIntent, Duplicate]]
    """Intents refused because their idempotency key had made an order already."""
    equity_times: list[datetime]
    equity_values: list[Decimal]
    """The starting equity at the start, then cash + marked positions after every event time (bar close or
    quote), as two lists of the same length."""
    ledger: Ledger
    duplicate_fills: int
    events: int

    @property
    def fees(self) -> Decimal:
        return self.ledger.fees_paid

    @property
    def equity_curve(self) -> list[EquityPoint]:
        return list(zip(self.equity_times, self.equity_values, strict=True))


class Backtest:
    """One run of one strategy over one data set; `run` once."""

    def __init__(self, strategy: Strategy[Any], config: BacktestConfig, catalog: InstrumentCatalog,
                 data: MarketData) -> None:
        if not data.events:
            raise ValueError("a backtest needs market data: no bars and no quotes given")
        first = data.events[0]
        start = first.ts_start if isinstance(first, Bar) else first.ts
        self._strategy = strategy
        self._config = config
        self._catalog = catalog
        self._data = data
        self.clock = ManualClock(start)
        trace_ids = itertools.count(1)
        # Trace ids from a counter: a rerun produces the same records, byte for byte.
        self.context = StrategyContext(strategy.strategy_id, config.account, self.clock,
                                       new_trace_id=lambda: f"{next(trace_ids):032x}")
        self._journal = FillJournal(Ledger.open(config.account))
        self._cash = self._journal.ledger.cash
        self._holdings: dict[str, Decimal] = {}
        """quantity x multiplier of each open position: equity = cash + sum(holding x mark)."""
        self._marks: dict[str, Decimal] = {}
        self._touch: dict[str, Bar | Quote] = {}
        self._bar_quotes: dict[str, tuple[Bar, Quote]] = {}
        self._quote_seq = itertools.count()
        self._orders: dict[str, Order] = {}
        self._waiting: dict[str, list[Order]] = {}
        """Per instrument, the orders waiting for the market: in flight (latency) or resting."""
        self._arrival: dict[str, datetime] = {}
        self._rate = OrderRateWindow()
        self._day_start_equity = self._cash
        self._day_end = _next_midnight(start)
        self._trades: list[Fill] = []
        self._duplicates: list[tuple[OrderIntent, Duplicate]] = []
        self._duplicate_fills = 0
        self._curve_times: list[datetime] = [start]
        self._curve_equity: list[Decimal] = [self._cash]
        self._ran = False

    def run(self, progress: Callable[[int], None] | None = None) -> BacktestResult:
        """Feed every event to the strategy; `progress` hears the number of events done every PROGRESS_EVERY."""
        if self._ran:
            raise RuntimeError("a Backtest runs once; make a new one")
        self._ran = True
        events = self._data.events
        # The loaded data (a million bars, say) outlives the run: kept out of the cyclic collector's sight, it is
        # not traversed again by every full collection the run's allocations trigger (30% of a 1M-bar run).
        gc.freeze()
        threshold = gc.get_threshold()
        gc.set_threshold(*_GC_THRESHOLD)
        try:
            self._strategy.on_start(self.context)
            self._process_intents()
            for begin in range(0, len(events), PROGRESS_EVERY):
                self._run(events[begin:begin + PROGRESS_EVERY])
                if progress is not None:
                    progress(min(begin + PROGRESS_EVERY, len(events)))
        finally:
            gc.set_threshold(*threshold)
            gc.unfreeze()
        return BacktestResult(self._trades, list(self._orders.values()), self._duplicates, self._curve_times,
                              self._curve_equity, self._journal.ledger, self._duplicate_fills, len(events))

    def apply_fill(self, fill: Fill) -> bool:
        """Apply one fill unless its (venue, venue trade id) was applied before; return whether it was new.
        Simulated fills come through here, and so can fills replayed from elsewhere."""
        return self._apply_fill(fill, self._instrument(fill.instrument_id))

    def _apply_fill(self, fill: Fill, instrument: Instrument) -> bool:
        if not self._journal.apply(fill, instrument.multiplier):
            self._duplicate_fills += 1
            return False
        ledger = self._journal.ledger
        position = ledger.positions[fill.instrument_id]
        if position.quantity:
            self._holdings[fill.instrument_id] = position.quantity * position.multiplier
        else:
            self._holdings.pop(fill.instrument_id, None)
        self._cash = ledger.cash
        self._trades.append(fill)
        self.context.record_fill(fill)
        self._strategy.on_fill(fill, self.context)
        return True

    # --- the loop -------------------------------------------------------------------------------------------

    def _run(self, events: list[Bar | Quote]) -> None:
        # Hot loop: everything it touches per event is bound to a local once per slice.
        ctx = self.context
        drain = ctx.drain
        clock = self.clock
        on_bar = self._strategy.on_bar
        on_quote = self._strategy.on_quote
        touch = self._touch
        marks = self._marks
        holdings = self._holdings
        waiting = self._waiting
        quoted = self._data.quoted
        times = self._curve_times
        equities = self._curve_equity
        last = times[-1]
        day_end = self._day_end
        for event in events:
            if isinstance(event, Bar):
                bar: Bar | None = event
                ts = event.ts_end
            else:
                bar = None
                ts = event.ts
            if ts >= day_end:
                day_end = self._roll_day(ts)
            next_timer = ctx.next_timer_at
            if next_timer is not None and next_timer <= ts:
                self._fire_timers(ts)
            if ts < clock.time:
                raise ValueError(f"market data out of time order: an event at {ts.isoformat()} after "
                                 f"{clock.time.isoformat()}")
            clock.time = ts
            instrument_id = event.instrument_id
            if bar is not None:
                marks[instrument_id] = bar.close
                if instrument_id in quoted:
                    bar_market = None  # its quotes are the market; the bar only feeds the strategy
                else:
                    bar_market = touch[instrument_id] = bar
                if instrument_id in waiting:
                    self._match_waiting(instrument_id, ts, bar_market)
                on_bar(bar, ctx)
            else:
                assert isinstance(event, Quote)
                marks[instrument_id] = event.mid
                touch[instrument_id] = event
                if instrument_id in waiting:
                    self._match_waiting(instrument_id, ts, None)
                on_quote(event, ctx)
            if ctx.pending:
                self._submit_all(drain())
            equity = self._cash
            if holdings:
                for held, units in holdings.items():
                    equity += units * marks[held]
            if ts == last:
                equities[-1] = equity  # several events at one time: one point, after the last of them
            else:
                times.append(ts)
                equities.append(equity)
                last = ts

    def _fire_timers(self, until: datetime) -> None:
        while (timer := self.context.pop_due_timer(until)) is not None:
            self.clock.set(max(timer.at, self.clock.now()))  # an alarm set in the past fires now
            self._strategy.on_timer(timer, self.context)
            self._process_intents()

    def _roll_day(self, ts: datetime) -> datetime:
        """Start the day of `ts`; return when it ends."""
        # The daily drawdown limit measures from the equity at the end of the previous day.
        self._day_start_equity = self._curve_equity[-1]
        self._day_end = _next_midnight(ts)
        return self._day_end

    # --- orders ---------------------------------------------------------------------------------------------

    def _process_intents(self) -> None:
        self._submit_all(self.context.drain())

    def _submit_all(self, intents: list[OrderIntent]) -> None:
        while intents:
            for intent in intents:
                self._submit(intent)
            intents = self.context.drain()  # fills may have made the strategy ask for more

    def _submit(self, intent: OrderIntent) -> None:
        now = self.clock.now()
        config = self._config
        policy = config.policy
        ledger = self._journal.ledger
        instrument_id = intent.instrument_id
        exposure = ledger.exposure(self._marks, self._catalog)
        equity = exposure.equity
        state, state_reason = (drawdown_state(self._day_start_equity, equity, policy) if equity is not None
                               else _ACTIVE)
        quote = self._quote(instrument_id)
        risk_context = context_for(instrument_id, self._catalog.get(instrument_id), ledger, exposure, quote, state,
                                   state_reason, self._rate.count(intent.account_id, now, policy.order_rate_window_s))
        decision = evaluate(intent, risk_context, policy, now)
        order_id = intent.order_id
        # accept, then route: folded, as nothing here sees the new order before it is routed.
        routed = admit(decision, self._orders.get(order_id), config.account, None, now)
        if isinstance(routed, Duplicate):
            self._duplicates.append((intent, routed))
            return
        if decision.approved:
            self._rate.record(intent.account_id, now)
        assert routed.route is not Route.VENUE  # without a live gate no order is routed to a venue
        if routed.route is Route.REJECTED:  # denied by the gate, or by the mode decision
            self._record(routed.order)
            return
        order = routed.order
        delay = config.fill_model.latency.delay(order_id)
        if delay:
            self._arrival[order_id] = now + delay
            self._record(order)
            self._waiting.setdefault(instrument_id, []).append(order)
            return
        # The market the gate saw: nothing moved it since.
        resting = self._execute(order, self._instrument(instrument_id), quote, now, None)
        if resting is not None:
            self._waiting.setdefault(instrument_id, []).append(resting)

    def _match_waiting(self, instrument_id: str, ts: datetime, bar: Bar | None) -> None:
        """Offer the instrument's new market to its waiting orders, oldest first."""
        still: list[Order] = []
        instrument = self._instrument(instrument_id)
        for order in self._waiting.pop(instrument_id):
            arrival = self._arrival.get(order.order_id)
            if arrival is not None:
                if arrival > ts:
                    still.append(order)
                    continue
                del self._arrival[order.order_id]
            resting = self._execute(order, instrument, self._quote(instrument_id), ts, bar)
            if resting is not None:
                still.append(resting)
        if still:
            self._waiting[instrument_id] = still

    def _execute(self, order: Order, instrument: Instrument, quote: Quote | None, now: datetime,
                 bar: Bar | None) -> Order | None:
        """Simulate the order against the current market (`quote`, from `_quote`; `now` is the clock's time);
        return it when it rests."""
        execution = simulate(order, instrument, quote, self._config.fill_model, now, bar=bar)
        order = execution.order
        self._record(order)
        for fill in execution.fills:
            self._apply_fill(fill, instrument)
        return order if order.status in RESTING else None

    def _record(self, order: Order) -> None:
        self._orders[order.order_id] = order
        self.context.record_order(order)

    # --- market ---------------------------------------------------------------------------------------------

    def _quote(self, instrument_id: str) -> Quote | None:
        """The latest quote; for an instrument with bars only, the touch at the latest bar's close."""
        touch = self._touch.get(instrument_id)
        if touch is None or isinstance(touch, Quote):
            return touch
        cached = self._bar_quotes.get(instrument_id)
        if cached is not None and cached[0] is touch:
            return cached[1]
        close = touch.close
        half = close * self._config.bar_spread_bps / _SPREAD_DENOMINATOR if self._config.bar_spread_bps else None
        # Built from a validated bar with bid <= ask by construction: no re-validation.
        quote = _trusted_quote(instrument_id=instrument_id, bid=close if half is None else close - half,
                               ask=close if half is None else close + half, bid_size=touch.volume,
                               ask_size=touch.volume, ts=touch.ts_end, seq=next(self._quote_seq))
        self._bar_quotes[instrument_id] = (touch, quote)
        return quote

    def _instrument(self, instrument_id: str) -> Instrument:
        instrument = self._catalog.get(instrument_id)
        if instrument is None:  # the risk gate denies unknown instruments; reaching here is a wiring bug
            raise LookupError(f"no instrument {instrument_id!r} in the backtest's catalog")
        return instrument


def _next_midnight(ts: datetime) -> datetime:
    return datetime.combine(ts.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)
