"""Backtest throughput against peers: our engine, backtrader and NautilusTrader on the same bars.

    .venv/bin/python -m bench.backtest_vs_peers [--bars 1000000] [--repeat 3] [--only ours]

The strategy is the SMA crossover (fast 10, slow 30 on closes; long 1 unit or flat), no fees. The bars are a
seeded random walk on a 1/128 price tick, gap-free: each bar opens at the previous close. NautilusTrader fills
a market order sent from `on_bar` at that bar's close, backtrader at the next bar's open: on gap-free data the
same price, so the three trade lists must agree exactly (count, sides, prices, bar timestamps); the bench fails
when they do not. (Backtrader gets one extra bar at the end, so a signal on the last bar fills there too.)

Only the engines' runs are timed, best of `repeat`: not generating, writing or loading the data, and not
backtrader's preload of its feed. Ours runs with the full risk gate, order intake and routing, fill model and
ledger on every order. The last line is `ratio_vs_backtrader=<x> ratio_vs_nautilus=<y>` (our bars/s over theirs).

NautilusTrader and backtrader are not project dependencies: install them (the `bench` extra) to run this.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from backtest.data import load_bars, market_data
from backtest.engine import Backtest, BacktestConfig
from core.accounts import Account, Owner
from core.instruments import AssetClass, Instrument, InstrumentCatalog, Venue
from core.orders import OrderStatus
from core.risk import RiskPolicy
from core.strategies import SmaCrossover
from core.types import ExecutionMode

TICKS_PER_UNIT = 128
FAST, SLOW = 10, 30
START = datetime(2026, 1, 5, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
INSTRUMENT_ID = "equity:BENCH"
NS = 1_000_000_000

Trade = tuple[str, int, int]
"""(side, price in ticks, close time of the signal bar in ns since the epoch)."""


@dataclass(frozen=True)
class Walk:
    """OHLCV in integer ticks; bar i covers [START + i minutes, START + i + 1 minutes)."""

    open: list[int]
    high: list[int]
    low: list[int]
    close: list[int]
    volume: list[int]

    def __len__(self) -> int:
        return len(self.close)


@dataclass(frozen=True)
class Outcome:
    engine: str
    bars_per_s: float
    trades: list[Trade]


def generate(count: int, seed: int = 7) -> Walk:
    rng = random.Random(seed)
    price = 1000 * TICKS_PER_UNIT
    walk = Walk([], [], [], [], [])
    for _ in range(count):
        close = price + rng.randint(-8, 8)
        walk.open.append(price)
        walk.close.append(close)
        walk.high.append(max(price, close) + rng.randint(0, 4))
        walk.low.append(min(price, close) - rng.randint(0, 4))
        walk.volume.append(1000 + rng.randint(0, 1000))
        price = close
    return walk


def bar_close_ns(index: int) -> int:
    return int(START.timestamp()) * NS + (index + 1) * 60 * NS


def best_of(repeat: int, run: Callable[[], tuple[float, list[Trade]]]) -> tuple[float, list[Trade]]:
    """The shortest of `repeat` runs (each times itself), with its trades."""
    results = [run() for _ in range(repeat)]
    return min(results, key=lambda r: r[0])


# --- ours -----------------------------------------------------------------------------------------------------


def run_ours(walk: Walk, bars: int, repeat: int, workdir: Path) -> Outcome:
    path = workdir / "bars.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ts", "instrument_id", "open", "high", "low", "close", "volume"])
        for i in range(bars):
            writer.writerow([(START + i * MINUTE).isoformat(), INSTRUMENT_ID,
                             *(_price(series[i]) for series in (walk.open, walk.high, walk.low, walk.close)),
                             walk.volume[i]])
    started = time.perf_counter()
    data = market_data(load_bars([path]))
    print(f"ours: loaded {data.bar_count} bars from CSV in {time.perf_counter() - started:.1f} s", flush=True)
    instrument = Instrument(instrument_id=INSTRUMENT_ID, asset_class=AssetClass.EQUITY, venue=Venue.SIMULATED,
                            quote_currency="USD", tick_size=Decimal(1) / TICKS_PER_UNIT, lot_size=Decimal(1))
    config = BacktestConfig(
        account=Account(account_id="bench", owner=Owner(org_id="bench", user_id="bench"), mode=ExecutionMode.PAPER,
                        starting_cash=Decimal(1_000_000)),
        policy=RiskPolicy(policy_id="bench", version=1, max_order_notional=Decimal(1_000_000),
                          max_position_quantity=Decimal(10)))

    def once() -> tuple[float, list[Trade]]:
        strategy = SmaCrossover("sma", {"fast": FAST, "slow": SLOW, "quantity": 1})
        engine = Backtest(strategy, config, InstrumentCatalog([instrument]), data)
        started = time.perf_counter()
        result = engine.run()
        elapsed = time.perf_counter() - started
        rejected = [o for o in result.orders if o.status is OrderStatus.REJECTED]
        if rejected:
            raise SystemExit(f"ours: {len(rejected)} orders rejected, first: {rejected[0].reason_code} "
                             f"{rejected[0].reason_detail}")
        return elapsed, [(f.side.value, int(f.price * TICKS_PER_UNIT), _ns(f.ts)) for f in result.trades]

    elapsed, trades = best_of(repeat, once)
    return Outcome("ours", bars / elapsed, trades)


def _price(ticks: int) -> str:
    return str(Decimal(ticks) / TICKS_PER_UNIT)


def _ns(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


# --- backtrader -------------------------------------------------------------------------------------------------


def run_backtrader(walk: Walk, bars: int, repeat: int) -> Outcome:
    import backtrader as bt  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import pandas as pd  # type: ignore[import-untyped,import-not-found,unused-ignore]

    # One bar more than the others get: a signal on the last of their bars fills at the open of this one.
    frame = pd.DataFrame(
        {name: [t / TICKS_PER_UNIT for t in series[:bars + 1]] for name, series in
         (("open", walk.open), ("high", walk.high), ("low", walk.low), ("close", walk.close))},
        index=pd.date_range(START.replace(tzinfo=None), periods=bars + 1, freq="1min"))
    frame["volume"] = walk.volume[:bars + 1]

    class Feed(bt.feeds.PandasData):  # type: ignore[misc]
        preloading = 0.0

        def preload(self) -> None:  # loading the frame into the feed is data loading: not timed
            started = time.perf_counter()
            super().preload()
            Feed.preloading += time.perf_counter() - started

    class Sma(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=FAST)
            self.slow = bt.indicators.SMA(self.data.close, period=SLOW)
            self.target = 0
            self.trades: list[Trade] = []

        def next(self) -> None:
            target = 1 if self.fast[0] > self.slow[0] else 0
            if target != self.target:
                self.target = target
                if target:
                    self.buy(size=1)
                else:
                    self.sell(size=1)

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                # Filled at the next bar's open: its start is the signal bar's close.
                opened = bt.num2date(order.executed.dt).replace(tzinfo=UTC)
                self.trades.append(("buy" if order.isbuy() else "sell",
                                    round(order.executed.price * TICKS_PER_UNIT), _ns(opened)))

    def once() -> tuple[float, list[Trade]]:
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(Feed(dataname=frame))
        cerebro.addstrategy(Sma)
        cerebro.broker.setcash(1_000_000.0)
        Feed.preloading = 0.0
        started = time.perf_counter()
        strategy = cerebro.run()[0]
        return time.perf_counter() - started - Feed.preloading, strategy.trades

    elapsed, trades = best_of(repeat, once)
    return Outcome("backtrader", bars / elapsed, trades)


# --- NautilusTrader ---------------------------------------------------------------------------------------------


def run_nautilus(walk: Walk, bars: int, repeat: int) -> Outcome:
    from nautilus_trader.backtest.engine import (  # type: ignore[import-untyped,import-not-found,unused-ignore]
        BacktestEngine,
        BacktestEngineConfig,
    )
    from nautilus_trader.config import LoggingConfig, StrategyConfig  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.indicators import SimpleMovingAverage  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.model.currencies import USD  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.model.data import Bar, BarType  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.model.identifiers import InstrumentId, Symbol  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.model.identifiers import Venue as NautilusVenue  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.model.instruments import Equity  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.model.objects import Money, Price, Quantity  # type: ignore[import-untyped,import-not-found,unused-ignore]
    from nautilus_trader.trading.strategy import Strategy  # type: ignore[import-untyped,import-not-found,unused-ignore]

    instrument_id = InstrumentId.from_str("BENCH.SIM")
    instrument = Equity(instrument_id=instrument_id, raw_symbol=Symbol("BENCH"), currency=USD, price_precision=7,
                        price_increment=Price.from_str("0.0078125"), lot_size=Quantity.from_int(1), ts_event=0,
                        ts_init=0, maker_fee=Decimal(0), taker_fee=Decimal(0))
    bar_type = BarType.from_str("BENCH.SIM-1-MINUTE-LAST-EXTERNAL")

    def price(ticks: int) -> Any:
        return Price(ticks / TICKS_PER_UNIT, 7)

    # A bar is stamped with its close time (ts_event = ts_init), NautilusTrader's convention.
    data = [Bar(bar_type, price(walk.open[i]), price(walk.high[i]), price(walk.low[i]), price(walk.close[i]),
                Quantity.from_int(walk.volume[i]), bar_close_ns(i), bar_close_ns(i)) for i in range(bars)]
    one = Quantity.from_int(1)

    class Sma(Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(StrategyConfig(strategy_id="SMA-001"))
            self.fast = SimpleMovingAverage(FAST)
            self.slow = SimpleMovingAverage(SLOW)
            self.target = 0
            self.trades: list[Trade] = []

        def on_start(self) -> None:
            self.register_indicator_for_bars(bar_type, self.fast)
            self.register_indicator_for_bars(bar_type, self.slow)
            self.subscribe_bars(bar_type)

        def on_bar(self, bar: Any) -> None:
            if not self.slow.initialized:
                return
            target = 1 if self.fast.value > self.slow.value else 0
            if target != self.target:
                self.target = target
                side = OrderSide.BUY if target else OrderSide.SELL
                self.submit_order(self.order_factory.market(instrument_id, side, one))

        def on_order_filled(self, event: Any) -> None:
            self.trades.append(("buy" if event.order_side == OrderSide.BUY else "sell",
                                int(event.last_px.as_decimal() * TICKS_PER_UNIT), event.ts_event))

    def once() -> tuple[float, list[Trade]]:
        engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True),
                                                     run_analysis=False))
        engine.add_venue(NautilusVenue("SIM"), OmsType.NETTING, AccountType.CASH, [Money(1_000_000, USD)],
                         base_currency=USD)
        engine.add_instrument(instrument)
        engine.add_data(data)
        strategy = Sma()
        engine.add_strategy(strategy)
        started = time.perf_counter()
        engine.run()
        elapsed = time.perf_counter() - started
        engine.dispose()
        return elapsed, strategy.trades

    elapsed, trades = best_of(repeat, once)
    return Outcome("nautilus", bars / elapsed, trades)


# --- main -------------------------------------------------------------------------------------------------------


def compare(outcomes: list[Outcome]) -> None:
    """Exit non-zero unless every engine made exactly the same trades."""
    reference = outcomes[0]
    for other in outcomes[1:]:
        if other.trades == reference.trades:
            continue
        first = next((i for i, (a, b) in enumerate(zip(reference.trades, other.trades, strict=False)) if a != b),
                     min(len(reference.trades), len(other.trades)))
        sys.exit(f"TRADES DIFFER: {reference.engine} made {len(reference.trades)}, {other.engine} "
                 f"{len(other.trades)}; first difference at trade {first}: "
                 f"{reference.trades[first:first + 1]} vs {other.trades[first:first + 1]}")
    print(f"trades agree: {len(reference.trades)} trades, identical sides, prices and bar times "
          f"across {', '.join(o.engine for o in outcomes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["ours"], help="run our engine only (no peers, no ratios)")
    args = parser.parse_args()
    walk = generate(args.bars + 1)
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as workdir:
        outcomes = [run_ours(walk, args.bars, args.repeat, Path(workdir))]
    print(f"ours:       {outcomes[0].bars_per_s:>12,.0f} bars/s  ({len(outcomes[0].trades)} trades)", flush=True)
    if args.only:
        return
    for run in (run_backtrader, run_nautilus):
        outcome = run(walk, args.bars, args.repeat)
        print(f"{outcome.engine + ':':<11} {outcome.bars_per_s:>12,.0f} bars/s  ({len(outcome.trades)} trades)",
              flush=True)
        outcomes.append(outcome)
    compare(outcomes)
    ours, backtrader, nautilus = (o.bars_per_s for o in outcomes)
    print(f"ratio_vs_backtrader={ours / backtrader:.2f} ratio_vs_nautilus={ours / nautilus:.2f}")


if __name__ == "__main__":
    main()
