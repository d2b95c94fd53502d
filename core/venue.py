"""What a venue reports, in the core's terms: the vocabulary shared by connectors, reconciliation and shadow mode."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from core.instruments import AssetClass, Venue
from core.orders import OrderStatus
from core.types import (
    Amount,
    ExecutionMode,
    Frozen,
    Liquidity,
    NonNegative,
    OrderType,
    Positive,
    Side,
    TimeInForce,
    UtcDatetime,
)


class MarketDataMode(StrEnum):
    STREAMING = "streaming"
    POLLING = "polling"


class Capabilities(Frozen):
    venue: Venue
    asset_classes: frozenset[AssetClass]
    order_types: frozenset[OrderType]
    time_in_force: frozenset[TimeInForce]
    streaming_market_data: bool
    streaming_fills: bool
    fractional_quantities: bool
    fallbacks: tuple[str, ...] = ()
    """Declared degraded modes, e.g. `market_data: REST polling while the websocket is down`."""


class ConnectorHealth(Frozen):
    venue: Venue
    reachable: bool
    authenticated: bool
    market_data_mode: MarketDataMode
    latency_ms: float | None
    detail: str = ""
    checked_at: UtcDatetime


class ConnectorState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    """Serving, but through a declared fallback or with a failing read (see `problems`)."""
    DOWN = "down"
    """Unreachable, refusing our credentials, or its health could not be read."""


REST_POLLING = "rest-polling"
"""The fallback in use while a market data websocket is down (Capabilities.fallbacks declares it)."""


class ConnectorStatus(Frozen):
    """One connector's health as the worker last checked it, for operators (`/health`). Free of secrets."""

    schema_version: Literal[1] = 1
    connector: str
    venue: Venue
    state: ConnectorState
    reachable: bool
    authenticated: bool
    market_data_mode: MarketDataMode | None
    """None when the health check itself failed."""
    fallback: str | None
    latency_ms: float | None
    detail: str
    problems: tuple[str, ...]
    """What is failing now (`what: error`), e.g. the instruments read or the health check."""
    last_error: str
    last_error_at: UtcDatetime | None
    checked_at: UtcDatetime


def connector_status(connector: str, venue: Venue, health: ConnectorHealth | None, problems: Sequence[str],
                     last_error: tuple[str, datetime] | None, at: datetime) -> ConnectorStatus:
    """Down when the health check failed or the venue is unreachable or refuses us; degraded when a fallback is
    in use or a read is failing; ok otherwise."""
    fallback = REST_POLLING if health is not None and health.market_data_mode is MarketDataMode.POLLING else None
    if health is None or not health.reachable or not health.authenticated:
        state = ConnectorState.DOWN
    elif fallback is not None or problems:
        state = ConnectorState.DEGRADED
    else:
        state = ConnectorState.OK
    return ConnectorStatus(
        connector=connector, venue=venue, state=state, reachable=health is not None and health.reachable,
        authenticated=health is not None and health.authenticated,
        market_data_mode=health.market_data_mode if health else None, fallback=fallback,
        latency_ms=health.latency_ms if health else None, detail=health.detail if health else "",
        problems=tuple(problems), last_error=last_error[0] if last_error else "",
        last_error_at=last_error[1] if last_error else None, checked_at=at)


class Balance(Frozen):
    currency: str
    total: Amount
    available: Amount


class VenuePosition(Frozen):
    instrument_id: str
    venue_symbol: str
    quantity: Amount
    """Signed, positive long."""
    average_price: Amount | None = None


class VenueOrder(Frozen):
    venue_order_id: str
    client_order_id: str | None
    instrument_id: str
    side: Side
    quantity: Positive
    filled_quantity: NonNegative
    limit_price: Amount | None
    status: OrderStatus
    venue_status: str
    """The venue's own word for the status, kept for operators."""


class BookLevel(Frozen):
    price: Amount
    size: NonNegative


class OrderBook(Frozen):
    instrument_id: str
    bids: tuple[BookLevel, ...]
    """Best first."""
    asks: tuple[BookLevel, ...]
    """Best first."""
    ts: UtcDatetime
    seq: int | None = None


class VenueFill(Frozen):
    venue: Venue
    venue_trade_id: str = Field(min_length=1)
    venue_order_id: str
    client_order_id: str | None
    instrument_id: str
    side: Side
    quantity: Positive
    price: Amount
    fee: NonNegative
    liquidity: Liquidity
    ts: UtcDatetime


class FillPage(Frozen):
    fills: tuple[VenueFill, ...]
    cursor: str | None
    """Pass back to get the fills after these; None when the venue gave no cursor."""


class PlaceResult(Frozen):
    venue_order_id: str
    client_order_id: str
    status: OrderStatus
    recovered: bool = False
    """True when the venue already had this client order id (a retry whose first answer was lost) and the
    existing order was looked up instead of creating a second one."""
    venue_response: dict[str, object] = Field(default_factory=dict)
    """The venue's answer, secrets removed."""


class LiveWriteAuthorization(Frozen):
    """Issued only by the execution router after the live gate passed, for one order. Connectors refuse a write
    without one that names the order they are asked to place or cancel."""

    order_id: str
    client_order_id: str
    effective_mode: ExecutionMode
    issued_at: UtcDatetime
