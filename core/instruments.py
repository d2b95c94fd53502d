"""Instruments: one canonical id per tradeable thing, with the venue symbols that name it elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from core.types import ONE, ZERO, Frozen, Positive, UtcDatetime


class AssetClass(StrEnum):
    EVENT_CONTRACT = "event_contract"
    CRYPTO_SPOT = "crypto_spot"
    EQUITY = "equity"
    OPTION = "option"
    FUTURE = "future"
    METAL = "metal"


class Venue(StrEnum):
    KALSHI = "kalshi"
    COINBASE = "coinbase"
    IBKR = "ibkr"
    SIMULATED = "simulated"


class Instrument(Frozen):
    instrument_id: str = Field(min_length=1, max_length=128, pattern=r"^[a-z_]+:[A-Za-z0-9._\-]+$")
    asset_class: AssetClass
    venue: Venue
    quote_currency: str = Field(min_length=3, max_length=8)
    tick_size: Positive
    lot_size: Positive
    multiplier: Positive = Decimal(1)
    expiry: UtcDatetime | None = None
    venue_symbols: dict[Venue, str] = Field(default_factory=dict)
    tradeable: bool = True
    status: str = Field(default="", max_length=64)
    """The venue's word for the instrument's state (`active`, `closed`, `trading_disabled`, `delisted`...), which
    says why it is not tradeable; empty when the source gives none."""

    @model_validator(mode="after")
    def _check_prefix(self) -> Instrument:
        prefix = self.instrument_id.split(":", 1)[0]
        if prefix != self.asset_class.value:
            raise ValueError(f"instrument_id prefix {prefix!r} must equal asset_class {self.asset_class.value!r}")
        if self.asset_class is AssetClass.EVENT_CONTRACT and self.multiplier != 1:
            raise ValueError("event contracts pay 1 per contract: multiplier must be 1")
        return self

    def is_on_tick(self, price: Decimal) -> bool:
        return (price / self.tick_size) % ONE == ZERO

    def is_whole_lot(self, quantity: Decimal) -> bool:
        return (quantity / self.lot_size) % ONE == ZERO


class InstrumentCatalog:
    """Read-only lookup of instruments by canonical id."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self._by_id = {i.instrument_id: i for i in instruments}
        if len(self._by_id) != len(instruments):
            raise ValueError("duplicate instrument_id in catalog")

    def get(self, instrument_id: str) -> Instrument | None:
        return self._by_id.get(instrument_id)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)
