from datetime import timedelta
from decimal import Decimal

import pytest

from core.execution import simulate
from core.fill_model import FillModel, Latency, Slippage
from core.instruments import AssetClass, Instrument, Venue
from core.market import Bar
from core.orders import Order, OrderStatus, new_order
from core.types import ExecutionMode, Liquidity, Side
from core.venue import BookLevel, OrderBook
from tests.kit.builders import T0, btc, intent, quote


def test_market_buy_fills_at_the_ask_with_the_venue_fee() -> None:
    order = new_order(intent(quantity="2"), "APPROVED", "", T0).transition(OrderStatus.PENDING_SUBMIT, T0)
    fill = FillModel().match(order, btc(), quote(bid="100.00", ask="100.10"), ExecutionMode.PAPER, T0)
    assert fill is not None
    assert (fill.price, fill.quantity, fill.fee) == (Decimal("100.10"), Decimal(2), Decimal("1.2012"))
    assert fill.venue_trade_id == f"{order.order_id}-{order.version}"


def test_market_sell_fills_at_the_bid() -> None:
    order = new_order(intent(side=Side.SELL), "APPROVED", "", T0).transition(OrderStatus.PENDING_SUBMIT, T0)
    fill = FillModel().match(order, btc(), quote(bid="99.00", ask="99.50"), ExecutionMode.PAPER, T0)
    assert fill is not None and fill.price == Decimal("99.00")


def test_limit_that_does_not_cross_does_not_fill() -> None:
    order = new_order(intent(limit_price="99.00"), "APPROVED", "", T0).transition(OrderStatus.PENDING_SUBMIT, T0)
    assert FillModel().match(order, btc(), quote(ask="100.10"), ExecutionMode.PAPER, T0) is None
    crossing = FillModel().match(order, btc(), quote(bid="98.00", ask="98.50"), ExecutionMode.PAPER, T0)
    assert crossing is not None and crossing.price == Decimal("98.50")


def test_partial_fill_by_displayed_size() -> None:
    order = new_order(intent(quantity="8"), "APPROVED", "", T0).transition(OrderStatus.PENDING_SUBMIT, T0)
    model = FillModel(partial_by_displayed_size=True)
    fill = model.match(order, btc(), quote(size="5"), ExecutionMode.PAPER, T0)
    assert fill is not None and fill.quantity == Decimal(5)


# --- TKT-401: slippage, latency, partial fills, L2 walk, bar ranges, fees -----------------------------------------

def routed(quantity: str = "1", side: Side = Side.BUY, limit_price: str | None = None) -> Order:
    return new_order(intent(quantity=quantity, side=side, limit_price=limit_price), "APPROVED", "",
                     T0).transition(OrderStatus.PENDING_SUBMIT, T0, effective_mode=ExecutionMode.PAPER)


def resting(limit_price: str, side: Side = Side.BUY, quantity: str = "1") -> Order:
    return routed(quantity, side, limit_price).transition(OrderStatus.OPEN, T0)


def test_fixed_slippage_moves_the_price_against_the_taker_rounded_to_the_tick() -> None:
    model = FillModel(slippage=Slippage(fixed_bps=Decimal(10)))
    buy = model.match(routed(), btc(), quote(bid="100.00", ask="100.10"), ExecutionMode.PAPER, T0)
    sell = model.match(routed(side=Side.SELL), btc(), quote(bid="100.00", ask="100.10"), ExecutionMode.PAPER, T0)
    assert buy is not None and buy.price == Decimal("100.21")  # 100.10 x 1.001 = 100.2001, up to the tick
    assert sell is not None and sell.price == Decimal("99.90")


def test_size_dependent_slippage_grows_with_the_share_of_displayed_size_taken() -> None:
    model = FillModel(slippage=Slippage(size_bps=Decimal(10)))
    small = model.match(routed("1"), btc(), quote(ask="100.10", size="10"), ExecutionMode.PAPER, T0)
    large = model.match(routed("20"), btc(), quote(ask="100.10", size="10"), ExecutionMode.PAPER, T0)
    assert small is not None and small.price == Decimal("100.12")  # 1 bps: 100.11001, up to the next tick
    assert large is not None and large.price == Decimal("100.31")  # 20 bps: 100.3002 -> 100.31


