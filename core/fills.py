"""Fills: one execution of (part of) an order, identified by (venue, venue trade id)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from core.accounts import Owner
from core.types import Amount, ExecutionMode, Frozen, Liquidity, NonNegative, Positive, Side, UtcDatetime


class Fill(Frozen):
    schema_version: Literal[1] = 1
    venue: str = Field(min_length=1)
    venue_trade_id: str = Field(min_length=1)
    order_id: str
    trace_id: str
    account_id: str
    owner: Owner
    strategy_id: str
    instrument_id: str
    side: Side
    quantity: Positive
    price: Amount
    fee: NonNegative
    liquidity: Liquidity
    mode: ExecutionMode
    ts: UtcDatetime

    @property
    def dedup_key(self) -> str:
        return f"{self.venue}\x1f{self.venue_trade_id}"
