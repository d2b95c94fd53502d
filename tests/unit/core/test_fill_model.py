from decimal import Decimal

from core.fill_model import FillModel
from core.orders import OrderStatus, new_order
from core.types import ExecutionMode, Side
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
