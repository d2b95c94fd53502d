"""The IBKR connector against its stand-in: the shared contract suite, then IBKR's own behaviour."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr
from structlog.testing import capture_logs

from connectors.errors import (
    AuthenticationError,
    OrderRejectedError,
    UnsupportedError,
    VenueServerError,
    VenueUnavailableError,
)
from connectors.ibkr import IbkrConfig, IbkrConnector, WatchEntry
from connectors.resilience import BackoffPolicy
from core.instruments import AssetClass, Venue
from core.market import Quote
from core.orders import Order, OrderStatus
from core.venue import MarketDataMode, PlaceResult
from tests.integration.connectors.contract import ConnectorContract, authorize, live_order
from tests.kit.waiting import eventually_async
from tests.standins.base import Fault
from tests.standins.ibkr import (
    CONID_AAPL,
    CONID_AAPL_CALL,
    CONID_ES_DEC26,
    CONID_XAUUSD,
    SESSION_ID,
    IbkrStandIn,
)

WATCHLIST = (
    WatchEntry(instrument_id="equity:AAPL"),
    WatchEntry(instrument_id="option:AAPL-20261218-C-250"),
    WatchEntry(instrument_id="future:ES-202612", tick_size=Decimal("0.25")),
    WatchEntry(instrument_id="metal:XAUUSD"),
)
FAST = BackoffPolicy(base_s=0.01, cap_s=0.05)
AAPL = "equity:AAPL"


def make_config(standin: IbkrStandIn, **overrides: Any) -> IbkrConfig:
    settings: dict[str, Any] = {
        "base_url": standin.base_url, "ws_url": standin.ws_url, "account_id": standin.account_id,
        "watchlist": WATCHLIST, "endpoint_min_interval_s": {}, "tickle_interval_s": 3600.0,
        "request_timeout_s": 2.0, "snapshot_retry_delay_s": 0.01, "order_lookup_delay_s": 0.01,
        "poll_interval_s": 0.05, "reconnect_base_s": 0.05, "reconnect_cap_s": 0.2, **overrides,
    }
    return IbkrConfig(**settings)


@pytest_asyncio.fixture(loop_scope="function")
async def standin() -> AsyncIterator[IbkrStandIn]:
    async with IbkrStandIn() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="function")
async def connector(standin: IbkrStandIn) -> AsyncIterator[IbkrConnector]:
    connector = IbkrConnector(make_config(standin), backoff=FAST)
    yield connector
    await connector.close()


@pytest.fixture
def order_spec() -> tuple[str, Decimal, Decimal]:
    return AAPL, Decimal(10), Decimal("229.50")


@pytest_asyncio.fixture(loop_scope="function")
async def bad_credentials_connector() -> AsyncIterator[IbkrConnector]:
    async with IbkrStandIn() as logged_out:
        logged_out.logged_in = False
        connector = IbkrConnector(make_config(logged_out), backoff=FAST)
        yield connector
        await connector.close()


class TestIbkrContract(ConnectorContract):
    """The shared suite, unchanged."""


async def _place(connector: IbkrConnector, quantity: str = "10",
                 price: str = "229.50") -> tuple[Order, PlaceResult]:
    order = live_order(AAPL, Decimal(quantity), Decimal(price))
    return order, await connector.place_order(order, authorize(order))


# --- contracts ------------------------------------------------------------------------------------------------------

async def test_every_asset_class_resolves_to_a_canonical_instrument_with_its_multiplier(
        connector: IbkrConnector) -> None:
    by_id = {i.instrument_id: i for i in await connector.instruments()}

    assert set(by_id) == {e.instrument_id for e in WATCHLIST}
    expected = {
        "equity:AAPL": (AssetClass.EQUITY, CONID_AAPL, Decimal(1), Decimal("0.01")),
        "option:AAPL-20261218-C-250": (AssetClass.OPTION, CONID_AAPL_CALL, Decimal(100), Decimal("0.01")),
        "future:ES-202612": (AssetClass.FUTURE, CONID_ES_DEC26, Decimal(50), Decimal("0.25")),
        "metal:XAUUSD": (AssetClass.METAL, CONID_XAUUSD, Decimal(1), Decimal("0.01")),
    }
    for instrument_id, (asset_class, conid, multiplier, tick) in expected.items():
        instrument = by_id[instrument_id]
        assert (instrument.asset_class, instrument.venue_symbols, instrument.multiplier, instrument.tick_size) == (
            asset_class, {Venue.IBKR: conid}, multiplier, tick)
        assert instrument.quote_currency == "USD"
    assert by_id["option:AAPL-20261218-C-250"].expiry is not None
    assert by_id["option:AAPL-20261218-C-250"].expiry.date().isoformat() == "2026-12-18"


async def test_an_instrument_outside_the_watch_list_is_unsupported(connector: IbkrConnector) -> None:
    with pytest.raises(UnsupportedError):
        await connector.order_book("equity:MSFT")


# --- session --------------------------------------------------------------------------------------------------------

async def test_tickle_keeps_the_session_alive_in_the_background_until_close(standin: IbkrStandIn) -> None:
    connector = IbkrConnector(make_config(standin, tickle_interval_s=0.02), backoff=FAST)
    await connector.balances()

    await eventually_async(lambda: _async(standin.tickles >= 3), within=5, what="three tickles")
    await connector.close()
    after_close = standin.tickles
    await asyncio.sleep(0.1)

    assert standin.tickles == after_close


async def test_an_unusable_brokerage_session_shows_in_health_and_refuses_reads(
        connector: IbkrConnector, standin: IbkrStandIn) -> None:
    standin.auth["competing"] = True

    health = await connector.health()
    with pytest.raises(AuthenticationError):
        await connector.balances()

    assert health.reachable and not health.authenticated
    assert "competing=True" in health.detail
    assert standin.preflights["portfolio"] == 0


async def test_a_logged_out_gateway_is_reachable_but_not_authenticated_in_health(
        bad_credentials_connector: IbkrConnector) -> None:
    health = await bad_credentials_connector.health()

    assert health.reachable and not health.authenticated


async def test_an_unreachable_gateway_is_reported_not_raised() -> None:
    async with IbkrStandIn() as gone:
        config = make_config(gone)
    connector = IbkrConnector(config, backoff=FAST)

    health = await connector.health()
    await connector.close()

    assert not health.reachable and not health.authenticated


async def test_a_wrong_oauth_token_is_an_authentication_error() -> None:
    async with IbkrStandIn(bearer_token="right-token") as server:
        connector = IbkrConnector(make_config(server, oauth_token=SecretStr("wrong-token")), backoff=FAST)
        with pytest.raises(AuthenticationError):
            await connector.balances()
        await connector.close()


# --- market data ----------------------------------------------------------------------------------------------------

async def test_an_empty_first_snapshot_is_asked_again_politely(connector: IbkrConnector,
                                                              standin: IbkrStandIn) -> None:
    standin.empty_snapshots = 2

    book = await connector.order_book(AAPL)

    assert standin.preflights["iserver"] == 1
    assert (book.bids[0].price, book.asks[0].price, book.bids[0].size) == (Decimal("230.00"), Decimal("230.10"),
                                                                           Decimal(300))
    assert len(book.bids) == len(book.asks) == 1


async def test_no_quote_after_every_snapshot_attempt_is_unavailable(standin: IbkrStandIn) -> None:
    standin.empty_snapshots = 10
    connector = IbkrConnector(make_config(standin, snapshot_attempts=3), backoff=FAST)

    with pytest.raises(VenueUnavailableError):
        await connector.order_book(AAPL)
    await connector.close()


async def test_streamed_smd_messages_become_quotes(connector: IbkrConnector, standin: IbkrStandIn) -> None:
    stream = aiter(connector.quotes([AAPL, "future:ES-202612"]))
    first = {q.instrument_id: q for q in [await _next(stream), await _next(stream)]}
    standin.set_top_of_book(CONID_AAPL, Decimal("230.05"), Decimal("230.07"), Decimal(1200))
    moved = await _next(stream)

    assert first[AAPL].bid_size == Decimal(300)
    assert first["future:ES-202612"].bid == Decimal("6000.00")
    assert (moved.instrument_id, moved.bid, moved.ask, moved.ask_size) == (AAPL, Decimal("230.05"),
                                                                           Decimal("230.07"), Decimal(1200))
    assert moved.seq == first[AAPL].seq + 1
    assert standin.ws_logins == [SESSION_ID]
    assert (await connector.health()).market_data_mode is MarketDataMode.STREAMING


async def test_the_socket_is_kept_alive_with_tic(standin: IbkrStandIn) -> None:
    connector = IbkrConnector(make_config(standin, ws_keepalive_interval_s=0.02), backoff=FAST)
    stream = aiter(connector.quotes([AAPL]))
    await _next(stream)

    await eventually_async(lambda: _async(standin.ws_keepalives >= 2), within=5, what="two tic keep-alives")
    await connector.close()


async def test_when_the_socket_drops_quotes_are_polled_and_health_says_so(connector: IbkrConnector,
                                                                         standin: IbkrStandIn) -> None:
    stream = aiter(connector.quotes([AAPL]))
    await _next(stream)

    standin.inject(Fault.DROP_WEBSOCKET, 1000)
    await eventually_async(lambda: _mode_is(connector, MarketDataMode.POLLING), within=5, what="polling")
    standin.set_top_of_book(CONID_AAPL, Decimal("231.00"), Decimal("231.10"), Decimal(500))
    polled = await _next_matching(stream, lambda q: q.bid == Decimal("231.00"))
    standin.clear_faults()
    await eventually_async(lambda: _mode_is(connector, MarketDataMode.STREAMING), within=5, what="streaming")

    assert polled.ask == Decimal("231.10")
    assert "market_data: REST snapshot polling while the websocket is down" in connector.capabilities.fallbacks


async def test_a_lost_streamed_update_is_made_good_by_the_next_one(connector: IbkrConnector,
                                                                  standin: IbkrStandIn) -> None:
    stream = aiter(connector.quotes([AAPL]))
    await _next(stream)

    standin.inject(Fault.SEQUENCE_GAP)
    standin.set_top_of_book(CONID_AAPL, Decimal("230.50"), Decimal("230.60"), Decimal(300))
    standin.set_top_of_book(CONID_AAPL, Decimal("230.55"), Decimal("230.65"), Decimal(300))

    assert (await _next(stream)).bid == Decimal("230.55")


async def test_closing_the_connector_ends_a_stream_still_being_read(standin: IbkrStandIn) -> None:
    connector = IbkrConnector(make_config(standin), backoff=FAST)
    stream = aiter(connector.quotes([AAPL]))
    await _next(stream)
    reader = asyncio.create_task(_next(stream))
    await asyncio.sleep(0.05)

    await connector.close()

    with pytest.raises(VenueUnavailableError):
        await reader


# --- account --------------------------------------------------------------------------------------------------------

async def test_positions_are_read_page_by_page() -> None:
    async with IbkrStandIn(rate_limit_per_s=None) as server:
        for n in range(150):
            conid = str(900_000 + n)
            server.add_stock(f"SYM{n:03d}", conid)
            server.add_position(conid, Decimal(n + 1), Decimal("10.5"))
        connector = IbkrConnector(make_config(server, requests_per_s=1000.0), backoff=FAST)

        positions = await connector.positions()
        await connector.close()

    by_id = {p.instrument_id: p for p in positions}
    assert len(positions) == 152
    assert by_id["equity:AAPL"].quantity == Decimal(100)
    assert by_id["future:ES-202612"].quantity == Decimal(-2)
    assert "metal:XAUUSD" not in by_id
    assert by_id["equity:SYM149"].quantity == Decimal(150)


async def test_venue_statuses_map_to_core_statuses_through_partial_fill_and_fill(
        connector: IbkrConnector, standin: IbkrStandIn) -> None:
    order, placed = await _place(connector)
    assert placed.status is OrderStatus.OPEN

    standin.fill_resting_order(placed.venue_order_id, Decimal(4), Decimal("229.50"))
    partial = {o.client_order_id: o for o in await connector.open_orders()}[order.client_order_id]
    standin.fill_resting_order(placed.venue_order_id, Decimal(6), Decimal("229.50"))
    still_open = await connector.open_orders()
    fills = (await connector.fills_since(None)).fills

    assert (partial.status, partial.filled_quantity, partial.venue_status) == (
        OrderStatus.PARTIALLY_FILLED, Decimal(4), "Submitted")
    assert order.client_order_id not in {o.client_order_id for o in still_open}
    assert [(f.quantity, f.fee, f.client_order_id) for f in fills] == [
        (Decimal(4), Decimal("1.00"), order.client_order_id), (Decimal(6), Decimal("1.00"), order.client_order_id)]


async def test_without_a_reported_commission_the_fee_comes_from_the_fixed_schedule(
        connector: IbkrConnector, standin: IbkrStandIn) -> None:
    standin.report_commission = False
    _, placed = await _place(connector, quantity="300", price="230.00")
    standin.fill_resting_order(placed.venue_order_id, Decimal(300), Decimal("230.00"))

    (fill,) = (await connector.fills_since(None)).fills

    assert fill.fee == Decimal("1.50")


async def test_the_fill_cursor_returns_only_later_executions(connector: IbkrConnector,
                                                            standin: IbkrStandIn) -> None:
    _, placed = await _place(connector)
    standin.fill_resting_order(placed.venue_order_id, Decimal(1), Decimal("229.50"))
    first = await connector.fills_since(None)
    standin.fill_resting_order(placed.venue_order_id, Decimal(2), Decimal("229.50"))

    second = await connector.fills_since(first.cursor)
    third = await connector.fills_since(second.cursor)

    assert [f.quantity for f in second.fills] == [Decimal(2)]
    assert third.fills == () and third.cursor == second.cursor


# --- writes ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("questions", [0, 1, 2])
async def test_order_questions_are_confirmed_one_after_another(connector: IbkrConnector, standin: IbkrStandIn,
                                                              questions: int) -> None:
    standin.questions = questions

    order, placed = await _place(connector)

    assert standin.reply_calls == questions
    confirmed = placed.venue_response["confirmed"]
    assert isinstance(confirmed, list) and len(confirmed) == questions
    assert (standin.write_calls, standin.order_count()) == (1, 1)
    assert order.client_order_id in {o.client_order_id for o in await connector.open_orders()}


async def test_a_chain_of_questions_longer_than_the_cap_is_not_confirmed(standin: IbkrStandIn) -> None:
    standin.questions = 3
    connector = IbkrConnector(make_config(standin, max_confirmations=2), backoff=FAST)

    with pytest.raises(OrderRejectedError):
        await _place(connector)
    await connector.close()

    assert (standin.reply_calls, standin.order_count()) == (2, 0)


@pytest.mark.parametrize("refusal_status", [400, 200])
async def test_a_reused_client_order_id_is_recovered_not_placed_twice(standin: IbkrStandIn,
                                                                     connector: IbkrConnector,
                                                                     refusal_status: int) -> None:
    standin.duplicate_refusal_status = refusal_status
    order, first = await _place(connector)

    again = await connector.place_order(order, authorize(order))

    assert again.recovered and not first.recovered
    assert again.venue_order_id == first.venue_order_id
    assert again.status is OrderStatus.OPEN
    assert (standin.order_count(), standin.write_calls) == (1, 2)


async def test_an_answer_lost_after_the_last_confirmation_is_recovered(connector: IbkrConnector,
                                                                      standin: IbkrStandIn) -> None:
    standin.questions = 1
    standin.inject(Fault.LOSE_ORDER_RESPONSE)

    order, placed = await _place(connector)

    assert placed.recovered and placed.client_order_id == order.client_order_id
    assert standin.order_count() == 1


async def test_a_refused_order_is_rejected_after_checking_it_does_not_exist(connector: IbkrConnector,
                                                                           standin: IbkrStandIn) -> None:
    standin.refuse_orders = "Insufficient buying power"

    with pytest.raises(OrderRejectedError) as refused:
        await _place(connector)

    assert "Insufficient buying power" in str(refused.value)
    assert standin.order_count() == 0


async def test_a_cancel_repeated_after_it_succeeded_is_quiet(connector: IbkrConnector) -> None:
    order, placed = await _place(connector)
    await connector.cancel_order(order, placed.venue_order_id, authorize(order))

    await connector.cancel_order(order, placed.venue_order_id, authorize(order))


async def test_a_slow_answer_times_out_and_is_retried(standin: IbkrStandIn) -> None:
    standin.slow_delay_s = 0.5
    connector = IbkrConnector(make_config(standin, request_timeout_s=0.2), backoff=FAST)
    standin.inject(Fault.SLOW)

    assert await connector.balances()
    await connector.close()


async def test_a_burst_of_reads_is_paced_under_the_gateway_limit(connector: IbkrConnector,
                                                                standin: IbkrStandIn) -> None:
    await connector.balances()

    results = await asyncio.gather(*(connector.balances() for _ in range(15)))

    assert all(results)
    assert standin.paced_refusals == 0


# --- secrets --------------------------------------------------------------------------------------------------------

async def test_the_token_and_the_session_id_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    token = "oauth-token-d41d8cd98f00b204e9800998ecf8427e"
    async with IbkrStandIn(bearer_token=token) as server:
        server.questions = 1
        connector = IbkrConnector(make_config(server, oauth_token=SecretStr(token)), backoff=FAST)
        with capture_logs() as events, caplog.at_level(logging.DEBUG):
            await connector.health()
            await connector.balances()
            stream = aiter(connector.quotes([AAPL]))
            await _next(stream)
            server.inject(Fault.DROP_WEBSOCKET, 1000)
            await eventually_async(lambda: _mode_is(connector, MarketDataMode.POLLING), within=5, what="polling")
            server.clear_faults()
            server.inject(Fault.LOSE_ORDER_RESPONSE)
            _, placed = await _place(connector)
            server.inject(Fault.SERVER_ERROR, 10)
            with pytest.raises(VenueServerError):
                await connector.positions()
            await connector.close()

    logged = repr(events) + caplog.text
    assert placed.recovered and events
    assert token not in logged and SESSION_ID not in logged
    assert token not in str(placed)


# --- helpers --------------------------------------------------------------------------------------------------------

async def _async(value: bool) -> bool:
    return value


async def _mode_is(connector: IbkrConnector, mode: MarketDataMode) -> bool:
    return (await connector.health()).market_data_mode is mode


async def _next(stream: AsyncIterator[Quote]) -> Quote:
    return await asyncio.wait_for(anext(stream), timeout=5)


async def _next_matching(stream: AsyncIterator[Quote], match: Any) -> Quote:
    while not match(quote := await _next(stream)):
        pass
    return quote
