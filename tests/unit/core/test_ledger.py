from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.fills import Fill
from core.instruments import AssetClass, Instrument, InstrumentCatalog, Venue
from core.ledger import FillJournal, Ledger, Position, Settlement, settlements_due
from core.types import ExecutionMode, Liquidity, Side
from tests.kit.builders import OWNER, T0, account, btc, es_future


def fill(side: Side, qty: str, price: str, fee: str = "0", trade_id: str = "t1", instrument: str = "i:X",
         mode: ExecutionMode = ExecutionMode.PAPER) -> Fill:
    return Fill(venue="v", venue_trade_id=trade_id, order_id="o", trace_id="0" * 32, account_id="acct-1",
                owner=OWNER, strategy_id="s", instrument_id=instrument, side=side, quantity=Decimal(qty),
                price=Decimal(price), fee=Decimal(fee), liquidity=Liquidity.TAKER, mode=mode, ts=T0)


def test_round_trip_realizes_pnl_and_pays_fees() -> None:
    ledger = Ledger.open(account(cash="1000"))
    ledger = ledger.apply_fill(fill(Side.BUY, "2", "10", "0.5", "t1"), Decimal(1))
    ledger = ledger.apply_fill(fill(Side.SELL, "2", "13", "0.5", "t2"), Decimal(1))
    position = ledger.positions["i:X"]
    assert position.quantity == 0
    assert position.realized_pnl == Decimal(6)
    assert ledger.fees_paid == Decimal(1)
    assert ledger.cash == Decimal(1005)


def test_short_then_flip_long_resets_average_price() -> None:
    ledger = Ledger.open(account())
    ledger = ledger.apply_fill(fill(Side.SELL, "1", "100", trade_id="a"), Decimal(1))
    ledger = ledger.apply_fill(fill(Side.BUY, "3", "90", trade_id="b"), Decimal(1))
    position = ledger.positions["i:X"]
    assert position.quantity == Decimal(2)
    assert position.average_price == Decimal(90)
    assert position.realized_pnl == Decimal(10)


def test_multiplier_scales_pnl_and_cash() -> None:
    ledger = Ledger.open(account(cash="0"))
    ledger = ledger.apply_fill(fill(Side.BUY, "1", "6000", trade_id="a"), Decimal(50))
    ledger = ledger.apply_fill(fill(Side.SELL, "1", "6001", trade_id="b"), Decimal(50))
    assert ledger.positions["i:X"].realized_pnl == Decimal(50)
    assert ledger.cash == Decimal(50)


def test_event_contract_settles_at_one() -> None:
    ledger = Ledger.open(account(cash="100"))
    ledger = ledger.apply_fill(fill(Side.BUY, "10", "0.40", trade_id="a"), Decimal(1))
    ledger = ledger.settle("i:X", Decimal(1), "0" * 32)
    assert ledger.cash == Decimal(106)
    assert ledger.positions["i:X"].realized_pnl == Decimal(6)


def test_snapshot_flags_unmarked_positions() -> None:
    ledger = Ledger.open(account(cash="0")).apply_fill(fill(Side.BUY, "1", "10"), Decimal(1))
    snap = ledger.snapshot({}, T0)
    assert snap.unmarked_instruments == ("i:X",)
    marked = ledger.snapshot({"i:X": Decimal(12)}, T0)
    assert marked.unrealized_pnl == Decimal(2)
    assert marked.equity == Decimal(2)


def test_fill_for_another_mode_cannot_touch_the_ledger() -> None:
    ledger = Ledger.open(account(ExecutionMode.PAPER))
    with pytest.raises(ValueError, match="never mix"):
        ledger.apply_fill(fill(Side.BUY, "1", "1", mode=ExecutionMode.LIVE), Decimal(1))


def test_journal_applies_a_duplicate_fill_once() -> None:
    journal = FillJournal(Ledger.open(account(cash="100")))
    assert journal.apply(fill(Side.BUY, "1", "10", "1"), Decimal(1)) is True
    before = journal.ledger
    assert journal.apply(fill(Side.BUY, "1", "10", "1"), Decimal(1)) is False
    assert journal.ledger == before


prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10_000), places=2)
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1_000), places=3)
fees = st.decimals(min_value=Decimal(0), max_value=Decimal(10), places=2)
fill_lists = st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), quantities, prices, fees,
                                st.sampled_from(["i:A", "i:B"])), min_size=1, max_size=30)


def _fills(raw: list[tuple[Side, Decimal, Decimal, Decimal, str]]) -> list[Fill]:
    return [fill(side, str(q), str(p), str(f), trade_id=f"t{i}", instrument=inst)
            for i, (side, q, p, f, inst) in enumerate(raw)]


@settings(max_examples=200, deadline=None)
@given(fill_lists)
def test_value_is_conserved_except_for_fees(raw: list[tuple[Side, Decimal, Decimal, Decimal, str]]) -> None:
    ledger = Ledger.open(account(cash="1000"))
    marks = {"i:A": Decimal(1), "i:B": Decimal(1)}
    for f in _fills(raw):
        marks[f.instrument_id] = f.price
        before = ledger.snapshot(marks, T0).equity
        ledger = ledger.apply_fill(f, Decimal(1))
        after = ledger.snapshot(marks, T0).equity
        assert after == before - f.fee
    # realized + unrealized - fees is the whole change in equity, at any marks. Cash and equity are exact; the
    # split between realized and unrealized goes through a divided average price (28 significant digits).
    snap = ledger.snapshot({"i:A": Decimal(7), "i:B": Decimal(9)}, T0)
    split = snap.realized_pnl + snap.unrealized_pnl - snap.fees
    assert abs((snap.equity - Decimal(1000)) - split) < Decimal("1e-15")


