from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from backtest.data import market_data
from backtest.engine import Backtest, BacktestConfig, BacktestResult
from core.execution import Duplicate
from core.fill_model import FillModel, Latency
from core.fills import Fill
from core.instruments import AssetClass, Instrument, InstrumentCatalog, Venue
from core.market import Bar, Quote
from core.orders import OrderStatus
from core.reasons import ReasonCode
from core.risk import RiskPolicy
from core.strategies import SmaCrossover
from core.strategy import NoParams, Strategy, StrategyContext, Timer
from core.types import ExecutionMode, Liquidity, Side
from tests.kit.builders import OWNER, T0, account, btc, policy, quote

BTC = "crypto_spot:BTC-USD"
MINUTE = timedelta(minutes=1)


def bar(i: int, close: str, *, open_: str | None = None, high: str | None = None, low: str | None = None,
        instrument_id: str = BTC) -> Bar:
    """The i-th one-minute bar from T0 (delivered at T0 + i + 1 minutes)."""
    c = Decimal(close)
    o = Decimal(open_) if open_ else c
    return Bar(instrument_id, o, Decimal(high) if high else max(o, c), Decimal(low) if low else min(o, c), c,
               Decimal(100), T0 + i * MINUTE, T0 + (i + 1) * MINUTE)


def closes(*values: str) -> list[Bar]:
    return [bar(i, v) for i, v in enumerate(values)]


def run(strategy: Strategy[Any], bars: list[Bar], *, quotes: list[Quote] | None = None,
        risk: RiskPolicy | None = None, fill_model: FillModel | None = None, cash: str = "100000",
        instruments: list[Instrument] | None = None) -> BacktestResult:
    return engine(strategy, bars, quotes=quotes, risk=risk, fill_model=fill_model, cash=cash,
                  instruments=instruments).run()


def engine(strategy: Strategy[Any], bars: list[Bar], *, quotes: list[Quote] | None = None,
           risk: RiskPolicy | None = None, fill_model: FillModel | None = None, cash: str = "100000",
           instruments: list[Instrument] | None = None) -> Backtest:
    config = BacktestConfig(account=account(cash=cash), policy=risk or policy(), fill_model=fill_model or FillModel())
    return Backtest(strategy, config, InstrumentCatalog(instruments or [btc()]), market_data(bars, quotes or []))


def sma(**params: Any) -> SmaCrossover:
    return SmaCrossover("sma", {"fast": 2, "slow": 3, "quantity": "1", **params})


class Scripted(Strategy[NoParams]):
    """Calls `script(bar index, ctx)` on every bar; records timers and fills."""

    params_model = NoParams

    def __init__(self, script: Callable[[int, StrategyContext], None], params: Mapping[str, Any] | None = None) -> None:
        super().__init__("scripted", params)
        self.script = script
        self.bars = 0
        self.fills: list[Fill] = []
        self.timers: list[tuple[Timer, datetime]] = []

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> None:
        self.script(self.bars, ctx)
        self.bars += 1

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        self.fills.append(fill)

    def on_timer(self, timer: Timer, ctx: StrategyContext) -> None:
        self.timers.append((timer, ctx.now()))


def test_a_known_bar_series_gives_exactly_the_expected_trades_pnl_fees_and_equity() -> None:
    result = run(sma(), closes("10", "10", "10", "11", "12", "9", "8", "8"))
    assert [(f.side, f.quantity, f.price, f.ts) for f in result.trades] == [
        (Side.BUY, Decimal(1), Decimal(11), T0 + 4 * MINUTE), (Side.SELL, Decimal(1), Decimal(9), T0 + 6 * MINUTE)]
    assert [f.fee for f in result.trades] == [Decimal("0.066"), Decimal("0.054")]  # Coinbase taker 0.6%
    assert all(f.liquidity is Liquidity.TAKER and f.mode is ExecutionMode.PAPER for f in result.trades)
    position = result.ledger.positions[BTC]
    assert (position.quantity, position.realized_pnl) == (Decimal(0), Decimal(-2))
    assert (result.fees, result.ledger.cash) == (Decimal("0.12"), Decimal("99997.88"))
    assert result.equity_curve == [
        (T0, Decimal(100000)), (T0 + MINUTE, Decimal(100000)), (T0 + 2 * MINUTE, Decimal(100000)),
        (T0 + 3 * MINUTE, Decimal(100000)), (T0 + 4 * MINUTE, Decimal("99999.934")),
        (T0 + 5 * MINUTE, Decimal("100000.934")), (T0 + 6 * MINUTE, Decimal("99997.88")),
        (T0 + 7 * MINUTE, Decimal("99997.88")), (T0 + 8 * MINUTE, Decimal("99997.88"))]
    assert [(o.status, o.reason_code, o.effective_mode) for o in result.orders] == [
        (OrderStatus.FILLED, ReasonCode.PAPER_SIMULATED.value, ExecutionMode.PAPER)] * 2


