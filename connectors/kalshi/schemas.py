"""Frozen models of Kalshi's 2026 wire format (REST and websocket).

Prices are fixed-point dollar strings (`*_dollars`), counts fixed-point strings (`*_fp`): both become Decimal and
a JSON number in their place is refused (it would already have lost precision). Required fields are enforced,
enum fields refuse values we do not know, and fields we do not read are ignored (Kalshi adds fields often).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt

from connectors.kalshi.constants import (
    PRICE_PLACES,
    BookSide,
    FeeType,
    KalshiOrderStatus,
    MarketResult,
    MarketStatus,
    OutcomeSide,
)


def _fixed_point(places: int, what: str, *, unit_interval: bool = False) -> Callable[[Any], Decimal]:
    pattern = re.compile(rf"-?\d+(\.\d{{1,{places}}})?")

    def parse(value: Any) -> Decimal:
        if not isinstance(value, str):
            raise ValueError(f"{what} must be a fixed-point decimal string, got {type(value).__name__}")
        if not pattern.fullmatch(value):
            raise ValueError(f"{what} is not a fixed-point decimal with at most {places} places: {value!r}")
        number = Decimal(value)
        if unit_interval and not 0 <= number <= 1:
            raise ValueError(f"{what} must be within [0, 1]: {value!r}")
        return number

    return parse


def _multiplier(value: Any) -> Decimal:
    # The one number Kalshi documents as a JSON double (a fee multiplier, not money): take its shortest decimal
    # form, so 1.0 -> 1.0 and 0.5 -> 0.5 exactly.
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"fee multiplier must be a number, got {type(value).__name__}")
    number = Decimal(str(value))
    if not number.is_finite() or number < 0:
        raise ValueError(f"fee multiplier must be a finite number >= 0: {value!r}")
    return number


Dollars = Annotated[Decimal, BeforeValidator(_fixed_point(PRICE_PLACES, "dollar amount"))]
Price = Annotated[Decimal, BeforeValidator(_fixed_point(PRICE_PLACES, "price", unit_interval=True))]
Count = Annotated[Decimal, BeforeValidator(_fixed_point(2, "count"))]
Multiplier = Annotated[Decimal, BeforeValidator(_multiplier)]
Ticker = Annotated[str, Field(min_length=1)]
Level = tuple[Price, Count]
"""[price_dollars, count_fp]."""


class Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Page(Wire):
    """One page of a cursor-paginated listing; an empty or missing cursor means the last page."""

    cursor: str | None = None


# --- REST ---------------------------------------------------------------------------------------------------

class ExchangeStatus(Wire):
    exchange_active: StrictBool
    trading_active: StrictBool


class PriceRange(Wire):
    start: Price
    end: Price
    step: Dollars


class Market(Wire):
    ticker: Ticker
    event_ticker: Ticker
    status: MarketStatus
    close_time: AwareDatetime
    price_ranges: tuple[PriceRange, ...] = Field(min_length=1)
    yes_bid_dollars: Price
    yes_ask_dollars: Price
    yes_bid_size_fp: Count
    yes_ask_size_fp: Count
    last_price_dollars: Price
    result: MarketResult = MarketResult.UNDETERMINED
    fractional_trading_enabled: StrictBool = False
    """Deprecated by Kalshi (documented as always true); absent means whole contracts only."""


class MarketsPage(Page):
    markets: tuple[Market, ...]


class MarketEnvelope(Wire):
    market: Market


class Event(Wire):
    event_ticker: Ticker
    series_ticker: Ticker
    fee_type_override: FeeType | None = None
    fee_multiplier_override: Multiplier | None = None


class EventEnvelope(Wire):
    event: Event


class Series(Wire):
    ticker: Ticker
    fee_type: FeeType
    fee_multiplier: Multiplier


class SeriesEnvelope(Wire):
    series: Series


class Orderbook(Wire):
    # Bids only, on both legs. Nullable: an empty ladder may be serialized as null.
    yes_dollars: tuple[Level, ...] | None
    no_dollars: tuple[Level, ...] | None


class OrderbookEnvelope(Wire):
    orderbook_fp: Orderbook


class Trade(Wire):
    trade_id: Ticker
    ticker: Ticker
    count_fp: Count
    yes_price_dollars: Price
    taker_outcome_side: OutcomeSide
    taker_book_side: BookSide
    created_time: AwareDatetime


class TradesPage(Page):
    trades: tuple[Trade, ...]


class BalanceBody(Wire):
    balance_dollars: Dollars
    portfolio_value: StrictInt
    """Cents (Kalshi still answers this one in cents)."""


class MarketPosition(Wire):
    ticker: Ticker
    position_fp: Count
    """Signed: negative means NO contracts."""
    market_exposure_dollars: Dollars
    realized_pnl_dollars: Dollars
    fees_paid_dollars: Dollars


class PositionsPage(Page):
    market_positions: tuple[MarketPosition, ...]


class Order(Wire):
    order_id: Ticker
    client_order_id: str
    ticker: Ticker
    status: KalshiOrderStatus
    outcome_side: OutcomeSide
    book_side: BookSide
    yes_price_dollars: Price
    fill_count_fp: Count
    remaining_count_fp: Count
    initial_count_fp: Count


class OrderEnvelope(Wire):
    order: Order


class OrdersPage(Page):
    orders: tuple[Order, ...]


class Fill(Wire):
    trade_id: Ticker
    order_id: Ticker
    ticker: Ticker
    outcome_side: OutcomeSide
    book_side: BookSide
    count_fp: Count
    yes_price_dollars: Price
    is_taker: StrictBool
    fee_cost: Dollars
    created_time: AwareDatetime | None = None
    ts: StrictInt | None = None
    """Legacy unix seconds, used when created_time is absent (neither is marked required by Kalshi)."""
    client_order_id: str | None = None


class FillsPage(Page):
    fills: tuple[Fill, ...]


class CreateOrderResponse(Wire):
    order_id: Ticker
    client_order_id: str | None = None
    fill_count: Count
    remaining_count: Count
    ts_ms: StrictInt


class CancelOrderResponse(Wire):
    order_id: Ticker
    reduced_by: Count
    ts_ms: StrictInt


class ErrorBody(Wire):
    code: str
    message: str
    details: str | None = None


class NestedErrorBody(Wire):
    error: ErrorBody


# --- Websocket ----------------------------------------------------------------------------------------------

class WsEnvelope(Wire):
    type: str
    id: StrictInt | None = None
    sid: StrictInt | None = None
    seq: StrictInt | None = None
    msg: dict[str, Any] | None = None


class WsSubscribed(Wire):
    channel: str
    sid: StrictInt


class WsError(Wire):
    code: StrictInt
    msg: str


class WsOrderbookSnapshot(Wire):
    market_ticker: Ticker
    # Absent when that leg has no bids.
    yes_dollars_fp: tuple[Level, ...] = ()
    no_dollars_fp: tuple[Level, ...] = ()


class WsOrderbookDelta(Wire):
    market_ticker: Ticker
    price_dollars: Price
    delta_fp: Count
    side: OutcomeSide
    ts_ms: StrictInt | None = None


class WsTicker(Wire):
    market_ticker: Ticker
    price_dollars: Price
    yes_bid_dollars: Price
    yes_ask_dollars: Price
    volume_fp: Count
    ts_ms: StrictInt


class WsFill(Wire):
    trade_id: Ticker
    order_id: Ticker
    market_ticker: Ticker
    is_taker: StrictBool
    yes_price_dollars: Price
    count_fp: Count
    fee_cost: Dollars
    outcome_side: OutcomeSide
    book_side: BookSide
    ts_ms: StrictInt
    client_order_id: str | None = None
