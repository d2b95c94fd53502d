"""Pure parsing of recorded Coinbase payloads into core records, and the mapping tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.coinbase.constants import STATUS_MAP
from connectors.coinbase.parsing import (
    FillCursor,
    balances_from_accounts,
    create_order_body,
    fills_after,
    instrument_id_for,
    instruments_from_products,
    order_book_from_pricebook,
    order_status_for,
    positions_from_balances,
    product_id_for,
    quote_from_pricebook,
    rate_fees_from_summary,
    spot_products_by_base,
    trade_tick,
    venue_fill_from_fill,
    venue_order_from_historical,
    venue_order_from_user_order,
)
from connectors.coinbase.schemas import (
    AccountsResponse,
    BestBidAskResponse,
    CancelResponse,
    CreateOrderResponse,
    Envelope,
    ErrorBody,
    Fill,
    FillsResponse,
    HistoricalOrder,
    L2Event,
    MarketTradesEvent,
    OrdersResponse,
    ProductBookResponse,
    ProductsResponse,
    TickerEvent,
    TransactionSummary,
    UserEvent,
    VenueOrderStatus,
)
from connectors.errors import UnsupportedError
from core.instruments import AssetClass, Venue
from core.orders import OrderStatus
from core.types import Liquidity, OrderType, Side, TimeInForce
from core.venue import Balance, VenueFill
from tests.integration.connectors.contract import live_order

Sample = Callable[[str], Any]


def test_products_become_spot_instruments_with_venue_increments(sample: Sample) -> None:
    response = ProductsResponse.model_validate(sample("products"))
    instruments = {i.instrument_id: i for i in instruments_from_products(response.products)}
    assert set(instruments) == {"crypto_spot:BTC-USD", "crypto_spot:ETH-EUR", "crypto_spot:SHIB-USD"}
    btc = instruments["crypto_spot:BTC-USD"]
    assert (btc.asset_class, btc.venue, btc.quote_currency) == (AssetClass.CRYPTO_SPOT, Venue.COINBASE, "USD")
    assert (btc.tick_size, btc.lot_size) == (Decimal("0.01"), Decimal("0.00000001"))
    assert btc.venue_symbols == {Venue.COINBASE: "BTC-USD"} and btc.tradeable
    # No currency ids: the documented BASE-QUOTE product id gives the quote currency.
    assert instruments["crypto_spot:ETH-EUR"].quote_currency == "EUR"
    assert not instruments["crypto_spot:SHIB-USD"].tradeable
    assert spot_products_by_base(response.products, "USD") == {"BTC": "BTC-USD", "SHIB": "SHIB-USD"}


def test_symbols_round_trip_and_foreign_instruments_are_unsupported() -> None:
    assert product_id_for(instrument_id_for("BTC-USD")) == "BTC-USD"
    for foreign in ("equity:AAPL", "crypto_spot:", "BTC-USD"):
        with pytest.raises(UnsupportedError):
            product_id_for(foreign)


def test_product_book_is_best_first_and_cut_to_depth(sample: Sample) -> None:
    book = order_book_from_pricebook(ProductBookResponse.model_validate(sample("product_book")).pricebook, 2)
    assert [b.price for b in book.bids] == [Decimal("95000.00"), Decimal("94999.50")]
    assert [a.price for a in book.asks] == [Decimal("95001.00"), Decimal("95001.01")]
    assert book.ts == datetime(2026, 3, 2, 14, 5, 6, 123456, tzinfo=UTC)


def test_best_bid_ask_gives_quotes_and_none_for_a_one_sided_book(sample: Sample) -> None:
    books = BestBidAskResponse.model_validate(sample("best_bid_ask")).pricebooks
    quote = quote_from_pricebook(books[0], seq=7)
    assert quote is not None
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size, quote.seq) == (
        Decimal("95000"), Decimal("95001"), Decimal("0.5"), Decimal("0.4"), 7)
    assert quote_from_pricebook(books[1], seq=8) is None


def test_accounts_become_balances_total_is_available_plus_hold(sample: Sample) -> None:
    page = AccountsResponse.model_validate(sample("accounts"))
    assert page.has_next and page.cursor == "789100"
    balances = {b.currency: b for b in balances_from_accounts(page.accounts)}
    assert balances["BTC"] == Balance(currency="BTC", total=Decimal("1.5"), available=Decimal("1.2"))
    assert balances["USD"].total == Decimal("10300.00")


def test_an_amount_in_another_currency_than_its_account_is_refused(sample: Sample) -> None:
    raw = sample("accounts")
    raw["accounts"][0]["hold"]["currency"] = "USD"
    with pytest.raises(ValueError, match="USD amount in a BTC account"):
        balances_from_accounts(AccountsResponse.model_validate(raw).accounts)


def test_positions_are_non_zero_base_balances_in_the_quote_currency() -> None:
    balances = [Balance(currency=c, total=Decimal(t), available=Decimal(t))
                for c, t in (("USD", "100"), ("BTC", "0.5"), ("ETH", "0"), ("DOGE", "10"))]
    positions, unmapped = positions_from_balances(balances, {"BTC": "BTC-USD", "ETH": "ETH-USD"}, "USD")
    assert [(p.instrument_id, p.venue_symbol, p.quantity) for p in positions] == [
        ("crypto_spot:BTC-USD", "BTC-USD", Decimal("0.5"))]
    assert unmapped == ["DOGE"]


def test_historical_orders_map_to_venue_orders(sample: Sample) -> None:
    orders = OrdersResponse.model_validate(sample("orders_historical")).orders
    partial, cancelling = (venue_order_from_historical(o) for o in orders)
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.venue_status == "OPEN"
    assert (partial.side, partial.quantity, partial.filled_quantity, partial.limit_price) == (
        Side.BUY, Decimal("0.002"), Decimal("0.001"), Decimal("50000.00"))
    assert partial.client_order_id == "ord_0f1e2d3c4b5a69788796a5b4c3d2"
    assert cancelling.status is OrderStatus.PENDING_CANCEL and cancelling.client_order_id is None


@pytest.mark.parametrize("status", [s for s in VenueOrderStatus if s is not VenueOrderStatus.UNKNOWN_ORDER_STATUS])
def test_every_documented_status_maps_to_a_core_status(status: VenueOrderStatus) -> None:
    assert order_status_for(status, Decimal(0)) is STATUS_MAP[status.value]


def test_unknown_order_status_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="UNKNOWN_ORDER_STATUS"):
        order_status_for(VenueOrderStatus.UNKNOWN_ORDER_STATUS, Decimal(0))


def test_a_status_outside_the_documented_set_fails_validation(sample: Sample) -> None:
    raw = sample("orders_historical")
    raw["orders"][0]["status"] = "PARTIALLY_OPEN"
    with pytest.raises(ValidationError):
        OrdersResponse.model_validate(raw)


def test_a_quote_sized_order_has_no_base_quantity_to_report() -> None:
    order = HistoricalOrder.model_validate({
        "order_id": "x", "client_order_id": "", "product_id": "BTC-USD", "side": "BUY", "status": "OPEN",
        "order_configuration": {"market_market_ioc": {"quote_size": "10"}}})
    with pytest.raises(ValueError, match="base_size"):
        venue_order_from_historical(order)


def test_fills_use_the_entry_id_commission_and_liquidity(sample: Sample) -> None:
    maker, taker = (venue_fill_from_fill(f) for f in FillsResponse.model_validate(sample("fills")).fills)
    assert maker == VenueFill(
        venue=Venue.COINBASE, venue_trade_id="22222-2222222-22222222", venue_order_id="0000-000000-000000",
        client_order_id=None, instrument_id="crypto_spot:BTC-USD", side=Side.BUY, quantity=Decimal("0.001"),
        price=Decimal("50000.00"), fee=Decimal("0.20"), liquidity=Liquidity.MAKER,
        ts=datetime(2026, 3, 2, 14, 1, 0, 500000, tzinfo=UTC))
    # size_in_quote: 1750.25 USD at 3500.50 is 0.5 ETH.
    assert (taker.quantity, taker.liquidity, taker.fee) == (Decimal("0.5"), Liquidity.TAKER, Decimal("10.5015"))


def test_a_reversal_is_refused_rather_than_booked(sample: Sample) -> None:
    raw = sample("fills")["fills"][0] | {"trade_type": "REVERSAL"}
    with pytest.raises(UnsupportedError, match="REVERSAL"):
        venue_fill_from_fill(Fill.model_validate(raw))


def test_unknown_liquidity_is_labelled_taker() -> None:
    raw = {"entry_id": "e", "trade_id": "t", "order_id": "o", "trade_time": "2026-03-02T14:00:00Z", "price": "1",
           "size": "2", "commission": "0", "liquidity_indicator": "UNKNOWN_LIQUIDITY_INDICATOR", "side": "SELL",
           "product_id": "BTC-USD"}
    assert venue_fill_from_fill(Fill.model_validate(raw)).liquidity is Liquidity.TAKER


@pytest.mark.parametrize(("field", "value"), [("price", 50000.0), ("price", "NaN"), ("size", "-1"),
                                              ("commission", "-0.01"), ("trade_time", "2026-03-02T14:00:00"),
                                              ("side", "buy"), ("liquidity_indicator", "MAKERISH")])
def test_a_fill_off_the_documented_shape_is_refused(sample: Sample, field: str, value: object) -> None:
    raw = sample("fills")["fills"][0] | {field: value}
    with pytest.raises(ValidationError):
        Fill.model_validate(raw)


def test_fee_rates_come_from_the_fee_tier(sample: Sample) -> None:
    fees = rate_fees_from_summary(TransactionSummary.model_validate(sample("transaction_summary")))
    assert (fees.maker_rate, fees.taker_rate) == (Decimal("0.0025"), Decimal("0.0040"))


def test_create_order_answers(sample: Sample) -> None:
    success = CreateOrderResponse.model_validate(sample("create_order_success"))
    assert success.success and success.success_response is not None
    assert success.success_response.order_id == "0000-000000-000000"
    failure = CreateOrderResponse.model_validate(sample("create_order_failure"))
    assert not failure.success
    assert failure.failure_codes == {"UNKNOWN_FAILURE_REASON", "INSUFFICIENT_FUND", "PREVIEW_INSUFFICIENT_FUND"}
    assert failure.failure_code == "INSUFFICIENT_FUND"
    bare = CreateOrderResponse.model_validate({"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON"})
    assert bare.failure_code == "UNKNOWN_FAILURE_REASON"
    with pytest.raises(ValidationError, match="success without success_response"):
        CreateOrderResponse.model_validate({"success": True})


def test_batch_cancel_and_error_bodies(sample: Sample) -> None:
    results = CancelResponse.model_validate(sample("batch_cancel")).results
    assert [(r.success, r.failure_reason) for r in results] == [
        (True, "UNKNOWN_CANCEL_FAILURE_REASON"), (False, "UNKNOWN_CANCEL_ORDER")]
    error = ErrorBody.model_validate(sample("error_permission_denied"))
    assert (error.error, error.message) == ("PERMISSION_DENIED", "Missing required scopes")


def test_websocket_envelopes_and_events(sample: Sample) -> None:
    snapshot = Envelope.model_validate(sample("ws_l2_snapshot"))
    assert (snapshot.channel, snapshot.sequence_num) == ("l2_data", 0)
    event = L2Event.model_validate(snapshot.events[0])
    assert event.type.value == "snapshot" and len(event.updates) == 5
    ticker = TickerEvent.model_validate(Envelope.model_validate(sample("ws_ticker")).events[0]).tickers[0]
    assert (ticker.best_bid, ticker.best_ask_quantity) == (Decimal("94999.50"), Decimal("0.05"))
    trades = MarketTradesEvent.model_validate(Envelope.model_validate(sample("ws_market_trades")).events[0]).trades
    assert [(t.instrument_id, t.side, t.size) for t in map(trade_tick, trades)] == [
        ("crypto_spot:BTC-USD", Side.BUY, Decimal("0.002")), ("crypto_spot:BTC-USD", Side.SELL, Decimal("0.01"))]
    assert Envelope.model_validate(sample("ws_heartbeats")).channel == "heartbeats"
    user = UserEvent.model_validate(Envelope.model_validate(sample("ws_user")).events[0])
    order = venue_order_from_user_order(user.orders[0])
    assert (order.status, order.quantity, order.filled_quantity, order.limit_price) == (
        OrderStatus.PARTIALLY_FILLED, Decimal("0.002"), Decimal("0.001"), Decimal("50000.00"))


def test_an_envelope_without_a_sequence_number_is_refused(sample: Sample) -> None:
    raw = sample("ws_ticker")
    del raw["sequence_num"]
    with pytest.raises(ValidationError):
        Envelope.model_validate(raw)


# ---- order bodies -------------------------------------------------------------------------------------------


def _order(order_type: OrderType, tif: TimeInForce, side: Side = Side.BUY) -> Any:
    order = live_order("crypto_spot:BTC-USD", Decimal("0.00100"), Decimal("50000.50"), side=side)
    return order.model_copy(update={"order_type": order_type, "time_in_force": tif,
                                    "limit_price": None if order_type is OrderType.MARKET else order.limit_price})


@pytest.mark.parametrize(("order_type", "tif", "configuration"), [
    (OrderType.LIMIT, TimeInForce.GTC,
     {"limit_limit_gtc": {"base_size": "0.001", "limit_price": "50000.5", "post_only": False}}),
    (OrderType.LIMIT, TimeInForce.FOK, {"limit_limit_fok": {"base_size": "0.001", "limit_price": "50000.5"}}),
    (OrderType.LIMIT, TimeInForce.IOC, {"sor_limit_ioc": {"base_size": "0.001", "limit_price": "50000.5"}}),
    (OrderType.MARKET, TimeInForce.IOC, {"market_market_ioc": {"base_size": "0.001"}}),
])
def test_order_configuration_per_type_and_time_in_force(order_type: OrderType, tif: TimeInForce,
                                                        configuration: dict[str, Any]) -> None:
    order = _order(order_type, tif, Side.SELL)
    assert create_order_body(order) == {"client_order_id": order.client_order_id, "product_id": "BTC-USD",
                                        "side": "SELL", "order_configuration": configuration}


@pytest.mark.parametrize(("order_type", "tif"), [(OrderType.MARKET, TimeInForce.GTC),
                                                 (OrderType.MARKET, TimeInForce.FOK),
                                                 (OrderType.MARKET, TimeInForce.DAY),
                                                 (OrderType.LIMIT, TimeInForce.DAY)])
def test_unsupported_combinations_are_refused(order_type: OrderType, tif: TimeInForce) -> None:
    with pytest.raises(UnsupportedError):
        create_order_body(_order(order_type, tif))


def test_large_quantities_are_written_without_exponent() -> None:
    order = live_order("crypto_spot:BTC-USD", Decimal("1E+3"), Decimal("2.50E+4"))
    configuration = create_order_body(order)["order_configuration"]
    assert configuration == {"limit_limit_gtc": {"base_size": "1000", "limit_price": "25000", "post_only": False}}


# ---- fill cursor --------------------------------------------------------------------------------------------


def _fill(entry: str, at: datetime) -> VenueFill:
    return VenueFill(venue=Venue.COINBASE, venue_trade_id=entry, venue_order_id="o", client_order_id=None,
                     instrument_id="crypto_spot:BTC-USD", side=Side.BUY, quantity=Decimal(1), price=Decimal(1),
                     fee=Decimal(0), liquidity=Liquidity.MAKER, ts=at)


T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
LOOKBACK = timedelta(minutes=5)


def test_fills_after_returns_each_fill_once_oldest_first_and_a_cursor() -> None:
    fills = [_fill("b", T0 + timedelta(seconds=2)), _fill("a", T0), _fill("b", T0 + timedelta(seconds=2))]
    fresh, cursor = fills_after(None, fills, LOOKBACK)
    assert [f.venue_trade_id for f in fresh] == ["a", "b"]
    assert cursor is not None and cursor.high_water == T0 + timedelta(seconds=2)


def test_fills_after_a_cursor_skips_what_it_saw_and_keeps_late_fills_inside_the_look_back() -> None:
    _, cursor = fills_after(None, [_fill("a", T0), _fill("b", T0 + timedelta(minutes=1))], LOOKBACK)
    assert cursor is not None
    decoded = FillCursor.decode(cursor.encode())
    assert decoded == cursor
    late = _fill("late", T0 + timedelta(seconds=30))  # listed after the cursor was made, but older than it
    too_old = _fill("old", T0 - timedelta(minutes=10))
    fresh, after = fills_after(decoded, [_fill("a", T0), late, too_old, _fill("c", T0 + timedelta(minutes=2))],
                               LOOKBACK)
    assert [f.venue_trade_id for f in fresh] == ["late", "c"]
    assert after is not None and after.high_water == T0 + timedelta(minutes=2)


def test_fills_after_with_nothing_new_keeps_the_cursor() -> None:
    assert fills_after(None, [], LOOKBACK) == ([], None)
    _, cursor = fills_after(None, [_fill("a", T0)], LOOKBACK)
    fresh, same = fills_after(cursor, [_fill("a", T0)], LOOKBACK)
    assert fresh == [] and same == cursor


def test_seen_fills_older_than_the_look_back_are_forgotten() -> None:
    _, cursor = fills_after(None, [_fill("a", T0)], LOOKBACK)
    _, later = fills_after(cursor, [_fill("b", T0 + timedelta(hours=1))], LOOKBACK)
    assert later is not None and set(later.seen) == {"b"}


NAIVE_TIME_CURSOR = "eyJ2IjoxLCJ0IjoiMjAyNi0wMy0wMlQxNDowMDowMCIsInNlZW4iOltdfQ=="  # {"v":1,"t":"...T14:00:00"}


@pytest.mark.parametrize("text", ["", "not base64!", "eyJ2IjoyfQ==", NAIVE_TIME_CURSOR])
def test_a_cursor_we_did_not_make_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a Coinbase fills cursor"):
        FillCursor.decode(text)
