from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.errors import (
    AuthenticationError,
    DuplicateClientOrderIdError,
    MalformedResponseError,
    RateLimitedError,
    UnsupportedError,
    VenueClientError,
    VenueServerError,
)
from connectors.kalshi.constants import KalshiOrderStatus, MarketResult, SelfTradePrevention
from connectors.kalshi.parsing import (
    CrossedBookError,
    FillCursor,
    check_price,
    decode,
    decode_cursor,
    encode_cursor,
    fee_model,
    format_count,
    format_price,
    instrument_id_for,
    new_fills,
    order_body,
    order_status,
    placed_status,
    quote_from_book,
    quote_from_market,
    read_error,
    tick_size,
    ticker_for,
    to_balance,
    to_fill,
    to_instrument,
    to_position,
    to_ticker_update,
    to_trade,
    to_venue_order,
    yes_book,
)
from connectors.kalshi.schemas import (
    BalanceBody,
    CreateOrderResponse,
    Event,
    Fill,
    Market,
    MarketPosition,
    Order,
    OrderbookEnvelope,
    PriceRange,
    Series,
    Trade,
    WsEnvelope,
    WsFill,
    WsOrderbookDelta,
    WsOrderbookSnapshot,
    WsTicker,
)
from core.accounts import Owner
from core.fees import KalshiFees
from core.instruments import AssetClass, Venue
from core.orders import IntentSource, OrderIntent, OrderStatus, new_order
from core.orders import Order as CoreOrder
from core.types import ExecutionMode, Liquidity, OrderType, Side, TimeInForce
from core.venue import VenueFill
from tests.unit.connectors.kalshi.conftest import Payload

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
D = Decimal


def core_order(side: Side = Side.BUY, quantity: str = "10", price: str | None = "0.56",
               order_type: OrderType = OrderType.LIMIT, tif: TimeInForce = TimeInForce.GTC) -> CoreOrder:
    intent = OrderIntent(
        trace_id=uuid.uuid4().hex, account_id="live-1", owner=Owner(org_id="acme", user_id="alice"),
        strategy_id="s", idempotency_key="k", instrument_id="event_contract:KXHIGHNY-26JAN05-T60", side=side,
        order_type=order_type, quantity=D(quantity), limit_price=D(price) if price else None, time_in_force=tif,
        requested_mode=ExecutionMode.LIVE, source=IntentSource.API, created_at=T0)
    return new_order(intent, "APPROVED", "", T0)


def ranges(*triples: tuple[str, str, str]) -> tuple[PriceRange, ...]:
    return tuple(PriceRange.model_validate({"start": a, "end": b, "step": c}) for a, b, c in triples)


SUB_PENNY = ranges(("0.0000", "0.1000", "0.0010"), ("0.1000", "0.9000", "0.0100"), ("0.9000", "1.0000", "0.0010"))


# --- Wire format: dollars and fixed-point counts ----------------------------------------------------------------

def test_dollar_and_fp_strings_become_decimals(payload: Payload) -> None:
    market = decode(Market, payload("market"), "market")

    assert market.yes_bid_dollars == D("0.42") and isinstance(market.yes_bid_dollars, Decimal)
    assert market.yes_ask_size_fp == D("30.00")
    assert market.close_time == datetime(2026, 1, 6, 4, 59, tzinfo=UTC)


@pytest.mark.parametrize(("field", "value"), [("yes_bid_dollars", 0.42), ("yes_bid_size_fp", 25.0),
                                              ("yes_bid_dollars", 42), ("last_price_dollars", None)])
def test_a_number_where_a_decimal_string_belongs_is_malformed(payload: Payload, field: str, value: object) -> None:
    body = payload("market")
    body[field] = value

    with pytest.raises(MalformedResponseError) as caught:
        decode(Market, body, "market")

    assert field in str(caught.value) and f'"{field}":' in caught.value.raw_body


@pytest.mark.parametrize("value", ["1.5", "-0.1", "0.1234567", "abc", "1e-2"])
def test_a_price_outside_the_unit_interval_or_format_is_malformed(payload: Payload, value: str) -> None:
    body = payload("market")
    body["yes_ask_dollars"] = value

    with pytest.raises(MalformedResponseError):
        decode(Market, body, "market")