def test_slippage_never_takes_a_limit_order_beyond_its_limit() -> None:
    model = FillModel(slippage=Slippage(fixed_bps=Decimal(50)))
    fill = model.match(routed(limit_price="100.15"), btc(), quote(ask="100.10"), ExecutionMode.PAPER, T0)
    assert fill is not None and fill.price == Decimal("100.15")


def test_latency_is_fixed_plus_a_draw_seeded_by_the_order_id() -> None:
    fixed = Latency(fixed=timedelta(milliseconds=50))
    assert fixed.delay("ord_a") == timedelta(milliseconds=50) and fixed.delay("ord_b") == timedelta(milliseconds=50)
    jittered = Latency(fixed=timedelta(milliseconds=50), jitter=timedelta(milliseconds=100), seed=7)
    delays = [jittered.delay(f"ord_{n}") for n in range(200)]
    assert delays == [jittered.delay(f"ord_{n}") for n in range(200)]  # the same order, the same delay
    assert all(timedelta(milliseconds=50) <= d < timedelta(milliseconds=150) for d in delays)
    assert len(set(delays)) > 190
    reseeded = Latency(fixed=timedelta(milliseconds=50), jitter=timedelta(milliseconds=100), seed=8)
    assert [reseeded.delay(f"ord_{n}") for n in range(200)] != delays
    exponential = Latency(jitter=timedelta(milliseconds=10), distribution="exponential", seed=7)
    draws = [exponential.delay(f"ord_{n}") / timedelta(milliseconds=10) for n in range(2000)]
    assert min(draws) >= 0 and 0.9 < sum(draws) / len(draws) < 1.1  # mean 1 x jitter


def test_latency_refuses_negative_delays() -> None:
    with pytest.raises(ValueError, match="greater than or equal"):
        Latency(fixed=timedelta(milliseconds=-1))


def test_partial_fill_by_displayed_size_leaves_the_rest_for_the_next_quote() -> None:
    model = FillModel(partial_by_displayed_size=True)
    first = simulate(routed("8"), btc(), quote(size="5"), model, T0)
    assert first.order.status is OrderStatus.PARTIALLY_FILLED and first.order.filled_quantity == Decimal(5)
    nothing = simulate(first.order, btc(), quote(size="0"), model, T0)
    assert nothing.order == first.order and not nothing.fills
    rest = simulate(first.order, btc(), quote(size="5", seq=2), model, T0)
    assert rest.order.status is OrderStatus.FILLED and rest.fills[0].quantity == Decimal(3)
    assert rest.fills[0].venue_trade_id != first.fills[0].venue_trade_id


def book(*asks: tuple[str, str]) -> OrderBook:
    return OrderBook(instrument_id="crypto_spot:BTC-USD", bids=(BookLevel(price=Decimal("99.90"), size=Decimal(1)),),
                     asks=tuple(BookLevel(price=Decimal(p), size=Decimal(s)) for p, s in asks), ts=T0)


def test_walking_the_book_fills_level_by_level_best_first() -> None:
    levels = book(("100.10", "2"), ("100.20", "3"), ("100.50", "10"))
    fills = FillModel().fills(routed("4"), btc(), quote(), ExecutionMode.PAPER, T0, book=levels)
    assert [(f.quantity, f.price) for f in fills] == [(Decimal(2), Decimal("100.10")), (Decimal(2), Decimal("100.20"))]
    assert len({f.venue_trade_id for f in fills}) == 2
    assert [f.fee for f in fills] == [Decimal("1.2012"), Decimal("1.2024")]  # Coinbase taker 0.6% per fill


