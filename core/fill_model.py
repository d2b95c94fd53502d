"""The fill simulator used by paper, shadow and backtests: fills marketable orders at the touch, with fees.

Beyond the touch it models (TKT-401) slippage (fixed and size-dependent), latency between routing and arrival
(fixed, or drawn deterministically from a seed and the order id), partial fills by displayed size, walking an L2
book when one is given, and resting limits against the range of a bar. Pure and deterministic: the same inputs
give the same fills in every run and every process.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

from pydantic import Field

from core.fees import FeeSchedule
from core.fills import Fill
from core.instruments import Instrument, Venue
from core.market import Bar, Quote
from core.orders import Order, OrderStatus
from core.trusted import builder
from core.types import ZERO, ExecutionMode, Frozen, Liquidity, NonNegative, OrderType, Side, UtcDatetime
from core.venue import OrderBook

BPS = Decimal(10_000)
RESTING = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED})
_SIMULATED_VENUE = {venue: f"sim-{venue.value}" for venue in Venue}
"""The venue a simulated fill names: the instrument's venue, marked simulated."""
_trusted_fill = builder(Fill)


class Slippage(Frozen):
    """A concession on taker fills, in basis points of the price, rounded to the tick against the taker.

    `fixed_bps` applies to every taker fill; `size_bps` adds that many bps per multiple of the displayed size the
    fill takes (quantity / displayed size), a simple impact model. A walked L2 book already prices the size, so
    only `fixed_bps` applies there. A limit order never fills beyond its limit.
    """

    fixed_bps: NonNegative = ZERO
    size_bps: NonNegative = ZERO

    def price(self, price: Decimal, side: Side, quantity: Decimal, displayed: Decimal | None,
              instrument: Instrument) -> Decimal:
        bps = self.fixed_bps
        if self.size_bps and displayed:
            bps += self.size_bps * quantity / displayed
        if not bps:
            return price
        moved = price * (BPS + bps * side.sign) / BPS
        rounding = ROUND_CEILING if side is Side.BUY else ROUND_FLOOR
        return (moved / instrument.tick_size).to_integral_value(rounding=rounding) * instrument.tick_size


class Latency(Frozen):
    """Delay between routing an order and its arrival at the simulated venue: the order executes against the first
    quote or bar at or after routing time + delay. `fixed` plus, with `jitter`, a draw from `distribution` scaled
    by `jitter` (uniform on [0, 1), or exponential with mean 1), seeded by (`seed`, order id): the same order gets
    the same delay in every run, whatever else happens in between."""

    fixed: timedelta = Field(default=timedelta(0), ge=timedelta(0))
    jitter: timedelta = Field(default=timedelta(0), ge=timedelta(0))
    distribution: Literal["uniform", "exponential"] = "uniform"
    seed: int = 0

    def delay(self, order_id: str) -> timedelta:
        if not self.jitter:
            return self.fixed
        digest = hashlib.sha256(f"{self.seed}\x1f{order_id}".encode()).digest()
        unit = int.from_bytes(digest[:8], "big") / 2**64  # uniform on [0, 1)
        draw = unit if self.distribution == "uniform" else -math.log1p(-unit)
        return self.fixed + self.jitter * draw