def test_missing_required_fields_and_unknown_statuses_are_malformed(payload: Payload) -> None:
    missing = payload("market")
    del missing["price_ranges"]
    unknown = payload("market")
    unknown["status"] = "halted"

    for body in (missing, unknown):
        with pytest.raises(MalformedResponseError):
            decode(Market, body, "market")


def test_a_float_fee_multiplier_is_accepted_as_its_shortest_decimal(payload: Payload) -> None:
    # Kalshi documents fee_multiplier as a JSON double: the one number not refused.
    assert decode(Series, payload("series"), "series").fee_multiplier == D("0.5")


def test_malformed_raw_body_is_redacted() -> None:
    with pytest.raises(MalformedResponseError) as caught:
        decode(BalanceBody, {"balance_dollars": 1.5, "signature": "c2lnbmF0dXJl"}, "balance")

    assert "c2lnbmF0dXJl" not in caught.value.raw_body and '"balance_dollars":1.5' in caught.value.raw_body


# --- Instruments ------------------------------------------------------------------------------------------------

def test_market_becomes_a_canonical_event_contract(payload: Payload) -> None:
    instrument = to_instrument(decode(Market, payload("market"), "market"))

    assert instrument.instrument_id == "event_contract:KXHIGHNY-26JAN05-T60"
    assert instrument.asset_class is AssetClass.EVENT_CONTRACT and instrument.venue is Venue.KALSHI
    assert (instrument.tick_size, instrument.lot_size, instrument.multiplier) == (D("0.01"), D(1), D(1))
    assert instrument.expiry == datetime(2026, 1, 6, 4, 59, tzinfo=UTC)
    assert instrument.venue_symbols == {Venue.KALSHI: "KXHIGHNY-26JAN05-T60"} and instrument.tradeable


@pytest.mark.parametrize(("status", "tradeable"), [("active", True), ("inactive", False), ("closed", False),
                                                   ("initialized", False), ("determined", False)])
def test_tradeable_follows_the_market_status(payload: Payload, status: str, tradeable: bool) -> None:
    body = payload("market")
    body["status"] = status

    assert to_instrument(decode(Market, body, "market")).tradeable is tradeable


@pytest.mark.parametrize(("result", "price"), [("yes", D(1)), ("no", D(0))])
def test_a_finalized_market_settles_at_one_for_yes_and_zero_for_no(payload: Payload, result: str,
                                                                    price: Decimal) -> None:
    body = payload("market")
    body["status"], body["result"] = "finalized", result

    instrument = to_instrument(decode(Market, body, "market"))

    assert (instrument.settlement_price, instrument.tradeable, instrument.status) == (price, False, "finalized")


@pytest.mark.parametrize("status", ["active", "closed", "determined"])
def test_a_result_before_the_market_is_finalized_is_no_settlement(payload: Payload, status: str) -> None:
    body = payload("market")
    body["status"], body["result"] = status, "yes"

    assert to_instrument(decode(Market, body, "market")).settlement_price is None


def test_a_missing_result_is_an_unsettled_market(payload: Payload) -> None:
    body = payload("market")
    body.pop("result", None)

    assert decode(Market, body, "market").result is MarketResult.UNDETERMINED


def test_a_finalized_market_without_a_yes_or_no_result_is_refused(payload: Payload) -> None:
    body = payload("market")
    body["status"], body["result"] = "finalized", ""
    with pytest.raises(MalformedResponseError, match="finalized without a result"):
        to_instrument(decode(Market, body, "market"))

    body["result"] = "scalar"
    with pytest.raises(UnsupportedError, match="scalar"):
        to_instrument(decode(Market, body, "market"))

    body["result"] = "void"
    with pytest.raises(MalformedResponseError, match="result"):
        decode(Market, body, "market")


def test_fractional_markets_trade_in_hundredths(payload: Payload) -> None:
    body = payload("market")
    body["fractional_trading_enabled"] = True

    assert to_instrument(decode(Market, body, "market")).lot_size == D("0.01")


