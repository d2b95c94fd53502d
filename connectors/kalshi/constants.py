"""Kalshi Trade API v2 facts: base URLs, endpoints, rate limits and the maps between Kalshi's words and ours.

Sources: shared/reference/venues.md (the 2026 format) and Kalshi's openapi/asyncapi specs.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Final

from core.orders import OrderStatus
from core.types import Side, TimeInForce


class KalshiEnvironment(StrEnum):
    PRODUCTION = "production"
    DEMO = "demo"


REST_URLS: Final = {
    KalshiEnvironment.PRODUCTION: "https://external-api.kalshi.com/trade-api/v2",
    KalshiEnvironment.DEMO: "https://demo-api.kalshi.co/trade-api/v2",
}
WS_URLS: Final = {
    KalshiEnvironment.PRODUCTION: "wss://external-api-ws.kalshi.com/trade-api/ws/v2",
    KalshiEnvironment.DEMO: "wss://demo-api.kalshi.co/trade-api/ws/v2",
}
WS_SIGNED_PATH: Final = "/trade-api/ws/v2"
"""The WS handshake is signed over this path whatever host serves it."""

# REST paths, relative to the base URL.
EXCHANGE_STATUS: Final = "/exchange/status"
MARKETS: Final = "/markets"
MARKET: Final = "/markets/{ticker}"
ORDERBOOK: Final = "/markets/{ticker}/orderbook"
TRADES: Final = "/markets/trades"
EVENT: Final = "/events/{event_ticker}"
SERIES: Final = "/series/{series_ticker}"
BALANCE: Final = "/portfolio/balance"
POSITIONS: Final = "/portfolio/positions"
ORDERS: Final = "/portfolio/orders"
ORDER: Final = "/portfolio/orders/{order_id}"
FILLS: Final = "/portfolio/fills"
CREATE_ORDER: Final = "/portfolio/events/orders"
CANCEL_ORDER: Final = "/portfolio/events/orders/{order_id}"

OPEN_MARKETS: Final = "open"
"""The `status` filter of GET /markets for markets that trade (their own status is then `active`)."""

MAX_PAGE_LIMIT: Final = 1000
MAX_BOOK_DEPTH: Final = 100

# Basic tier; separate buckets for reads and writes.
BASIC_READS_PER_S: Final = 20.0
BASIC_WRITES_PER_S: Final = 10.0

QUOTE_CURRENCY: Final = "USD"
WHOLE_LOT: Final = Decimal(1)
FRACTIONAL_LOT: Final = Decimal("0.01")
PRICE_PLACES: Final = 6
COUNT_PLACES: Final = 2


class MarketStatus(StrEnum):
    INITIALIZED = "initialized"
    INACTIVE = "inactive"
    ACTIVE = "active"
    CLOSED = "closed"
    DETERMINED = "determined"
    DISPUTED = "disputed"
    AMENDED = "amended"
    FINALIZED = "finalized"


TRADEABLE_MARKET_STATUSES: Final = frozenset({MarketStatus.ACTIVE})


class MarketResult(StrEnum):
    """A market's `result`: empty until it is determined."""

    UNDETERMINED = ""
    YES = "yes"
    NO = "no"
    SCALAR = "scalar"


SETTLEMENT_PRICES: Final = {MarketResult.YES: Decimal(1), MarketResult.NO: Decimal(0)}
"""What a YES contract settles at, by result; only a `finalized` market's result is final."""


class KalshiOrderStatus(StrEnum):
    RESTING = "resting"
    CANCELED = "canceled"
    EXECUTED = "executed"


class BookSide(StrEnum):
    BID = "bid"
    ASK = "ask"


class OutcomeSide(StrEnum):
    YES = "yes"
    NO = "no"


# Our event-contract instrument is the YES contract: buy YES = bid, sell YES = ask.
BOOK_SIDE_FOR: Final = {Side.BUY: BookSide.BID, Side.SELL: BookSide.ASK}
SIDE_FOR: Final = {BookSide.BID: Side.BUY, BookSide.ASK: Side.SELL}
OUTCOME_FOR: Final = {BookSide.BID: OutcomeSide.YES, BookSide.ASK: OutcomeSide.NO}

TIME_IN_FORCE: Final = {
    TimeInForce.GTC: "good_till_canceled",
    TimeInForce.IOC: "immediate_or_cancel",
    TimeInForce.FOK: "fill_or_kill",
}

TERMINAL_ORDER_STATUS: Final = {
    KalshiOrderStatus.CANCELED: OrderStatus.CANCELLED,
    KalshiOrderStatus.EXECUTED: OrderStatus.FILLED,
}
"""`resting` maps to OPEN or PARTIALLY_FILLED depending on the filled count (see parsing)."""


class FeeType(StrEnum):
    QUADRATIC = "quadratic"
    QUADRATIC_WITH_MAKER_FEES = "quadratic_with_maker_fees"
    FLAT = "flat"


class SelfTradePrevention(StrEnum):
    TAKER_AT_CROSS = "taker_at_cross"
    MAKER = "maker"


class Channel(StrEnum):
    TICKER = "ticker"
    ORDERBOOK_DELTA = "orderbook_delta"
    FILL = "fill"