class FillModel(Frozen):
    fees: FeeSchedule = FeeSchedule()
    partial_by_displayed_size: bool = False
    """When true, one quote fills at most its displayed size; the rest waits for later quotes."""
    slippage: Slippage = Slippage()
    latency: Latency = Latency()
    resting_fills_are_maker: bool = False
    """Charge the maker fee when a resting limit order fills (it provided the liquidity); else every fill is taker."""

    def match(self, order: Order, instrument: Instrument, quote: Quote, mode: ExecutionMode,
              at: UtcDatetime) -> Fill | None:
        """The fill this quote gives the order, or None when it does not cross (or shows no size)."""
        fills = self.fills(order, instrument, quote, mode, at)
        return fills[0] if fills else None

    def fills(self, order: Order, instrument: Instrument, quote: Quote, mode: ExecutionMode, at: UtcDatetime, *,
              bar: Bar | None = None, book: OrderBook | None = None) -> tuple[Fill, ...]:
        """The fills the market gives the order now: the quote's touch; with `book`, its levels on the order's
        side, best first; with `bar` (the quote then stands at the bar's close), a resting limit also fills when
        the bar's range reached its price: at the open when the bar opened through it, else at the limit."""
        remaining = order.remaining_quantity
        if remaining <= ZERO:
            return ()
        resting = order.status in RESTING
        if book is not None:
            return self._walk(order, instrument, book, remaining, resting, mode, at)
        side = order.side
        touch = quote.touch(side)
        displayed = quote.touch_size(side)
        quantity = min(remaining, displayed) if self.partial_by_displayed_size else remaining
        if quantity <= ZERO:
            return ()
        if bar is not None and resting and order.limit_price is not None:
            # The quote is the bar's close shifted by the spread; the same shift applies across the bar's range.
            offset = touch - bar.close
            opened = bar.open + offset
            if self._crosses(order, opened):
                return (self._fill(order, instrument, 0, quantity, opened, resting, mode, at),)
            if self._crosses(order, (bar.low if side is Side.BUY else bar.high) + offset):
                return (self._fill(order, instrument, 0, quantity, order.limit_price, resting, mode, at),)
            return ()
        if not self._crosses(order, touch):
            return ()
        price = self._slipped(order, instrument, touch, quantity, displayed)
        return (self._fill(order, instrument, 0, quantity, price, resting, mode, at),)

    def _walk(self, order: Order, instrument: Instrument, book: OrderBook, remaining: Decimal, resting: bool,
              mode: ExecutionMode, at: UtcDatetime) -> tuple[Fill, ...]:
        fills: list[Fill] = []
        for level in book.asks if order.side is Side.BUY else book.bids:
            if not self._crosses(order, level.price):
                break
            quantity = min(remaining, level.size)
            if quantity <= 0:
                continue
            price = self._slipped(order, instrument, level.price, quantity, None)
            fills.append(self._fill(order, instrument, len(fills), quantity, price, resting, mode, at))
            remaining -= quantity
            if remaining == 0:
                break
        return tuple(fills)

    def _crosses(self, order: Order, price: Decimal) -> bool:
        limit = order.limit_price
        if order.order_type is OrderType.MARKET or limit is None:
            return True
        return price <= limit if order.side is Side.BUY else price >= limit

    def _slipped(self, order: Order, instrument: Instrument, price: Decimal, quantity: Decimal,
                 displayed: Decimal | None) -> Decimal:
        slipped = self.slippage.price(price, order.side, quantity, displayed, instrument)
        limit = order.limit_price
        if limit is None:
            return slipped
        return min(slipped, limit) if order.side is Side.BUY else max(slipped, limit)

    def _fill(self, order: Order, instrument: Instrument, index: int, quantity: Decimal, price: Decimal,
              resting: bool, mode: ExecutionMode, at: UtcDatetime) -> Fill:
        maker = resting and self.resting_fills_are_maker and order.limit_price is not None
        liquidity = Liquidity.MAKER if maker else Liquidity.TAKER
        # Every value comes from the validated order, quote or book and the fee schedule: no re-validation.
        return _trusted_fill(
            venue=_SIMULATED_VENUE[instrument.venue],
            # One trade id per fill; the order's version advances with each fill applied, so ids never repeat.
            venue_trade_id=f"{order.order_id}-{order.version + index}",
            order_id=order.order_id, trace_id=order.trace_id, account_id=order.account_id, owner=order.owner,
            strategy_id=order.strategy_id, instrument_id=order.instrument_id, side=order.side,
            quantity=quantity, price=price,
            fee=self.fees.fee(instrument, quantity, price, liquidity),
            liquidity=liquidity, mode=mode, ts=at,
        )