def test_several_ranges_give_the_finest_step_as_tick_and_prices_are_checked_per_range() -> None:
    assert tick_size(SUB_PENNY) == D("0.001")
    for valid in ("0.001", "0.095", "0.1", "0.55", "0.9", "0.955", "0.999"):
        check_price(D(valid), SUB_PENNY)
    for invalid in ("0.505", "0.0005", "1.001"):
        with pytest.raises(ValueError, match="not a valid tick"):
            check_price(D(invalid), SUB_PENNY)


def test_unusable_price_ranges_are_malformed(payload: Payload) -> None:
    body = payload("market")
    body["price_ranges"] = [{"start": "0.0100", "end": "0.9900", "step": "0.0300"}]

    with pytest.raises(MalformedResponseError, match="invalid price range"):
        to_instrument(decode(Market, body, "market"))


def test_instrument_ids_round_trip_and_other_ids_are_refused() -> None:
    assert ticker_for(instrument_id_for("KXFEDRATE-26JAN-T4.25")) == "KXFEDRATE-26JAN-T4.25"
    for foreign in ("crypto_spot:BTC-USD", "event_contract:", "KXHIGHNY"):
        with pytest.raises(UnsupportedError):
            ticker_for(foreign)


# --- Books and quotes -------------------------------------------------------------------------------------------

def test_yes_book_best_first_with_asks_from_no_bids(payload: Payload) -> None:
    levels = decode(OrderbookEnvelope, payload("orderbook"), "orderbook").orderbook_fp

    book = yes_book("event_contract:X", levels.yes_dollars or (), levels.no_dollars or (), ts=T0)

    assert [(b.price, b.size) for b in book.bids] == [(D("0.42"), D(25)), (D("0.41"), D(50)), (D("0.40"), D(100))]
    assert [(a.price, a.size) for a in book.asks] == [(D("0.44"), D(30)), (D("0.45"), D(80))]


def test_yes_book_does_not_rely_on_the_venues_ordering_and_merges_and_drops_empty_levels() -> None:
    book = yes_book("event_contract:X", [(D("0.42"), D(1)), (D("0.40"), D(2)), (D("0.42"), D(3)), (D("0.30"), D(0))],
                    [(D("0.50"), D(4)), (D("0.56"), D(5))], ts=T0, depth=1)

    assert [(b.price, b.size) for b in book.bids] == [(D("0.42"), D(4))]
    assert [(a.price, a.size) for a in book.asks] == [(D("0.44"), D(5))]


def test_a_crossed_book_is_refused() -> None:
    with pytest.raises(CrossedBookError):
        yes_book("event_contract:X", [(D("0.45"), D(1))], [(D("0.56"), D(1))], ts=T0)


def test_quote_of_an_empty_side_is_zero_bid_or_one_ask_with_no_size() -> None:
    quote = quote_from_book(yes_book("event_contract:X", [], [(D("0.60"), D(2))], ts=T0), seq=3)

    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size, quote.seq) == (D(0), D(0), D("0.40"), D(2), 3)


def test_quote_from_the_market_when_polling(payload: Payload) -> None:
    market = decode(Market, payload("market"), "market")

    quote = quote_from_market(market, T0, seq=1)

    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (D("0.42"), D("0.44"), D(25), D(30))
    assert quote.instrument_id == "event_contract:KXHIGHNY-26JAN05-T60"


def test_streamed_book_messages_decode(payload: Payload) -> None:
    snapshot_envelope = decode(WsEnvelope, payload("ws_orderbook_snapshot"), "ws")
    snapshot = decode(WsOrderbookSnapshot, snapshot_envelope.msg, "snapshot")
    delta = decode(WsOrderbookDelta, payload("ws_orderbook_delta")["msg"], "delta")

    assert snapshot_envelope.seq == 2 and snapshot.yes_dollars_fp[1] == (D("0.22"), D(333))
    assert (delta.price_dollars, delta.delta_fp, delta.side.value) == (D("0.96"), D(-54), "yes")
    assert decode(WsOrderbookSnapshot, {"market_ticker": "X"}, "snapshot").no_dollars_fp == ()


