from datetime import timedelta
from decimal import Decimal

import pytest

from core.clock import ManualClock
from core.market import Bar
from core.strategies import EventMeanReversion, SmaCrossover
from core.strategy import StrategyContext
from core.types import OrderType, Side
from tests.kit.builders import T0, account, quote

CONTRACT = "event_contract:KX-TEST"


def context(clock: ManualClock) -> StrategyContext:
    return StrategyContext("s", account(), clock, new_trace_id=lambda: "f" * 32)


def bars(closes: list[str], instrument_id: str = "crypto_spot:BTC-USD") -> list[Bar]:
    return [Bar(instrument_id, Decimal(c), Decimal(c), Decimal(c), Decimal(c), Decimal(1), T0 + timedelta(minutes=i),
                T0 + timedelta(minutes=i + 1)) for i, c in enumerate(closes)]


def test_sma_on_bar_closes_goes_long_on_the_cross_up_and_flat_on_the_cross_down() -> None:
    clock = ManualClock(T0)
    ctx = context(clock)
    strategy = SmaCrossover("s", {"fast": 2, "slow": 3, "quantity": "1"})
    orders = []
    for bar in bars(["10", "10", "10", "11", "12", "9", "8", "8"]):
        clock.set(bar.ts_end)
        strategy.on_bar(bar, ctx)
        orders += [(i.side, i.quantity, i.order_type, i.idempotency_key) for i in ctx.drain()]
    key = "crypto_spot:BTC-USD:{}".format
    assert orders == [(Side.BUY, Decimal(1), OrderType.MARKET, key((T0 + timedelta(minutes=4)).isoformat())),
                      (Side.SELL, Decimal(1), OrderType.MARKET, key((T0 + timedelta(minutes=6)).isoformat()))]


def test_sma_trades_only_the_instruments_it_is_sized_for() -> None:
    ctx = context(ManualClock(T0))
    strategy = SmaCrossover("s", {"fast": 1, "slow": 2, "quantity": {"equity:AAPL": "5"}})
    for bar in bars(["1", "2", "3"]) + bars(["1", "2", "3"], "equity:AAPL"):
        strategy.on_bar(bar, ctx)
    assert [(i.instrument_id, i.quantity) for i in ctx.drain()] == [("equity:AAPL", Decimal(5))]


def run_mean_reversion(quotes: list[tuple[str, str]], **params: str) -> list[tuple[Side, Decimal, Decimal | None]]:
    ctx = context(ManualClock(T0))
    strategy = EventMeanReversion("mr", {"window": 4, "entry": "0.05", "exit": "0.01", "quantity": "10", **params})
    out = []
    for seq, (bid, ask) in enumerate(quotes, start=1):
        strategy.on_quote(quote(CONTRACT, bid=bid, ask=ask, seq=seq), ctx)
        out += [(i.side, i.quantity, i.limit_price) for i in ctx.drain()]
    return out


def test_mean_reversion_fades_a_rich_yes_price_and_closes_near_the_mean() -> None:
    orders = run_mean_reversion([("0.49", "0.51")] * 4 + [("0.57", "0.59"), ("0.52", "0.54"), ("0.43", "0.45")])
    assert orders == [
        (Side.SELL, Decimal(10), Decimal("0.57")),  # mid 0.58 vs mean 0.52: sell YES at the bid
        (Side.BUY, Decimal(10), Decimal("0.54")),  # mid 0.53 vs mean 0.5275: within exit, back to flat
        (Side.BUY, Decimal(10), Decimal("0.45")),  # mid 0.44 vs mean 0.5125: cheap, buy YES at the ask
    ]


def test_mean_reversion_keeps_limit_prices_on_the_tick_grid_inside_zero_and_one() -> None:
    orders = run_mean_reversion([("0.89", "0.91"), ("0.89", "0.91"), ("0.995", "1.00")], window="2", entry="0.03")
    assert orders == [(Side.SELL, Decimal(10), Decimal("0.99"))]  # the bid 0.995 rounds up to 1.00, kept at 0.99


def test_mean_reversion_ignores_other_instruments_and_prices_outside_zero_one() -> None:
    ctx = context(ManualClock(T0))
    strategy = EventMeanReversion("mr", {"window": 2})
    strategy.on_quote(quote("crypto_spot:BTC-USD", bid="0.10", ask="0.20"), ctx)
    strategy.on_quote(quote("crypto_spot:BTC-USD", bid="0.60", ask="0.70"), ctx)
    strategy.on_quote(quote(CONTRACT, bid="1.00", ask="1.00"), ctx)
    assert ctx.drain() == []


def test_mean_reversion_needs_exit_below_entry() -> None:
    with pytest.raises(ValueError, match="exit"):
        EventMeanReversion("mr", {"entry": "0.02", "exit": "0.02"})
