"""Market data records."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from core.types import Frozen, NonNegative, Side, UtcDatetime


class Quote(Frozen):
    """Top of book for one instrument. `seq` increases per instrument and makes replays deterministic."""

    schema_version: Literal[1] = 1
    instrument_id: str = Field(min_length=1)
    bid: NonNegative
    ask: NonNegative
    bid_size: NonNegative
    ask_size: NonNegative
    ts: UtcDatetime
    seq: int = Field(ge=0)

    @model_validator(mode="after")
    def _not_crossed(self) -> Quote:
        if self.bid > self.ask:
            raise ValueError(f"crossed quote: bid {self.bid} > ask {self.ask}")
        return self

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    def touch(self, side: Side) -> Decimal:
        """The price a marketable order on `side` trades at: the ask for a buy, the bid for a sell."""
        return self.ask if side is Side.BUY else self.bid

    def touch_size(self, side: Side) -> Decimal:
        return self.ask_size if side is Side.BUY else self.bid_size