def test_ticker_message_becomes_a_ticker_update(payload: Payload) -> None:
    update = to_ticker_update(decode(WsTicker, payload("ws_ticker")["msg"], "ticker"))

    assert (update.last_price, update.yes_bid, update.yes_ask, update.volume) == (D("0.48"), D("0.45"), D("0.53"),
                                                                                  D(33896))
    assert update.ts == datetime(2022, 11, 22, 20, 44, 1, tzinfo=UTC)


def test_public_trade_direction_comes_from_the_taker_book_side() -> None:
    trade = to_trade(decode(Trade, {"trade_id": "t", "ticker": "X", "count_fp": "3.00", "yes_price_dollars": "0.36",
                                    "taker_outcome_side": "no", "taker_book_side": "ask",
                                    "created_time": "2026-01-05T14:30:00Z"}, "trade"))

    assert (trade.taker_side, trade.price, trade.quantity) == (Side.SELL, D("0.36"), D(3))


# --- Account ----------------------------------------------------------------------------------------------------

def test_balance_available_is_cash_and_total_adds_positions() -> None:
    balance = to_balance(decode(BalanceBody, {"balance": 100050, "balance_dollars": "1000.5000",
                                              "portfolio_value": 2500, "updated_ts": 1}, "balance"))

    assert (balance.currency, balance.available, balance.total) == ("USD", D("1000.5"), D("1025.5"))


def test_position_is_signed_negative_for_no() -> None:
    position = to_position(decode(MarketPosition, {
        "ticker": "X", "position_fp": "-12.00", "market_exposure_dollars": "4.8000",
        "realized_pnl_dollars": "0.0000", "fees_paid_dollars": "0.1000"}, "position"))

    assert (position.instrument_id, position.quantity) == ("event_contract:X", D(-12))


@pytest.mark.parametrize(("status", "filled", "expected"), [
    ("resting", "0.00", OrderStatus.OPEN), ("resting", "1.00", OrderStatus.PARTIALLY_FILLED),
    ("canceled", "1.00", OrderStatus.CANCELLED), ("executed", "3.00", OrderStatus.FILLED),
])
def test_order_statuses_map_to_core_statuses(payload: Payload, status: str, filled: str,
                                             expected: OrderStatus) -> None:
    body = payload("order")
    body.update(status=status, fill_count_fp=filled)

    order = to_venue_order(decode(Order, body, "order"))

    assert order.status is expected and order.venue_status == status
    assert order_status(KalshiOrderStatus(status), D(filled)) is expected


def test_an_unknown_order_status_raises(payload: Payload) -> None:
    body = payload("order")
    body["status"] = "pending"

    with pytest.raises(MalformedResponseError):
        decode(Order, body, "order")


def test_venue_order_side_quantities_and_price(payload: Payload) -> None:
    order = to_venue_order(decode(Order, payload("order"), "order"))

    assert (order.side, order.quantity, order.filled_quantity, order.limit_price) == (Side.SELL, D(3), D(1),
                                                                                      D("0.61"))
    assert order.client_order_id == "ord_0123456789abcdef0123456789ab"


def test_contradictory_direction_fields_are_malformed(payload: Payload) -> None:
    body = payload("order")
    body["outcome_side"] = "yes"  # with book_side ask

    with pytest.raises(MalformedResponseError, match="contradicts"):
        to_venue_order(decode(Order, body, "order"))


def test_rest_fill_becomes_a_venue_fill_with_its_fee(payload: Payload) -> None:
    fill = to_fill(decode(Fill, payload("fill"), "fill"), "ord_known")

    assert fill == VenueFill(
        venue=Venue.KALSHI, venue_trade_id="d91bc706-ee49-470d-82d8-11418bda6fed",
        venue_order_id="ee587a1c-8b87-4dcf-b721-9f6f790619fa", client_order_id="ord_known",
        instrument_id="event_contract:KXHIGHNY-26JAN05-T60", side=Side.BUY, quantity=D(278), price=D("0.75"),
        fee=D("3.65"), liquidity=Liquidity.TAKER, ts=datetime(2026, 1, 5, 14, 31, 7, tzinfo=UTC))


