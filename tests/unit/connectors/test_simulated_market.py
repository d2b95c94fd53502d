from datetime import timedelta

from connectors.simulated.market import DEFAULT_WALKS, SimulatedMarket, default_catalog
from core.instruments import AssetClass
from tests.kit.builders import T0


def test_same_seed_same_quotes_and_a_different_seed_differs() -> None:
    a, b, c = SimulatedMarket(7), SimulatedMarket(7), SimulatedMarket(8)
    for i in range(50):
        at = T0 + timedelta(seconds=i)
        qa, qb, qc = a.next_round(at), b.next_round(at), c.next_round(at)
        assert qa == qb
    assert qa != qc


def test_every_asset_class_is_covered_and_quotes_respect_ticks_and_bounds() -> None:
    assert {w.instrument.asset_class for w in DEFAULT_WALKS} == set(AssetClass)
    catalog = default_catalog()
    market = SimulatedMarket(1)
    for i in range(500):
        for q in market.next_round(T0 + timedelta(milliseconds=i)):
            instrument = catalog.get(q.instrument_id)
            assert instrument is not None
            assert q.bid < q.ask
            assert instrument.is_on_tick(q.bid) and instrument.is_on_tick(q.ask)
            assert instrument.is_whole_lot(q.bid_size) and q.bid_size > 0
            if instrument.asset_class is AssetClass.EVENT_CONTRACT:
                assert q.bid > 0 and q.ask < 1
