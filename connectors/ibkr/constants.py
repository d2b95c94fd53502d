"""Interactive Brokers Client Portal Web API: URLs, endpoint paths, field ids, pacing and the enum tables.

Facts from shared/reference/venues.md and the maintained client `Voyz/ibind`; what neither confirms is marked.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from core.instruments import AssetClass
from core.orders import OrderStatus
from core.types import OrderType, Side, TimeInForce

GATEWAY_BASE_URL: Final = "https://localhost:5000/v1/api/"
GATEWAY_WS_URL: Final = "wss://localhost:5000/v1/api/ws"
OAUTH_BASE_URL: Final = "https://api.ibkr.com/v1/api/"
OAUTH_WS_URL: Final = "wss://api.ibkr.com/v1/api/ws"
PAPER_ACCOUNT_PREFIX: Final = "DU"

# Paths are relative to the base URL, which ends in /v1/api/.
AUTH_STATUS: Final = "/iserver/auth/status"
TICKLE: Final = "/tickle"
ISERVER_ACCOUNTS: Final = "/iserver/accounts"
SECDEF_SEARCH: Final = "/iserver/secdef/search"
SECDEF_INFO: Final = "/iserver/secdef/info"
STOCKS: Final = "/trsrv/stocks"
FUTURES: Final = "/trsrv/futures"
SNAPSHOT: Final = "/iserver/marketdata/snapshot"
PORTFOLIO_ACCOUNTS: Final = "/portfolio/accounts"
LIVE_ORDERS: Final = "/iserver/account/orders"
TRADES: Final = "/iserver/account/trades"


def contract_info_path(conid: str) -> str:
    return f"/iserver/contract/{conid}/info"


def ledger_path(account_id: str) -> str:
    return f"/portfolio/{account_id}/ledger"


def positions_path(account_id: str, page: int) -> str:
    return f"/portfolio/{account_id}/positions/{page}"


def place_orders_path(account_id: str) -> str:
    return f"/iserver/account/{account_id}/orders"


def reply_path(reply_id: str) -> str:
    return f"/iserver/reply/{reply_id}"


def cancel_path(account_id: str, order_id: str) -> str:
    return f"/iserver/account/{account_id}/order/{order_id}"


# Market data field ids.
FIELD_LAST: Final = "31"
FIELD_BID: Final = "84"
FIELD_ASK: Final = "86"
FIELD_BID_SIZE: Final = "88"
FIELD_ASK_SIZE: Final = "85"
QUOTE_FIELDS: Final = (FIELD_LAST, FIELD_BID, FIELD_ASK, FIELD_BID_SIZE, FIELD_ASK_SIZE)

LAST_PRICE_CLOSING: Final = "C"
"""Prefix on field 31: the value is the previous close, not a trade today."""
LAST_PRICE_HALTED: Final = "H"
"""Prefix on field 31: trading in the contract is halted."""

US_STOCK_SIZE_LOT: Final = Decimal(100)
"""IBKR's field list shows bid/ask sizes (88/85) of US stocks divided by 100 (not confirmed still so in 2026:
configurable as IbkrConfig.us_stock_size_lot)."""

WS_MARKET_DATA_TOPIC: Final = "smd"
WS_KEEPALIVE: Final = "tic"

# Pacing: about 10 requests/s per session (not confirmed officially); some endpoints are slower still
# (IBKR's published per-endpoint limits). Exceeding them puts the session's IP in a penalty box for minutes.
REQUESTS_PER_S: Final = 10.0
ENDPOINT_MIN_INTERVAL_S: Final = {
    LIVE_ORDERS: 5.0,
    TRADES: 5.0,
    PORTFOLIO_ACCOUNTS: 5.0,
    ISERVER_ACCOUNTS: 5.0,
    TICKLE: 1.0,
}

POSITIONS_MAX_PAGES: Final = 100
"""Up to 100 positions a page; more pages than this is taken as a paging fault, not as a real portfolio."""
TRADES_MAX_DAYS: Final = 7
"""/iserver/account/trades reaches back at most 7 days."""

SEC_TYPES: Final = {
    AssetClass.EQUITY: "STK",
    AssetClass.OPTION: "OPT",
    AssetClass.FUTURE: "FUT",
    AssetClass.METAL: "CMDTY",
}
ASSET_CLASS_OF_SEC_TYPE: Final = {sec_type: asset_class for asset_class, sec_type in SEC_TYPES.items()}

DEFAULT_TICK_SIZES: Final = {
    AssetClass.EQUITY: Decimal("0.01"),
    AssetClass.OPTION: Decimal("0.01"),
    AssetClass.METAL: Decimal("0.01"),
}
"""/iserver/contract/{conid}/info carries no price increment. Futures ticks differ per product (ES 0.25), so a
future's tick must be configured in its watch-list entry; the others default to these."""

ORDER_STATUSES: Final = {
    # Inactive: received but no longer active because it was rejected or cancelled; Cancelled is reported
    # separately, so Inactive is the rejection.
    "Inactive": OrderStatus.REJECTED,
    "PendingSubmit": OrderStatus.PENDING_SUBMIT,
    # PreSubmitted: accepted and held by IB until its election criteria are met: working, not pending.
    "PreSubmitted": OrderStatus.OPEN,
    "Submitted": OrderStatus.OPEN,
    "Filled": OrderStatus.FILLED,
    "PendingCancel": OrderStatus.PENDING_CANCEL,
    "Cancelled": OrderStatus.CANCELLED,
}

ORDER_SIDES: Final = {Side.BUY: "BUY", Side.SELL: "SELL"}
ORDER_SIDE_OF: Final = {wire: side for side, wire in ORDER_SIDES.items()}
TRADE_SIDES: Final = {"B": Side.BUY, "S": Side.SELL}
TRADE_SIDE_EXPIRED: Final = "X"
"""An option expired: a position change, not an execution at a price."""
ORDER_TYPES: Final = {OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT"}
TIME_IN_FORCE: Final = {TimeInForce.DAY: "DAY", TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC"}