def test_walking_the_book_stops_at_the_limit_and_the_rest_rests() -> None:
    levels = book(("100.10", "2"), ("100.20", "3"))
    execution = simulate(routed("4", limit_price="100.15"), btc(), quote(), FillModel(), T0, book=levels)
    assert [(f.quantity, f.price) for f in execution.fills] == [(Decimal(2), Decimal("100.10"))]
    assert execution.order.status is OrderStatus.PARTIALLY_FILLED
    assert execution.order.venue_response is not None and execution.order.venue_response["fill_quantity"] == "2"


def test_a_multi_level_execution_reports_the_average_and_every_trade_id() -> None:
    levels = book(("100.00", "1"), ("101.00", "1"))
    execution = simulate(routed("2"), btc(), quote(), FillModel(), T0, book=levels)
    assert execution.order.status is OrderStatus.FILLED and execution.order.average_fill_price == Decimal("100.5")
    response = execution.order.venue_response
    assert response is not None and response["fill_price"] == "100.50" and len(response["venue_trade_ids"]) == 2


def bar(open_: str, high: str, low: str, close: str) -> Bar:
    return Bar("crypto_spot:BTC-USD", Decimal(open_), Decimal(high), Decimal(low), Decimal(close), Decimal(10), T0,
               T0 + timedelta(minutes=1))


@pytest.mark.parametrize(("ohlc", "price"), [
    (("100", "101", "98.5", "99.5"), Decimal("99.00")),  # traded down through the limit: filled at the limit
    (("98", "99.8", "97", "99.5"), Decimal("98")),  # opened below the limit: filled at the open
    (("100", "101", "99.5", "100"), None),  # never reached the limit
])
def test_a_resting_limit_is_matched_against_the_bar_range(ohlc: tuple[str, str, str, str],
                                                          price: Decimal | None) -> None:
    candle = bar(*ohlc)
    at_close = quote(bid=ohlc[3], ask=ohlc[3])
    fills = FillModel().fills(resting("99.00"), btc(), at_close, ExecutionMode.PAPER, T0, bar=candle)
    assert [f.price for f in fills] == ([price] if price is not None else [])


def test_a_resting_sell_limit_fills_when_the_bar_trades_up_to_it() -> None:
    candle = bar("100", "102", "99", "100.5")
    fills = FillModel().fills(resting("101.00", Side.SELL), btc(), quote(bid="100.5", ask="100.5"),
                              ExecutionMode.PAPER, T0, bar=candle)
    assert [f.price for f in fills] == [Decimal("101.00")]


def test_resting_fills_pay_the_maker_fee_when_configured() -> None:
    crossing = quote(bid="98.00", ask="98.50")
    taker = FillModel().match(resting("99.00"), btc(), crossing, ExecutionMode.PAPER, T0)
    maker = FillModel(resting_fills_are_maker=True).match(resting("99.00"), btc(), crossing, ExecutionMode.PAPER, T0)
    fresh = FillModel(resting_fills_are_maker=True).match(routed(limit_price="99.00"), btc(), crossing,
                                                          ExecutionMode.PAPER, T0)
    assert taker is not None and (taker.liquidity, taker.fee) == (Liquidity.TAKER, Decimal("0.591"))
    assert maker is not None and (maker.liquidity, maker.fee) == (Liquidity.MAKER, Decimal("0.394"))
    assert fresh is not None and fresh.liquidity is Liquidity.TAKER  # it took liquidity on arrival


def test_kalshi_taker_fee_is_charged_on_event_contract_fills() -> None:
    contract = Instrument(instrument_id="event_contract:KX-T", asset_class=AssetClass.EVENT_CONTRACT,
                          venue=Venue.KALSHI, quote_currency="USD", tick_size=Decimal("0.01"), lot_size=Decimal(1))
    order = new_order(intent(quantity="10", instrument_id="event_contract:KX-T"), "APPROVED", "",
                      T0).transition(OrderStatus.PENDING_SUBMIT, T0)
    fill = FillModel().match(order, contract, quote("event_contract:KX-T", bid="0.40", ask="0.45", size="100"),
                             ExecutionMode.PAPER, T0)
    assert fill is not None and fill.fee == Decimal("0.18")  # ceil(0.07 x 10 x 0.45 x 0.55 = 0.17325)
