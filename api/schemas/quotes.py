"""Latest top-of-book quotes, as kept in Redis by the tick sink."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from api.schemas.common import Public


class QuotePublic(Public):
    instrument_id: str
    bid: Decimal
    ask: Decimal
    bid_size: Decimal
    ask_size: Decimal
    ts: datetime
    seq: int
