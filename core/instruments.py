"""Instruments: one canonical id per tradeable thing, with the venue symbols that name it elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from enum import StrEnum

from pydantic import Field, model_validator

from core.types import ONE, ZERO, Frozen, NonNegative, Positive, UtcDatetime


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
    settlement_price: NonNegative | None = None
    """What one unit settled at (an event contract: 1 for a `yes` result, 0 for `no`); None while unsettled."""

    @model_validator(mode="after")
    def _check_prefix(self) -> Instrument:
        prefix = self.instrument_id.split(":", 1)[0]
        if prefix != self.asset_class.value:
            raise ValueError(f"instrument_id prefix {prefix!r} must equal asset_class {self.asset_class.value!r}")
        if self.asset_class is AssetClass.EVENT_CONTRACT and self.multiplier != 1:
            raise ValueError("event contracts pay 1 per contract: multiplier must be 1")
        if self.settlement_price is not None:
            if self.asset_class is not AssetClass.EVENT_CONTRACT:
                raise ValueError("only event contracts carry a settlement price")
            if self.settlement_price not in (ZERO, ONE):
                raise ValueError(f"an event contract settles at 0 or 1, not {self.settlement_price}")
            if self.tradeable:
                raise ValueError("a settled instrument is not tradeable")
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


DELISTED = "delisted"
"""The status of an instrument that no source lists any more."""


class ListedInstrument(Frozen):
    """One entry of the instrument registry: the merged instrument and the sources whose listing holds it."""

    instrument: Instrument
    listed_by: tuple[str, ...]
    """The base catalog and the connectors whose last successful listing has the id; empty once none has."""


class InstrumentRegistry:
    """The canonical instruments: a base catalog merged with each source's last successful listing.

    Sources are merged by canonical id, the base catalog first, then the sources by name. A source on the
    instrument's own venue supplies its fields (tick, lot, multiplier, expiry, tradeable, status); a source on
    another venue adds its venue symbol. A source whose read failed is simply not applied: its last listing stays.
    An instrument that no source lists any more stays known but not tradeable (status `delisted`), so an order
    for it is refused with that reason rather than as an unknown instrument; one whose settlement was learnt
    (`settle`) stays as its venue reported it, settlement price included.
    """

    def __init__(self, base: Iterable[Instrument], base_source: str) -> None:
        self._base_source = base_source
        self._listings: dict[str, tuple[Instrument, ...]] = {base_source: tuple(base)}
        self._entries: dict[str, ListedInstrument] = {}
        self._merge()

    def restore(self, entries: Iterable[ListedInstrument], sources: Iterable[str]) -> None:
        """Resume from a registry published earlier: what each of `sources` listed then stands as its listing
        until it is read again; every other entry is only remembered (and so delisted if nothing lists it)."""
        wanted = set(sources) - {self._base_source}
        restored: dict[str, list[Instrument]] = {}
        for entry in entries:
            self._entries.setdefault(entry.instrument.instrument_id, entry)
            for source in wanted.intersection(entry.listed_by):
                restored.setdefault(source, []).append(entry.instrument)
        for source, listed in restored.items():
            self._listings.setdefault(source, tuple(listed))
        self._merge()

    def apply(self, source: str, listed: Iterable[Instrument]) -> None:
        """A successful listing of `source`: it replaces that source's previous one."""
        if source == self._base_source:
            raise ValueError(f"{source!r} is the base catalog, which is not re-listed")
        self._listings[source] = tuple(listed)
        self._merge()

    def unsettled_delisted(self, venue: Venue) -> list[str]:
        """The ids of `venue`'s instruments that no source lists any more and whose settlement is not known."""
        return [key for key, entry in self._entries.items() if not entry.listed_by
                and entry.instrument.venue is venue and entry.instrument.settlement_price is None]

    def settle(self, settled: Iterable[Instrument]) -> None:
        """Instruments their venue reported settled: each replaces the unlisted entry of its id (a listed or
        unknown id is left alone: a listing is the newer word)."""
        for instrument in settled:
            if instrument.settlement_price is None:
                raise ValueError(f"{instrument.instrument_id} carries no settlement price")
            entry = self._entries.get(instrument.instrument_id)
            if entry is not None and not entry.listed_by:
                self._entries[instrument.instrument_id] = ListedInstrument(instrument=instrument, listed_by=())

    def entries(self) -> list[ListedInstrument]:
        return list(self._entries.values())

    def catalog(self) -> InstrumentCatalog:
        return InstrumentCatalog([entry.instrument for entry in self._entries.values()])

    def _merge(self) -> None:
        merged: dict[str, tuple[Instrument, tuple[str, ...]]] = {}
        others = sorted(source for source in self._listings if source != self._base_source)
        for source in (self._base_source, *others):
            for instrument in self._listings[source]:
                held = merged.get(instrument.instrument_id)
                if held is None:
                    merged[instrument.instrument_id] = (instrument, (source,))
                    continue
                primary, listed_by = held
                if instrument.venue is primary.venue:  # the venue's own listing: its fields win
                    combined = instrument.model_copy(
                        update={"venue_symbols": {**primary.venue_symbols, **instrument.venue_symbols}})
                else:
                    combined = primary.model_copy(
                        update={"venue_symbols": {**instrument.venue_symbols, **primary.venue_symbols}})
                if source not in listed_by:
                    listed_by = (*listed_by, source)
                merged[instrument.instrument_id] = (combined, listed_by)
        entries = {key: ListedInstrument(instrument=instrument, listed_by=listed_by)
                   for key, (instrument, listed_by) in merged.items()}
        for key, previous in self._entries.items():
            if key in entries:
                continue
            if previous.instrument.settlement_price is not None:  # settled is final
                entries[key] = ListedInstrument(listed_by=(), instrument=previous.instrument)
            else:
                entries[key] = ListedInstrument(listed_by=(), instrument=previous.instrument.model_copy(
                    update={"tradeable": False, "status": DELISTED}))
        self._entries = entries
