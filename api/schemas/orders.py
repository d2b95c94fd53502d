"""Orders: the submission body, the order as the read model holds it, and the answer to a submission."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import Field

from api.schemas.common import DecimalString, Public, RequestModel
from core.accounts import IDENT
from core.orders import OrderStatus
from core.types import ExecutionMode, OrderType, Side, TimeInForce

API_STRATEGY_ID = "api"


class OrderCreate(RequestModel):
    """An order intent from outside. It goes through the same risk gate as a strategy's."""

    account_id: str = Field(pattern=IDENT)
    instrument_id: str = Field(min_length=1, max_length=128)
    side: Side
    order_type: OrderType
    quantity: DecimalString
    limit_price: DecimalString | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    strategy_id: str = Field(default=API_STRATEGY_ID, pattern=IDENT)
    mode: ExecutionMode | None = None
    """Defaults to the account's mode; another mode is rejected by the risk gate, not here."""


class OrderAmend(RequestModel):
    """New values for a working order; what is not given is kept (quantity defaults to what is unfilled)."""

    quantity: DecimalString | None = None
    limit_price: DecimalString | None = None


class FillsSummary(Public):
    count: int
    quantity: Decimal
    fees: Decimal
    last_fill_at: datetime | None


class OrderPublic(Public):
    order_id: str
    client_order_id: str
    trace_id: str
    account_id: str
    org_id: str
    user_id: str
    strategy_id: str
    idempotency_key: str
    intent_fingerprint: str
    instrument_id: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    limit_price: Decimal | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: Decimal
    average_fill_price: Decimal | None
    requested_mode: ExecutionMode
    effective_mode: ExecutionMode | None
    reason_code: str
    reason_detail: str
    venue_response: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    version: int
    fills: FillsSummary


class OrderAccepted(Public):
    """The intent is on its way through risk and the OMS; the order is not in the read model yet."""

    order_id: str
    trace_id: str | None
    """The trace id minted for the intent; absent when this request was a retry of an earlier submission."""
    location: str