def test_rest_fill_without_created_time_uses_the_legacy_ts(payload: Payload) -> None:
    body = payload("fill")
    del body["created_time"]
    body["ts"] = 1767623467

    assert to_fill(decode(Fill, body, "fill"), None).ts == datetime(2026, 1, 5, 14, 31, 7, tzinfo=UTC)
    del body["ts"]
    with pytest.raises(MalformedResponseError, match="no time"):
        to_fill(decode(Fill, body, "fill"), None)


def test_streamed_fill_becomes_a_venue_fill(payload: Payload) -> None:
    fill = to_fill(decode(WsFill, payload("ws_fill")["msg"], "fill"), None)

    assert (fill.side, fill.liquidity, fill.fee, fill.client_order_id) == (Side.SELL, Liquidity.MAKER, D(0), None)
    assert fill.ts == datetime(2022, 12, 24, 16, 29, 57, tzinfo=UTC)


# --- Fees -------------------------------------------------------------------------------------------------------

def test_fee_model_from_the_series(payload: Payload) -> None:
    series = decode(Series, payload("series"), "series")
    plain_event = decode(Event, {"event_ticker": "KXFEDRATE-26JAN", "series_ticker": "KXFEDRATE"}, "event")

    assert fee_model(series, plain_event) == KalshiFees(charges_makers=True, fee_multiplier=D("0.5"))


def test_fee_model_takes_the_events_override(payload: Payload) -> None:
    series = decode(Series, payload("series"), "series")
    event = decode(Event, payload("event"), "event")

    assert fee_model(series, event) == KalshiFees(charges_makers=False, fee_multiplier=D("2.0"))


def test_flat_fee_series_is_unsupported_and_unknown_fee_types_are_malformed(payload: Payload) -> None:
    body = payload("series")
    body["fee_type"] = "flat"
    event = decode(Event, {"event_ticker": "E", "series_ticker": "KXFEDRATE"}, "event")

    with pytest.raises(UnsupportedError):
        fee_model(decode(Series, body, "series"), event)
    body["fee_type"] = "progressive"
    with pytest.raises(MalformedResponseError):
        decode(Series, body, "series")


# --- Orders -----------------------------------------------------------------------------------------------------

def test_order_body_in_the_v2_shape() -> None:
    order = core_order()

    body = order_body(order, "KXHIGHNY-26JAN05-T60", SelfTradePrevention.TAKER_AT_CROSS)

    assert body == {"ticker": "KXHIGHNY-26JAN05-T60", "side": "bid", "count": "10.00", "price": "0.5600",
                    "time_in_force": "good_till_canceled", "self_trade_prevention_type": "taker_at_cross",
                    "client_order_id": order.client_order_id}


@pytest.mark.parametrize(("side", "tif", "book_side", "kalshi_tif"), [
    (Side.SELL, TimeInForce.IOC, "ask", "immediate_or_cancel"), (Side.BUY, TimeInForce.FOK, "bid", "fill_or_kill"),
])
def test_order_body_maps_side_and_time_in_force(side: Side, tif: TimeInForce, book_side: str,
                                                kalshi_tif: str) -> None:
    body = order_body(core_order(side=side, tif=tif), "X", SelfTradePrevention.MAKER)

    assert (body["side"], body["time_in_force"], body["self_trade_prevention_type"]) == (book_side, kalshi_tif,
                                                                                         "maker")


def test_market_orders_and_day_orders_are_unsupported() -> None:
    for order in (core_order(order_type=OrderType.MARKET, price=None), core_order(tif=TimeInForce.DAY)):
        with pytest.raises(UnsupportedError):
            order_body(order, "X", SelfTradePrevention.TAKER_AT_CROSS)


def test_prices_and_counts_are_fixed_point_strings() -> None:
    assert (format_price(D("0.56")), format_price(D("0.955")), format_price(D("0.123456"))) == (
        "0.5600", "0.9550", "0.123456")
    assert (format_count(D(10)), format_count(D("2.5")), format_count(D("1E+1"))) == ("10.00", "2.50", "10.00")
    for formatter, value in ((format_price, "0.1234567"), (format_price, "1"), (format_count, "0.001")):
        with pytest.raises(UnsupportedError):
            formatter(D(value))