def test_the_equity_curve_marks_open_positions_at_every_bar_close() -> None:
    result = run(sma(), closes("10", "10", "10", "11", "12", "13"))
    cash = Decimal(100000) - Decimal(11) - Decimal("0.066")
    assert [e for _, e in result.equity_curve[-3:]] == [cash + 11, cash + 12, cash + 13]
    assert result.equity_curve[-1][1] == result.ledger.snapshot({BTC: Decimal(13)}, T0).equity


def test_a_risk_denial_is_a_rejected_order_with_its_reason_code_and_nothing_trades() -> None:
    result = run(sma(), closes("10", "10", "10", "11", "12", "9"), risk=policy(max_notional="5"))
    assert not result.trades
    [order] = result.orders
    assert (order.status, order.reason_code, order.reason_detail) == (
        OrderStatus.REJECTED, ReasonCode.MAX_ORDER_NOTIONAL_EXCEEDED.value, "notional=11 limit=5")


def test_the_gate_sees_the_position_equity_and_drawdown_of_the_account() -> None:
    simulated = Instrument(instrument_id="equity:SIM", asset_class=AssetClass.EQUITY, venue=Venue.SIMULATED,
                           quote_currency="USD", tick_size=Decimal("0.01"), lot_size=Decimal(1))

    def script(i: int, ctx: StrategyContext) -> None:
        if i == 0:
            ctx.buy("equity:SIM", Decimal(50))
        if i == 1:
            ctx.buy("equity:SIM", Decimal(60))  # would hold 110: above the position limit of 100
        if i == 3:
            ctx.buy("equity:SIM", Decimal(1))  # equity fell 10% today: reduce-only
        if i == 4:
            ctx.sell("equity:SIM", Decimal(10))  # reducing is still allowed

    bars = [bar(i, c, instrument_id="equity:SIM") for i, c in enumerate(["10", "10", "10", "8", "8"])]
    result = run(Scripted(script), bars, cash="1000", instruments=[simulated], risk=policy(max_position="100"))
    assert [(o.side, o.quantity, o.status, o.reason_code) for o in result.orders] == [
        (Side.BUY, Decimal(50), OrderStatus.FILLED, "PAPER_SIMULATED"),
        (Side.BUY, Decimal(60), OrderStatus.REJECTED, "MAX_POSITION_EXCEEDED"),
        (Side.BUY, Decimal(1), OrderStatus.REJECTED, "REDUCE_ONLY"),
        (Side.SELL, Decimal(10), OrderStatus.FILLED, "PAPER_SIMULATED")]
    assert "daily_drawdown=0.1000" in result.orders[2].reason_detail


def test_a_resting_limit_fills_on_a_later_bar_that_trades_through_it() -> None:
    def script(i: int, ctx: StrategyContext) -> None:
        if i == 0:
            ctx.buy(BTC, Decimal(1), limit_price=Decimal("9.50"), key="dip")

    strategy = Scripted(script)
    bars = [bar(0, "10"), bar(1, "10.2", open_="10", high="10.5", low="9.8"),
            bar(2, "9.9", open_="10.1", high="10.2", low="9.4"), bar(3, "9.6")]
    result = run(strategy, bars)
    [order] = result.orders
    assert (order.status, order.filled_quantity, order.average_fill_price) == (
        OrderStatus.FILLED, Decimal(1), Decimal("9.50"))
    assert [(f.price, f.ts) for f in strategy.fills] == [(Decimal("9.50"), T0 + 3 * MINUTE)]
    assert result.ledger.positions[BTC].quantity == 1


