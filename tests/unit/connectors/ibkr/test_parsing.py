"""Pure IBKR parsing against recorded-format payloads (tests/standins/resources/ibkr)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from connectors.ibkr.parsing import (
    ContractSpec,
    balances_from_ledger,
    fill_cursor,
    fill_from_trade,
    fill_key,
    instrument_from_contract,
    merge_fields,
    new_executions,
    order_request,
    order_status,
    parse_fill_cursor,
    parse_instrument_id,
    parse_place_reply,
    parse_price_field,
    parse_size_field,
    position_from_row,
    quote_from_fields,
    search_conids,
    secdef_month,
    select_future,
    select_option,
    select_search_result,
    select_us_stock,
    spec_from_contract_info,
    stream_conid,
    trade_days,
    venue_order_from_row,
    wire_number,
)
from connectors.ibkr.schemas import (
    Ack,
    ContractInfo,
    FutureContract,
    LedgerEntry,
    LiveOrders,
    OptionContract,
    PositionRow,
    Question,
    SearchResult,
    SnapshotRow,
    StockListing,
    StreamMessage,
    TradeRow,
)
from core.instruments import AssetClass, Venue
from core.orders import OrderStatus
from core.types import Liquidity, OrderType, Side, TimeInForce
from tests.integration.connectors.contract import live_order
from tests.standins.ibkr import resource

T = datetime(2026, 11, 5, 14, 30, tzinfo=UTC)


def _info(conid: str) -> ContractInfo:
    return ContractInfo.model_validate(resource("contract_info.json")[conid])


def _trades() -> list[TradeRow]:
    return TypeAdapter(list[TradeRow]).validate_python(resource("trades.json"))


# --- canonical ids --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("instrument_id", ["equity:AAPL", "option:AAPL-20261218-C-250", "option:SPY-20270115-P-412.5",
                                           "future:ES-202612", "metal:XAUUSD"])
def test_a_canonical_id_parses_and_prints_back_the_same(instrument_id: str) -> None:
    assert parse_instrument_id(instrument_id).instrument_id == instrument_id


def test_an_option_id_names_expiry_right_and_strike() -> None:
    spec = parse_instrument_id("option:AAPL-20261218-C-250")

    assert (spec.asset_class, spec.symbol, spec.expiry, spec.right, spec.strike) == (
        AssetClass.OPTION, "AAPL", date(2026, 12, 18), "C", Decimal(250))
    assert secdef_month(date(2026, 12, 18)) == "DEC26"


@pytest.mark.parametrize("instrument_id", ["crypto_spot:BTC-USD", "option:AAPL-2026-C-250", "option:AAPL-20261218-X-1",
                                           "future:ES-202613", "future:ES", "equity:AA PL", "nothing:X"])
def test_an_id_ibkr_cannot_serve_or_that_is_malformed_is_refused(instrument_id: str) -> None:
    with pytest.raises(ValueError):
        parse_instrument_id(instrument_id)


# --- contract resolution --------------------------------------------------------------------------------------------

def test_the_us_listing_of_a_stock_is_selected_among_foreign_ones() -> None:
    listings = TypeAdapter(list[StockListing]).validate_python(resource("trsrv_stocks.json")["AAPL"])

    assert select_us_stock("AAPL", listings) == "265598"
    with pytest.raises(ValueError):
        select_us_stock("AAPL", [])


def test_the_future_expiring_in_the_named_month_is_selected() -> None:
    contracts = TypeAdapter(list[FutureContract]).validate_python(resource("trsrv_futures.json")["ES"])

    assert select_future(parse_instrument_id("future:ES-202612"), contracts) == "495512563"
    with pytest.raises(ValueError):
        select_future(parse_instrument_id("future:ES-202609"), contracts)


def test_the_option_expiring_on_the_named_day_is_selected_not_the_weekly() -> None:
    contracts = TypeAdapter(list[OptionContract]).validate_python(resource("secdef_info.json"))

    option = select_option(parse_instrument_id("option:AAPL-20261218-C-250"), contracts)

    assert (option.conid, option.multiplier) == ("812345678", Decimal(100))
    with pytest.raises(ValueError):
        select_option(parse_instrument_id("option:AAPL-20261218-P-250"), contracts)


def test_search_results_are_filtered_by_section_type() -> None:
    search = TypeAdapter(list[SearchResult]).validate_python(resource("secdef_search.json")["AAPL"])
    metal = TypeAdapter(list[SearchResult]).validate_python(resource("secdef_search.json")["XAUUSD"])

    assert search_conids(search, "AAPL", "OPT") == {"265598"}
    assert search_conids(search, "AAPL", "STK") == {"265598", "38708077"}
    assert search_conids(metal, "XAUUSD", "CMDTY") == {"69067924"}
    assert select_search_result(parse_instrument_id("metal:XAUUSD"), metal) == "69067924"
    with pytest.raises(ValueError):
        select_search_result(parse_instrument_id("metal:XAUUSD"), search)


@pytest.mark.parametrize(("instrument_id", "conid", "override", "multiplier"), [
    ("equity:AAPL", "265598", None, Decimal(1)),
    ("option:AAPL-20261218-C-250", "812345678", Decimal(100), Decimal(100)),
    ("future:ES-202612", "495512563", None, Decimal(50)),
    ("metal:XAUUSD", "69067924", None, Decimal(1)),
])
def test_contract_info_makes_a_canonical_instrument(instrument_id: str, conid: str, override: Decimal | None,
                                                    multiplier: Decimal) -> None:
    instrument = instrument_from_contract(parse_instrument_id(instrument_id), conid, _info(conid), Decimal("0.01"),
                                          override)

    assert (instrument.instrument_id, instrument.multiplier, instrument.venue_symbols) == (
        instrument_id, multiplier, {Venue.IBKR: conid})


def test_contract_info_of_another_type_or_without_a_future_multiplier_is_refused() -> None:
    with pytest.raises(ValueError):
        instrument_from_contract(parse_instrument_id("future:ES-202612"), "265598", _info("265598"), Decimal(1))
    no_multiplier = _info("495512563").model_copy(update={"multiplier": None})
    with pytest.raises(ValueError):
        instrument_from_contract(parse_instrument_id("future:ES-202612"), "495512563", no_multiplier, Decimal(1))


@pytest.mark.parametrize(("conid", "instrument_id"), [
    ("265598", "equity:AAPL"), ("812345678", "option:AAPL-20261218-C-250"), ("495512563", "future:ES-202612"),
    ("69067924", "metal:XAUUSD"),
])
def test_a_contract_outside_the_watch_list_is_named_from_its_info(conid: str, instrument_id: str) -> None:
    assert spec_from_contract_info(_info(conid)).instrument_id == instrument_id


def test_a_contract_of_a_type_we_do_not_serve_cannot_be_named() -> None:
    fx = _info("265598").model_copy(update={"instrument_type": "CASH"})

    with pytest.raises(ValueError):
        spec_from_contract_info(fx)


# --- market data ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "value", "prefix"), [
    ("230.05", Decimal("230.05"), ""), ("C229.98", Decimal("229.98"), "C"), ("H230", Decimal(230), "H"),
    ("1,234.50", Decimal("1234.50"), ""),
])
def test_price_fields_are_read_with_their_documented_prefixes(raw: str, value: Decimal, prefix: str) -> None:
    assert parse_price_field(raw) == (value, prefix)


@pytest.mark.parametrize(("raw", "value"), [("3", Decimal(3)), ("1,200", Decimal(1200)), ("1.2K", Decimal(1200)),
                                            ("2M", Decimal(2_000_000))])
def test_size_fields_are_read_with_separators_and_suffixes(raw: str, value: Decimal) -> None:
    assert parse_size_field(raw) == value


@pytest.mark.parametrize("raw", ["X230", "", "230.", "-1", "N/A"])
def test_an_unreadable_field_raises(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_price_field(raw)
    with pytest.raises(ValueError):
        parse_size_field(raw)


def test_a_snapshot_with_fields_is_a_quote_and_the_empty_first_one_is_not() -> None:
    data = resource("market_data.json")
    full = SnapshotRow.model_validate(data["snapshot"][0])
    empty = SnapshotRow.model_validate(data["snapshot_first"][0])

    quote = quote_from_fields("equity:AAPL", merge_fields({}, full), Decimal(100), 1, T)

    assert quote is not None
    assert (quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (Decimal("230.00"), Decimal("230.10"),
                                                                      Decimal(300), Decimal(120_000))
    assert quote_from_fields("equity:AAPL", merge_fields({}, empty), Decimal(100), 1, T) is None


def test_streamed_updates_carry_only_changed_fields_and_are_merged() -> None:
    data = resource("market_data.json")
    fields = merge_fields({}, StreamMessage.model_validate(data["smd"]))
    fields = merge_fields(fields, StreamMessage.model_validate(data["smd_partial"]))

    quote = quote_from_fields("equity:AAPL", fields, Decimal(1), 2, T)

    assert quote is not None and (quote.bid, quote.ask, quote.ask_size) == (Decimal("230.02"), Decimal("230.09"),
                                                                            Decimal(2))
    assert stream_conid(data["smd"]["topic"]) == "265598"
    assert stream_conid("sts") is None and stream_conid("smd+abc") is None


def test_no_quote_while_halted_or_crossed() -> None:
    data = resource("market_data.json")
    fields = merge_fields({}, StreamMessage.model_validate(data["smd"]))
    halted = merge_fields(fields, StreamMessage.model_validate(data["smd_halted"]))
    crossed = {**fields, "84": "230.20"}

    assert quote_from_fields("equity:AAPL", halted, Decimal(1), 1, T) is None
    assert quote_from_fields("equity:AAPL", crossed, Decimal(1), 1, T) is None


# --- account --------------------------------------------------------------------------------------------------------

def test_the_ledger_is_one_balance_per_currency_without_the_base_total() -> None:
    ledger = TypeAdapter(dict[str, LedgerEntry]).validate_python(resource("ledger.json"))

    balances = {b.currency: b for b in balances_from_ledger(ledger)}

    assert set(balances) == {"USD", "EUR"}
    assert (balances["USD"].total, balances["USD"].available) == (Decimal("985376.94"), Decimal("980000.5"))
    assert balances["EUR"].total == balances["EUR"].available == Decimal("1250.10")


def test_a_position_row_keeps_its_sign_and_average_price() -> None:
    rows = TypeAdapter(list[PositionRow]).validate_python(resource("positions.json"))

    short = position_from_row(rows[1], "future:ES-202612")

    assert (short.quantity, short.average_price, short.venue_symbol) == (Decimal(-2), Decimal("6000.6"), "495512563")


@pytest.mark.parametrize(("venue_status", "filled", "status"), [
    ("Inactive", "0", OrderStatus.REJECTED), ("PendingSubmit", "0", OrderStatus.PENDING_SUBMIT),
    ("PreSubmitted", "0", OrderStatus.OPEN), ("Submitted", "0", OrderStatus.OPEN),
    ("Submitted", "1", OrderStatus.PARTIALLY_FILLED), ("Filled", "3", OrderStatus.FILLED),
    ("PendingCancel", "0", OrderStatus.PENDING_CANCEL), ("Cancelled", "0", OrderStatus.CANCELLED),
])
def test_every_documented_status_maps_to_a_core_status(venue_status: str, filled: str, status: OrderStatus) -> None:
    assert order_status(venue_status, Decimal(filled)) is status


@pytest.mark.parametrize("venue_status", ["ApiCancelled", "submitted", "WarnState", ""])
def test_an_unknown_status_raises(venue_status: str) -> None:
    with pytest.raises(ValueError):
        order_status(venue_status, Decimal(0))


def test_live_orders_become_venue_orders() -> None:
    orders = LiveOrders.model_validate(resource("live_orders.json")).orders

    limit, partial, market = (venue_order_from_row(row, "x:y") for row in orders[:3])

    assert (limit.venue_order_id, limit.client_order_id, limit.side, limit.limit_price, limit.status) == (
        "1210386759", "ord_aaaaaaaaaaaaaaaaaaaaaaaaaaaa", Side.BUY, Decimal("229.50"), OrderStatus.OPEN)
    assert (partial.side, partial.status, partial.filled_quantity) == (Side.SELL, OrderStatus.PARTIALLY_FILLED,
                                                                       Decimal(1))
    assert (market.limit_price, market.status) == (None, OrderStatus.FILLED)
    with pytest.raises(ValueError):
        venue_order_from_row(orders[0].model_copy(update={"side": "SSHORT"}), "x:y")


def test_an_execution_becomes_a_fill() -> None:
    row = _trades()[0]

    fill = fill_from_trade(row, "equity:AAPL", row.commission or Decimal(0))

    assert (fill.venue_trade_id, fill.venue_order_id, fill.side, fill.quantity, fill.price, fill.fee) == (
        "0000e0d5.6731c1a2.01.01", "1210386761", Side.BUY, Decimal(5), Decimal("230.05"), Decimal("1.00"))
    assert fill.liquidity is Liquidity.TAKER and fill.ts == datetime(2026, 11, 5, 14, 32, tzinfo=UTC)
    with pytest.raises(ValueError):
        fill_from_trade(row.model_copy(update={"side": "Q"}), "equity:AAPL", Decimal(0))


def test_a_missing_commission_is_none_not_zero() -> None:
    assert _trades()[1].commission is None


def test_executions_after_a_cursor_come_oldest_first_each_once() -> None:
    rows = _trades()

    everything = new_executions(rows, None)
    later = new_executions(rows, fill_key(everything[0]))

    assert [r.execution_id for r in everything] == ["0000e0d5.6731c1b7.01.01", "0000e0d5.6731c1a2.01.01"]
    assert [r.execution_id for r in later] == ["0000e0d5.6731c1a2.01.01"]
    assert new_executions(rows, fill_key(everything[-1])) == []
    assert parse_fill_cursor(fill_cursor(fill_key(later[0]))) == fill_key(later[0])


@pytest.mark.parametrize("cursor", ["", "abc:1", "123", "123:"])
def test_a_foreign_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(ValueError):
        parse_fill_cursor(cursor)


def test_the_days_asked_for_reach_back_to_the_cursor() -> None:
    today = (int(T.timestamp() * 1000), "x")
    three_days_ago = (int(T.timestamp() * 1000) - 3 * 86_400_000, "x")

    assert trade_days(None, T) == 7
    assert trade_days(today, T) == 2
    assert trade_days(three_days_ago, T) == 5
    assert trade_days((0, "x"), T) == 7


# --- orders ---------------------------------------------------------------------------------------------------------

def test_numbers_are_sent_exactly_or_not_at_all() -> None:
    assert wire_number(Decimal("10")) == 10 and isinstance(wire_number(Decimal("10.00")), int)
    assert wire_number(Decimal("229.50")) == 229.5
    with pytest.raises(ValueError):
        wire_number(Decimal("0.10000000000000000001"))


def test_an_order_request_carries_the_client_order_id_as_coid() -> None:
    order = live_order("equity:AAPL", Decimal(10), Decimal("229.50"))

    request = order_request("DU1234567", "265598", order)
    market = order_request("DU1234567", "265598", order.model_copy(
        update={"order_type": OrderType.MARKET, "limit_price": None, "time_in_force": TimeInForce.DAY}))

    assert request == {"acctId": "DU1234567", "conid": 265598, "orderType": "LMT", "side": "BUY", "quantity": 10,
                       "price": 229.5, "tif": "GTC", "cOID": order.client_order_id}
    assert "price" not in market and (market["orderType"], market["tif"]) == ("MKT", "DAY")


def test_a_placement_answer_is_a_question_or_an_acknowledgement() -> None:
    replies = resource("order_replies.json")

    question = parse_place_reply(replies["question"])
    ack = parse_place_reply(replies["ack"])

    assert isinstance(question, Question) and question.message_ids == ["o163"]
    assert isinstance(ack, Ack) and (ack.order_id, ack.order_status) == ("1210386763", "PreSubmitted")


@pytest.mark.parametrize("payload", [
    [], [{"order_id": "1", "order_status": "Accepted"}], [{"order_id": "1"}],
    [{"order_id": "1", "order_status": "Submitted"}, {"order_id": "2", "order_status": "Submitted"}],
    {"order_id": "1", "order_status": "Submitted"},
])
def test_any_other_placement_answer_raises(payload: Any) -> None:
    with pytest.raises(ValueError):
        parse_place_reply(payload)


# --- schemas --------------------------------------------------------------------------------------------------------

def test_numbers_arrive_as_strings_ints_or_floats_and_become_exact_decimals() -> None:
    ledger = TypeAdapter(dict[str, LedgerEntry]).validate_python(
        {"USD": {"currency": "USD", "cashbalance": 0.1, "settledcash": ""}, "EUR": {"currency": "EUR",
                                                                                    "cashbalance": 7}})

    assert ledger["USD"].cashbalance == Decimal("0.1") and ledger["USD"].settledcash is None
    assert ledger["EUR"].cashbalance == Decimal(7)


@pytest.mark.parametrize("row", [
    {"currency": "USD", "cashbalance": True}, {"currency": "USD", "cashbalance": "NaN"},
    {"currency": "USD", "cashbalance": "lots"}, {"currency": "USD"},
])
def test_a_ledger_entry_without_a_valid_cash_balance_is_refused(row: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LedgerEntry.model_validate(row)


def test_a_conid_is_a_positive_integer_in_either_form() -> None:
    assert ContractSpec(AssetClass.EQUITY, "AAPL").instrument_id == "equity:AAPL"
    assert SnapshotRow.model_validate({"conid": 265598}).conid == SnapshotRow.model_validate({"conid": "265598"}).conid
    with pytest.raises(ValidationError):
        SnapshotRow.model_validate({"conid": "-1"})
