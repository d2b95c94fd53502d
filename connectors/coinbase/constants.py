"""Coinbase Advanced Trade: URLs, endpoints, channels, limits and the venue's vocabulary mapped to ours.

Source: shared/reference/venues.md (Coinbase Advanced Trade, 2026 wire format), cross-read with the official SDK
(coinbase/coinbase-advanced-py) for parameter names. Where venues.md says "not confirmed", the constant says so.
"""

from __future__ import annotations

from typing import Final

from core.orders import OrderStatus
from core.types import Side

REST_URL: Final = "https://api.coinbase.com/api/v3/brokerage"
SANDBOX_REST_URL: Final = "https://api-sandbox.coinbase.com/api/v3/brokerage"
WS_MARKET_URL: Final = "wss://advanced-trade-ws.coinbase.com"
WS_USER_URL: Final = "wss://advanced-trade-ws-user.coinbase.com"

# REST endpoints, relative to the REST base URL.
PRODUCTS: Final = "/products"
PRODUCT_BOOK: Final = "/product_book"
BEST_BID_ASK: Final = "/best_bid_ask"
ACCOUNTS: Final = "/accounts"
ORDERS: Final = "/orders"
ORDERS_BATCH_CANCEL: Final = "/orders/batch_cancel"
ORDERS_HISTORICAL: Final = "/orders/historical/batch"
FILLS: Final = "/orders/historical/fills"
TRANSACTION_SUMMARY: Final = "/transaction_summary"

# JWT (venues.md): issuer "cdp", lifetime 120 s, uri claim "<METHOD> <host><path>" without the query string.
JWT_ISSUER: Final = "cdp"
JWT_LIFETIME_S: Final = 120

# Websocket channels we subscribe to, and the channel name each arrives under in the envelope.
CHANNEL_LEVEL2: Final = "level2"
CHANNEL_TICKER: Final = "ticker"
CHANNEL_MARKET_TRADES: Final = "market_trades"
CHANNEL_HEARTBEATS: Final = "heartbeats"
CHANNEL_USER: Final = "user"
MARKET_CHANNELS: Final = (CHANNEL_LEVEL2, CHANNEL_TICKER, CHANNEL_MARKET_TRADES, CHANNEL_HEARTBEATS)
USER_CHANNELS: Final = (CHANNEL_USER, CHANNEL_HEARTBEATS)
ENVELOPE_L2: Final = "l2_data"
ENVELOPE_TICKER: Final = "ticker"
ENVELOPE_MARKET_TRADES: Final = "market_trades"
ENVELOPE_HEARTBEATS: Final = "heartbeats"
ENVELOPE_SUBSCRIPTIONS: Final = "subscriptions"
ENVELOPE_USER: Final = "user"

# Rate limits: about 30 req/s private and 10 req/s public per venues.md, "not confirmed officially". We stay
# below the private figure by default; the venue's x-ratelimit-* headers then tighten us further.
DEFAULT_REST_RATE_PER_S: Final = 25.0
DEFAULT_REST_BURST: Final = 25.0
HEADER_REMAINING: Final = "x-ratelimit-remaining"
HEADER_RESET: Final = "x-ratelimit-reset"

# Page sizes for cursor-paginated reads.
ACCOUNTS_PAGE_LIMIT: Final = 250
ORDERS_PAGE_LIMIT: Final = 1000
FILLS_PAGE_LIMIT: Final = 1000

# Order statuses (venues.md). UNKNOWN_ORDER_STATUS is documented but names no state: mapping it would be a guess,
# so it is deliberately absent and parsing refuses it like any value outside the documented set.
STATUS_MAP: Final[dict[str, OrderStatus]] = {
    "PENDING": OrderStatus.PENDING_SUBMIT,
    "QUEUED": OrderStatus.PENDING_SUBMIT,
    "OPEN": OrderStatus.OPEN,
    "CANCEL_QUEUED": OrderStatus.PENDING_CANCEL,
    "FILLED": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "EXPIRED": OrderStatus.EXPIRED,
    "FAILED": OrderStatus.REJECTED,
}
# Listing OPEN orders alone: the venue is reported to refuse OPEN combined with other statuses (not confirmed).
OPEN_STATUS_QUERY: Final = "OPEN"

SIDE_MAP: Final[dict[str, Side]] = {"BUY": Side.BUY, "SELL": Side.SELL}
VENUE_SIDE: Final[dict[Side, str]] = {Side.BUY: "BUY", Side.SELL: "SELL"}

# Error codes (gRPC-style, in the `error` field). Typed errors are chosen from the HTTP status first; these sets
# refine it. Coinbase does not document how a reused client_order_id is refused (not confirmed): any of these
# codes, in any of the create-order failure fields, or an HTTP 409, is read as "already exists".
AUTH_ERROR_CODES: Final = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED", "INVALID_API_KEY", "UNAUTHORIZED"})
RATE_LIMIT_ERROR_CODES: Final = frozenset({"RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED"})
DUPLICATE_ORDER_CODES: Final = frozenset({"DUPLICATE_CLIENT_ORDER_ID", "ALREADY_EXISTS"})
# A cancel already in flight for the order is as good as our cancel.
CANCEL_ALREADY_REQUESTED: Final = frozenset({"DUPLICATE_CANCEL_REQUEST"})
