"""Account exposure from a ledger and marks: what the portfolio risk checks measure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from core.instruments import AssetClass, InstrumentCatalog
from core.ledger import Ledger
from core.types import ZERO


@dataclass(frozen=True)
class Exposure:
    equity: Decimal | None
    """Cash plus marked positions; None when an open position has no mark (unknown, never assumed flat)."""
    gross: Decimal
    by_asset_class: Mapping[AssetClass, Decimal] = field(default_factory=dict)


def measure(ledger: Ledger, marks: Mapping[str, Decimal], catalog: InstrumentCatalog) -> Exposure:
    value = ZERO
    gross = ZERO
    by_class: dict[AssetClass, Decimal] = {}
    unmarked = False
    for position in ledger.positions.values():
        if position.quantity == 0:
            continue
        mark = marks.get(position.instrument_id)
        instrument = catalog.get(position.instrument_id)
        if mark is None or instrument is None:
            unmarked = True
            continue
        position_value = position.market_value(mark)
        value += position_value
        gross += abs(position_value)
        by_class[instrument.asset_class] = by_class.get(instrument.asset_class, ZERO) + abs(position_value)
    return Exposure(equity=None if unmarked else ledger.cash + value, gross=gross, by_asset_class=by_class)
