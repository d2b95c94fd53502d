"""The connector contract every venue implements, and the one shared suite of behaviour around it.

A connector reads (health, instruments, quotes, order book, balances, positions, open orders, fills since a
cursor) and writes (place, cancel). Writes require a `LiveWriteAuthorization` naming the order: only the
execution router issues one, after the live gate passed. A connector never decides a mode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from decimal import Decimal

from connectors.errors import UnsupportedError
from connectors.http import scrubbed
from core.instruments import Instrument, Venue
from core.market import Quote
from core.orders import Order
from core.types import ExecutionMode
from core.venue import (
    Balance,
    Capabilities,
    ConnectorHealth,
    FillPage,
    LiveWriteAuthorization,
    OrderBook,
    PlaceResult,
    VenueOrder,
    VenuePosition,
)


class Connector(ABC):
    venue: Venue
    capabilities: Capabilities

    @abstractmethod
    async def health(self) -> ConnectorHealth: ...

    @abstractmethod
    async def instruments(self) -> list[Instrument]: ...

    async def settlements(self, instrument_ids: Sequence[str]) -> list[Instrument]:
        """Those of `instrument_ids` (this venue's, no longer listed) that have settled, each with its settlement
        price. A venue whose instruments never settle has none."""
        return []

    @abstractmethod
    def quotes(self, instrument_ids: Sequence[str]) -> AsyncGenerator[Quote, None]:
        """Top-of-book updates: streamed, or polled when the stream is down (reported by `health`)."""

    @abstractmethod
    async def order_book(self, instrument_id: str, depth: int = 10) -> OrderBook: ...

    @abstractmethod
    async def balances(self) -> list[Balance]: ...

    @abstractmethod
    async def positions(self) -> list[VenuePosition]: ...

    @abstractmethod
    async def open_orders(self) -> list[VenueOrder]: ...

    @abstractmethod
    async def fills_since(self, cursor: str | None) -> FillPage: ...

    async def place_order(self, order: Order, authorization: LiveWriteAuthorization) -> PlaceResult:
        self._check_authorization(order.order_id, order.client_order_id, authorization)
        self.check_supported(order)
        result = await self._place_order(order)
        # Scrubbed here, once for every venue: the answer is recorded on the order, and secrets go no further.
        return result.model_copy(update={"venue_response": scrubbed(result.venue_response)})

    async def cancel_order(self, order: Order, venue_order_id: str, authorization: LiveWriteAuthorization) -> None:
        self._check_authorization(order.order_id, order.client_order_id, authorization)
        await self._cancel_order(venue_order_id)

    @abstractmethod
    async def _place_order(self, order: Order) -> PlaceResult:
        """Place with `order.client_order_id`; a retry re-sends the same id; a venue answer saying the id already
        exists is resolved by looking the order up (PlaceResult.recovered), never by placing again."""

    @abstractmethod
    async def _cancel_order(self, venue_order_id: str) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    def check_supported(self, order: Order) -> None:
        caps = self.capabilities
        if order.order_type not in caps.order_types:
            raise UnsupportedError(self.venue, f"order type {order.order_type.value} is not supported")
        if order.time_in_force not in caps.time_in_force:
            raise UnsupportedError(self.venue, f"time in force {order.time_in_force.value} is not supported")
        if not caps.fractional_quantities and order.quantity != order.quantity.to_integral_value():
            raise UnsupportedError(self.venue, f"fractional quantity {order.quantity} is not supported")

    def _check_authorization(self, order_id: str, client_order_id: str, auth: LiveWriteAuthorization) -> None:
        if (auth.effective_mode is not ExecutionMode.LIVE or auth.order_id != order_id
                or auth.client_order_id != client_order_id):
            raise PermissionError(f"{self.venue.value}: write refused: no live authorization for order {order_id}")


def to_decimal(raw: str | int, field: str) -> Decimal:
    """Venue numbers arrive as strings (or integers); a float here would already have lost precision."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise ValueError(f"{field}: expected a decimal string, got {type(raw).__name__}")
    value = Decimal(raw)
    if not value.is_finite():
        raise ValueError(f"{field}: not a finite number: {raw!r}")
    return value
