"""Instruments, as the instrument registry's sink writes them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from api.schemas.common import Public
from core.instruments import AssetClass, Venue


class InstrumentPublic(Public):
    instrument_id: str
    """Canonical across venues: `<asset_class>:<symbol>`."""
    asset_class: AssetClass
    venue: Venue
    """The venue orders for it are routed to."""
    quote_currency: str
    tick_size: Decimal
    lot_size: Decimal
    multiplier: Decimal
    expiry: datetime | None
    venue_symbols: dict[str, str]
    """Venue -> the venue's own symbol (Kalshi ticker, Coinbase product id, IBKR conid)."""
    tradeable: bool
    status: str
    """The venue's word for the instrument's state; `delisted` once no source lists it any more."""
    settlement_price: Decimal | None
    """What one unit settled at (an event contract: 1 for `yes`, 0 for `no`); None while unsettled."""
    listed_by: list[str]
    """The sources whose latest listing holds it: `simulated` (the configured catalog) and connectors."""
    updated_at: datetime
