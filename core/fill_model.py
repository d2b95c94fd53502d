"""The fill simulator used by paper, shadow and backtests: fills marketable orders at the touch, with fees."""

from __future__ import annotations

from core.fees import FeeSchedule
from core.fills import Fill
from core.instruments import Instrument
from core.market import Quote
from core.orders import Order
from core.types import ExecutionMode, Frozen, Liquidity, OrderType, Side, UtcDatetime


class FillModel(Frozen):
    fees: FeeSchedule = FeeSchedule()
    partial_by_displayed_size: bool = False
    """When true, one quote fills at most its displayed size; the rest waits for later quotes."""

    def is_marketable(self, order: Order, quote: Quote) -> bool:
        if order.order_type is OrderType.MARKET:
            return True
        assert order.limit_price is not None
        touch = quote.touch(order.side)
        return touch <= order.limit_price if order.side is Side.BUY else touch >= order.limit_price

    def match(self, order: Order, instrument: Instrument, quote: Quote, mode: ExecutionMode,
              at: UtcDatetime) -> Fill | None:
        """The fill this quote gives the order, or None when it does not cross (or shows no size)."""
        if order.remaining_quantity <= 0 or not self.is_marketable(order, quote):
            return None
        quantity = order.remaining_quantity
        if self.partial_by_displayed_size:
            quantity = min(quantity, quote.touch_size(order.side))
            if quantity <= 0:
                return None
        price = quote.touch(order.side)
        return Fill(
            venue=f"sim-{instrument.venue.value}",
            venue_trade_id=f"{order.order_id}-{order.version}",
            order_id=order.order_id, trace_id=order.trace_id, account_id=order.account_id, owner=order.owner,
            strategy_id=order.strategy_id, instrument_id=order.instrument_id, side=order.side,
            quantity=quantity, price=price,
            fee=self.fees.fee(instrument, quantity, price, Liquidity.TAKER),
            liquidity=Liquidity.TAKER, mode=mode, ts=at,
        )
