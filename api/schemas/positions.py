"""Positions, as the portfolio sink writes them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from api.schemas.common import Public
from core.types import ExecutionMode


class PositionPublic(Public):
    account_id: str
    instrument_id: str
    org_id: str
    user_id: str
    mode: ExecutionMode
    quantity: Decimal
    """Signed: positive long, negative short."""
    average_price: Decimal
    multiplier: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal
    trace_id: str | None
    updated_at: datetime