@settings(max_examples=200, deadline=None)
@given(fill_lists, st.randoms(use_true_random=False))
def test_replay_with_duplicates_in_any_order_gives_the_same_positions(
        raw: list[tuple[Side, Decimal, Decimal, Decimal, str]], rng: object) -> None:
    fills = _fills(raw)
    reference = FillJournal(Ledger.open(account()))
    for f in fills:
        reference.apply(f, Decimal(1))
    replayed = fills + fills[: len(fills) // 2]
    rng.shuffle(replayed)  # type: ignore[attr-defined]
    journal = FillJournal(Ledger.open(account()))
    for f in replayed:
        journal.apply(f, Decimal(1))
    assert journal.ledger.cash == reference.ledger.cash
    assert journal.ledger.fees_paid == reference.ledger.fees_paid
    for instrument, position in reference.ledger.positions.items():
        assert journal.ledger.positions[instrument].quantity == position.quantity


def test_exposure_marks_positions_and_groups_gross_value_by_asset_class() -> None:
    catalog = InstrumentCatalog([btc(), es_future()])
    ledger = Ledger.open(account(cash="1000"))
    ledger = ledger.apply_fill(fill(Side.BUY, "2", "100", instrument="crypto_spot:BTC-USD", trade_id="a"), Decimal(1))
    ledger = ledger.apply_fill(fill(Side.SELL, "1", "6000", instrument="future:ES-202612", trade_id="b"), Decimal(50))
    exposure = ledger.exposure({"crypto_spot:BTC-USD": Decimal(110), "future:ES-202612": Decimal(6010)}, catalog)
    assert exposure.equity == ledger.snapshot({"crypto_spot:BTC-USD": Decimal(110),
                                               "future:ES-202612": Decimal(6010)}, T0).equity
    assert exposure.gross == Decimal(220) + Decimal(300_500)
    assert exposure.by_asset_class == {AssetClass.CRYPTO_SPOT: Decimal(220), AssetClass.FUTURE: Decimal(300_500)}


def test_exposure_has_no_equity_while_an_open_position_has_no_mark() -> None:
    ledger = Ledger.open(account()).apply_fill(fill(Side.BUY, "1", "10"), Decimal(1))
    assert ledger.exposure({}, InstrumentCatalog([])).equity is None


def test_settlements_due_are_the_open_positions_in_settled_instruments() -> None:
    settled = Instrument(instrument_id="event_contract:K-YES", asset_class=AssetClass.EVENT_CONTRACT,
                         venue=Venue.KALSHI, quote_currency="USD", tick_size=Decimal("0.01"), lot_size=Decimal(1),
                         tradeable=False, status="finalized", settlement_price=Decimal(1))
    open_market = settled.model_copy(update={"instrument_id": "event_contract:K-OPEN", "tradeable": True,
                                             "settlement_price": None})
    catalog = InstrumentCatalog([settled, open_market, btc()])
    ledger = Ledger.open(account(cash="100"))
    for trade_id, instrument in enumerate(("event_contract:K-YES", "event_contract:K-OPEN", "crypto_spot:BTC-USD")):
        ledger = ledger.apply_fill(fill(Side.BUY, "10", "0.40", trade_id=str(trade_id), instrument=instrument),
                                   Decimal(1))
    short = Ledger.open(account(account_id="acct-2")).model_copy(update={"positions": {
        "event_contract:K-YES": Position(instrument_id="event_contract:K-YES", quantity=Decimal(-3))}})
    flat = Ledger.open(account(account_id="acct-3"))

    due = settlements_due([ledger, short, flat], catalog)

    assert [(s.account_id, s.instrument_id, s.quantity, s.settlement_price) for s in due] == [
        ("acct-1", "event_contract:K-YES", Decimal(10), Decimal(1)),
        ("acct-2", "event_contract:K-YES", Decimal(-3), Decimal(1))]
    after = ledger.settle("event_contract:K-YES", Decimal(1), "0" * 32)
    assert settlements_due([after], catalog) == []
    assert after.settle("event_contract:K-YES", Decimal(1), "1" * 32) == after  # twice changes nothing


def test_a_settlement_is_confirmed_only_by_the_catalogs_settlement_price() -> None:
    settled = Instrument(instrument_id="event_contract:K-YES", asset_class=AssetClass.EVENT_CONTRACT,
                         venue=Venue.KALSHI, quote_currency="USD", tick_size=Decimal("0.01"), lot_size=Decimal(1),
                         tradeable=False, status="finalized", settlement_price=Decimal(1))
    catalog = InstrumentCatalog([settled])
    genuine = Settlement(account_id="acct-1", instrument_id=settled.instrument_id, quantity=Decimal(5),
                         settlement_price=Decimal(1))
    assert genuine.unconfirmed(catalog) is None
    assert genuine.model_copy(update={"settlement_price": Decimal(0)}).unconfirmed(catalog) == (
        "settlement of event_contract:K-YES at 0 is not what the instrument catalog says (1)")
    assert genuine.unconfirmed(InstrumentCatalog([])) == (
        "settlement of event_contract:K-YES at 1 is not what the instrument catalog says (unknown)")


def test_a_no_result_closes_the_position_at_zero() -> None:
    ledger = Ledger.open(account(cash="100")).apply_fill(fill(Side.BUY, "10", "0.40"), Decimal(1))

    settled = ledger.settle("i:X", Decimal(0), "0" * 32)

    assert (settled.cash, settled.positions["i:X"].quantity) == (Decimal(96), Decimal(0))
    assert settled.positions["i:X"].realized_pnl == Decimal(-4)
