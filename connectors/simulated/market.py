"""Simulated market data. Prices move in whole ticks (integers), so no float ever becomes money.

The same seed and the same timestamps give the same quotes, which makes paper sessions and tests reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from core.instruments import AssetClass, Instrument, InstrumentCatalog, Venue
from core.market import Quote


@dataclass(frozen=True)
class WalkSpec:
    instrument: Instrument
    start_price: Decimal
    volatility_ticks: int
    """Standard deviation of one step, in ticks."""
    spread_ticks: int
    size_lots: int
    floor: Decimal | None = None
    ceiling: Decimal | None = None


def _instrument(instrument_id: str, asset_class: AssetClass, venue: Venue, tick: str, lot: str,
                multiplier: str = "1", symbol: str | None = None) -> Instrument:
    return Instrument(instrument_id=instrument_id, asset_class=asset_class, venue=venue, quote_currency="USD",
                      tick_size=Decimal(tick), lot_size=Decimal(lot), multiplier=Decimal(multiplier),
                      venue_symbols={venue: symbol or instrument_id.split(":", 1)[1]})


DEFAULT_WALKS: tuple[WalkSpec, ...] = (
    WalkSpec(_instrument("event_contract:KXHIGHNY-26NOV30-T60", AssetClass.EVENT_CONTRACT, Venue.KALSHI,
                         "0.01", "1"), Decimal("0.55"), 1, 2, 100, floor=Decimal("0.02"), ceiling=Decimal("0.97")),
    WalkSpec(_instrument("crypto_spot:BTC-USD", AssetClass.CRYPTO_SPOT, Venue.COINBASE, "0.01", "0.0001"),
             Decimal("95000.00"), 800, 100, 5000),
    WalkSpec(_instrument("equity:AAPL", AssetClass.EQUITY, Venue.IBKR, "0.01", "1"), Decimal("230.00"), 3, 2, 300),
    WalkSpec(_instrument("option:AAPL-20261218-C-250", AssetClass.OPTION, Venue.IBKR, "0.01", "1", "100",
                         symbol="AAPL  261218C00250000"), Decimal("5.20"), 1, 5, 20, floor=Decimal("0.05")),
    WalkSpec(_instrument("future:ES-202612", AssetClass.FUTURE, Venue.IBKR, "0.25", "1", "50", symbol="ESZ6"),
             Decimal("6000.00"), 2, 1, 25),
    WalkSpec(_instrument("metal:XAUUSD", AssetClass.METAL, Venue.IBKR, "0.01", "1"), Decimal("2650.00"), 40, 30, 50),
)


def default_catalog() -> InstrumentCatalog:
    return InstrumentCatalog([walk.instrument for walk in DEFAULT_WALKS])


class SimulatedMarket:
    """One quote per instrument per round; each instrument's price is an independent random walk in ticks."""

    def __init__(self, seed: int, walks: tuple[WalkSpec, ...] = DEFAULT_WALKS) -> None:
        self._rng = random.Random(seed)
        self._walks = walks
        self._ticks = [int(w.start_price / w.instrument.tick_size) for w in walks]
        self._seq = 0

    @property
    def instruments(self) -> list[Instrument]:
        return [w.instrument for w in self._walks]

    def next_round(self, at: datetime) -> list[Quote]:
        if at.tzinfo is None:
            raise ValueError("quote timestamps must be timezone-aware")
        at = at.astimezone(UTC)
        self._seq += 1
        quotes = []
        for index, walk in enumerate(self._walks):
            tick = walk.instrument.tick_size
            step = round(self._rng.gauss(0, walk.volatility_ticks))
            ticks = self._ticks[index] + step
            if walk.floor is not None:
                ticks = max(ticks, int(walk.floor / tick))
            if walk.ceiling is not None:
                ticks = min(ticks, int(walk.ceiling / tick) - walk.spread_ticks)
            self._ticks[index] = ticks
            lot = walk.instrument.lot_size
            quotes.append(Quote(
                instrument_id=walk.instrument.instrument_id, bid=ticks * tick, ask=(ticks + walk.spread_ticks) * tick,
                bid_size=self._rng.randint(1, walk.size_lots) * lot,
                ask_size=self._rng.randint(1, walk.size_lots) * lot,
                ts=at, seq=self._seq,
            ))
        return quotes
