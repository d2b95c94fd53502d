"""The instrument registry: the base catalog merged with each source's last successful listing."""

from collections.abc import Callable
from decimal import Decimal

import pytest
from pydantic import ValidationError

from core.instruments import DELISTED, AssetClass, Instrument, InstrumentRegistry, ListedInstrument, Venue
from tests.kit.builders import btc, es_future

BTC = "crypto_spot:BTC-USD"
ETH = "crypto_spot:ETH-USD"


def eth(**overrides: object) -> Instrument:
    return btc(instrument_id=ETH, venue_symbols={Venue.COINBASE: "ETH-USD"}, **overrides)


def by_id(registry: InstrumentRegistry) -> dict[str, ListedInstrument]:
    return {entry.instrument.instrument_id: entry for entry in registry.entries()}


def test_registry_when_no_source_listed_then_the_base_catalog() -> None:
    registry = InstrumentRegistry([btc(), es_future()], "simulated")

    assert {i.instrument_id for i in registry.catalog()} == {BTC, "future:ES-202612"}
    assert {e.listed_by for e in registry.entries()} == {("simulated",)}


def test_listing_on_the_instruments_venue_then_its_fields_win_and_symbols_are_kept() -> None:
    registry = InstrumentRegistry([btc(venue_symbols={Venue.SIMULATED: "btc"})], "simulated")

    registry.apply("coinbase", [btc(tick_size=Decimal("0.1"), tradeable=False, status="trading_disabled"), eth()])

    entries = by_id(registry)
    merged = entries[BTC].instrument
    assert (merged.tick_size, merged.tradeable, merged.status) == (Decimal("0.1"), False, "trading_disabled")
    assert merged.venue_symbols == {Venue.SIMULATED: "btc", Venue.COINBASE: "BTC-USD"}
    assert entries[BTC].listed_by == ("simulated", "coinbase")
    assert entries[ETH].listed_by == ("coinbase",)
    assert registry.catalog().get(ETH) == eth()


def test_listing_on_another_venue_then_only_its_symbol_is_added_under_the_canonical_id() -> None:
    registry = InstrumentRegistry([], "simulated")
    registry.apply("coinbase", [btc()])

    registry.apply("ibkr:DU1", [btc(venue=Venue.IBKR, tick_size=Decimal("0.25"),
                                    venue_symbols={Venue.IBKR: "479624278"})])

    merged = by_id(registry)[BTC]
    assert (merged.instrument.venue, merged.instrument.tick_size) == (Venue.COINBASE, Decimal("0.01"))
    assert merged.instrument.venue_symbols == {Venue.COINBASE: "BTC-USD", Venue.IBKR: "479624278"}
    assert merged.listed_by == ("coinbase", "ibkr:DU1")


def test_instrument_no_longer_listed_then_kept_as_delisted_not_tradeable() -> None:
    registry = InstrumentRegistry([], "simulated")
    registry.apply("coinbase", [btc(), eth()])

    registry.apply("coinbase", [btc()])

    gone = by_id(registry)[ETH]
    assert (gone.instrument.tradeable, gone.instrument.status, gone.listed_by) == (False, DELISTED, ())
    assert registry.catalog().get(BTC) == btc()


def test_restore_when_a_source_is_enabled_then_its_published_instruments_stand_until_read_again() -> None:
    published = [ListedInstrument(instrument=btc(), listed_by=("coinbase",)),
                 ListedInstrument(instrument=eth(), listed_by=("kalshi-gone",)),
                 ListedInstrument(instrument=es_future(), listed_by=("simulated",))]
    registry = InstrumentRegistry([es_future()], "simulated")

    registry.restore(published, ["coinbase"])

    entries = by_id(registry)
    assert entries[BTC] == published[0]
    assert (entries[ETH].instrument.status, entries[ETH].listed_by) == (DELISTED, ())
    assert entries["future:ES-202612"] == published[2]
    registry.apply("coinbase", [])
    assert by_id(registry)[BTC].instrument.status == DELISTED


def test_apply_of_the_base_source_is_refused() -> None:
    with pytest.raises(ValueError, match="base catalog"):
        InstrumentRegistry([], "simulated").apply("simulated", [btc()])


def kalshi_market(**overrides: object) -> Instrument:
    fields: dict[str, object] = {
        "instrument_id": "event_contract:KXFEDRATE-26JAN-T4.25", "asset_class": AssetClass.EVENT_CONTRACT,
        "venue": Venue.KALSHI, "quote_currency": "USD", "tick_size": Decimal("0.01"), "lot_size": Decimal(1),
        "venue_symbols": {Venue.KALSHI: "KXFEDRATE-26JAN-T4.25"}}
    return Instrument.model_validate({**fields, **overrides})


@pytest.mark.parametrize("price", ["0", "1"])
def test_a_settled_event_contract_carries_its_settlement_price(price: str) -> None:
    settled = kalshi_market(tradeable=False, status="finalized", settlement_price=Decimal(price))

    assert settled.settlement_price == Decimal(price)
    assert kalshi_market().settlement_price is None


@pytest.mark.parametrize(("instrument", "problem"), [
    (lambda: kalshi_market(tradeable=False, settlement_price=Decimal("0.5")), "settles at 0 or 1"),
    (lambda: kalshi_market(tradeable=False, settlement_price=Decimal(-1)), ">= 0"),
    (lambda: kalshi_market(settlement_price=Decimal(1)), "not tradeable"),
    (lambda: btc(tradeable=False, settlement_price=Decimal(1)), "only event contracts"),
])
def test_a_settlement_price_is_refused_unless_an_untradeable_event_contract_at_0_or_1(
        instrument: Callable[[], Instrument], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        instrument()


def test_a_delisted_instrument_reported_settled_stays_settled_through_later_listings() -> None:
    market = kalshi_market()
    settled = kalshi_market(tradeable=False, status="finalized", settlement_price=Decimal(1))
    registry = InstrumentRegistry([], "simulated")
    registry.apply("kalshi", [market])
    registry.apply("kalshi", [])
    assert registry.unsettled_delisted(Venue.KALSHI) == [market.instrument_id]
    assert registry.unsettled_delisted(Venue.COINBASE) == []

    registry.settle([settled])
    registry.apply("kalshi", [])

    assert registry.catalog().get(market.instrument_id) == settled
    assert registry.unsettled_delisted(Venue.KALSHI) == []


def test_settle_leaves_listed_and_unknown_instruments_alone_and_refuses_an_unsettled_one() -> None:
    registry = InstrumentRegistry([], "simulated")
    registry.apply("kalshi", [kalshi_market()])
    settled = kalshi_market(tradeable=False, status="finalized", settlement_price=Decimal(0))
    other = kalshi_market(instrument_id="event_contract:OTHER", tradeable=False, settlement_price=Decimal(0))

    registry.settle([settled, other])

    assert registry.catalog().get(settled.instrument_id) == kalshi_market()
    assert registry.catalog().get(other.instrument_id) is None
    with pytest.raises(ValueError, match="no settlement price"):
        registry.settle([kalshi_market()])


def test_restore_keeps_a_published_settlement() -> None:
    settled = kalshi_market(tradeable=False, status="finalized", settlement_price=Decimal(1))
    registry = InstrumentRegistry([], "simulated")

    registry.restore([ListedInstrument(instrument=settled, listed_by=())], ["kalshi"])

    assert registry.catalog().get(settled.instrument_id) == settled