@pytest.mark.parametrize(("filled", "remaining", "expected"), [
    ("0.00", "10.00", OrderStatus.OPEN), ("4.00", "6.00", OrderStatus.PARTIALLY_FILLED),
    ("10.00", "0.00", OrderStatus.FILLED), ("0.00", "0.00", OrderStatus.CANCELLED),
])
def test_placed_status_from_the_create_answer(payload: Payload, filled: str, remaining: str,
                                              expected: OrderStatus) -> None:
    body = payload("create_order_response")
    body.update(fill_count=filled, remaining_count=remaining)

    assert placed_status(decode(CreateOrderResponse, body, "create")) is expected


# --- Errors -----------------------------------------------------------------------------------------------------

def test_error_bodies_flat_and_nested_are_both_read(payload: Payload) -> None:
    flat = read_error(400, payload("error_flat"))
    nested = read_error(401, payload("error_nested"))

    assert type(flat) is VenueClientError and flat.code == "invalid_parameters" and "step 0.01" in str(flat)
    assert isinstance(nested, AuthenticationError) and nested.code == "authentication_error"


@pytest.mark.parametrize(("status", "error_type"), [
    (401, AuthenticationError), (403, AuthenticationError), (409, DuplicateClientOrderIdError),
    (429, RateLimitedError), (500, VenueServerError), (503, VenueServerError), (404, VenueClientError),
])
def test_the_status_decides_the_error_type_whatever_the_body(status: int, error_type: type[Exception]) -> None:
    for body in ({"code": "x", "message": "y"}, {"unexpected": True}, None, "<html>bad gateway</html>"):
        error = read_error(status, body)
        assert type(error) is error_type and error.status == status


def test_rate_limit_has_no_retry_after() -> None:
    error = read_error(429, {"code": "too_many_requests", "message": "slow down"})

    assert isinstance(error, RateLimitedError) and error.retry_after_s is None


# --- Fills cursor -----------------------------------------------------------------------------------------------

def venue_fill(trade_id: str, second: int) -> VenueFill:
    return VenueFill(venue=Venue.KALSHI, venue_trade_id=trade_id, venue_order_id="o", client_order_id=None,
                     instrument_id="event_contract:X", side=Side.BUY, quantity=D(1), price=D("0.5"), fee=D(0),
                     liquidity=Liquidity.MAKER, ts=datetime.fromtimestamp(second, tz=UTC))


def test_new_fills_are_deduplicated_and_oldest_first() -> None:
    fills, cursor = new_fills(None, [venue_fill("b", 101), venue_fill("a", 100), venue_fill("b", 101)])

    assert [f.venue_trade_id for f in fills] == ["a", "b"]
    assert cursor == FillCursor(newest_s=101, seen=(("a", 100), ("b", 101)))
    assert cursor.min_ts == 100


def test_fills_already_reported_are_not_reported_again() -> None:
    _, cursor = new_fills(None, [venue_fill("a", 100), venue_fill("b", 101)])

    fills, after = new_fills(cursor, [venue_fill("b", 101), venue_fill("c", 101), venue_fill("d", 103),
                                      venue_fill("old", 50)])

    assert [f.venue_trade_id for f in fills] == ["c", "d"]
    assert after == FillCursor(newest_s=103, seen=(("d", 103),))


def test_no_new_fills_keep_the_cursor() -> None:
    _, cursor = new_fills(None, [venue_fill("a", 100)])

    assert new_fills(cursor, [venue_fill("a", 100)]) == ((), cursor)
    assert new_fills(None, []) == ((), None)


def test_cursor_round_trips_and_garbage_is_refused() -> None:
    cursor = FillCursor(newest_s=1767623467, seen=(("t-1", 1767623467),))

    assert decode_cursor(encode_cursor(cursor)) == cursor
    for garbage in ("not base64!", "e30=", "bnVsbA=="):
        with pytest.raises(ValueError, match="fills cursor"):
            decode_cursor(garbage)