def test_a_resting_limit_is_matched_against_later_quotes_when_the_instrument_has_quotes() -> None:
    def script(i: int, ctx: StrategyContext) -> None:
        if i == 0:
            ctx.buy(BTC, Decimal(1), limit_price=Decimal("99.00"))

    quotes = [quote(bid="99.50", ask="99.60", seq=1, ts=T0 + 30 * timedelta(seconds=1)),
              quote(bid="98.70", ask="98.90", seq=2, ts=T0 + 90 * timedelta(seconds=1))]
    # The bar's range reaches 98 but its instrument has quotes: only a quote can fill the order.
    bars = [bar(0, "99.55", open_="99.5", low="98")]
    result = run(Scripted(script), bars, quotes=quotes)
    assert [(f.price, f.ts) for f in result.trades] == [(Decimal("98.90"), T0 + 90 * timedelta(seconds=1))]


def test_latency_executes_an_order_against_the_first_bar_after_it_arrives() -> None:
    # The buy from bar 4's close (11) arrives 90 s later, so it executes at bar 6's close (9); the sell from
    # bar 6 arrives during bar 8 and executes at its close.
    model = FillModel(latency=Latency(fixed=timedelta(seconds=90)))
    result = run(sma(), closes("10", "10", "10", "11", "12", "9", "8", "7"), fill_model=model)
    assert [(f.side, f.price, f.ts) for f in result.trades] == [
        (Side.BUY, Decimal(9), T0 + 6 * MINUTE), (Side.SELL, Decimal(7), T0 + 8 * MINUTE)]


def test_a_duplicate_fill_does_not_count_twice() -> None:
    backtest = engine(sma(), closes("10", "10"))
    replayed = Fill(venue="coinbase", venue_trade_id="t-1", order_id="ord_x", trace_id="0" * 32,
                    account_id="acct-1", owner=OWNER, strategy_id="sma", instrument_id=BTC, side=Side.BUY,
                    quantity=Decimal(2), price=Decimal(10), fee=Decimal(0), liquidity=Liquidity.TAKER,
                    mode=ExecutionMode.PAPER, ts=T0)
    assert backtest.apply_fill(replayed) is True
    assert backtest.apply_fill(replayed) is False
    result = backtest.run()
    assert result.ledger.positions[BTC].quantity == 2 and result.ledger.cash == Decimal(100000 - 20)
    assert (result.duplicate_fills, len(result.trades)) == (1, 1)


def test_a_reused_idempotency_key_makes_no_second_order() -> None:
    def script(i: int, ctx: StrategyContext) -> None:
        if i < 2:
            ctx.buy(BTC, Decimal(1), key="same")
        if i == 2:
            ctx.buy(BTC, Decimal(2), key="same")

    result = run(Scripted(script), closes("10", "10", "10"))
    assert len(result.orders) == 1 and len(result.trades) == 1
    assert [d for _, d in result.duplicates] == [Duplicate.SAME_BODY, Duplicate.OTHER_BODY]


def test_timers_fire_at_their_time_between_bars_with_the_clock_on_the_timer() -> None:
    strategy = Scripted(lambda i, ctx: ctx.set_timer("t", timedelta(seconds=90)) if i == 0 else None)
    run(strategy, closes("10", "10", "10", "10", "10"))
    # Set at bar 0's close (T0 + 1m): due at +2m30s and +4m, both before the last bar's close at +5m.
    assert [(t.name, t.at - T0, now - T0) for t, now in strategy.timers] == [
        ("t", timedelta(seconds=150), timedelta(seconds=150)), ("t", timedelta(seconds=240), timedelta(seconds=240))]


def test_the_same_run_twice_gives_the_same_records() -> None:
    series = closes("10", "10", "10", "11", "12", "9", "8", "8", "9", "12", "13", "10")
    first, second = run(sma(), series), run(sma(), series)
    assert first.trades == second.trades and first.orders == second.orders
    assert first.equity_curve == second.equity_curve


def test_market_data_out_of_time_order_stops_the_run_naming_the_times() -> None:
    bars = closes("100", "101", "102")
    data = market_data(bars)
    shuffled = type(data)([data.events[0], data.events[2], data.events[1]], data.quoted, 3, 0)  # built by hand
    config = BacktestConfig(account=account(), policy=policy())
    backtest = Backtest(sma(), config, InstrumentCatalog([btc()]), shuffled)
    with pytest.raises(ValueError, match=r"out of time order: an event at 2026-.* after 2026-"):
        backtest.run()
