"""The Kalshi connector against its stand-in: the shared contract suite, then Kalshi's own behaviours."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from connectors.errors import (
    AuthenticationError,
    OrderRejectedError,
    RateLimitedError,
    UnsupportedError,
)
from connectors.kalshi import KalshiConfig, KalshiConnector
from connectors.kalshi.constants import Channel
from core.fees import KalshiFees
from core.instruments import AssetClass, Venue
from core.orders import IntentSource, OrderIntent, OrderStatus, new_order
from core.types import ExecutionMode, Liquidity, OrderType, Side
from core.venue import MarketDataMode, VenueFill
from tests.integration.connectors.contract import OWNER, ConnectorContract, authorize, live_order
from tests.kit.waiting import eventually_async
from tests.standins.base import Fault
from tests.standins.kalshi import KalshiStandIn, generate_key

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
T60 = "KXHIGHNY-26JAN05-T60"
T65 = "KXHIGHNY-26JAN05-T65"
FED_JAN = "KXFEDRATE-26JAN-T4.25"

T = TypeVar("T")


@dataclass(frozen=True)
class Keys:
    pem: str
    public: rsa.RSAPublicKey
    other_pem: str
    """A key the venue does not know under KEY_ID."""


@pytest.fixture(scope="session")
def keys() -> Keys:
    pem, public = generate_key()
    other_pem, _ = generate_key()
    return Keys(pem=pem, public=public, other_pem=other_pem)


def fast_config(venue: KalshiStandIn, pem: str, **overrides: Any) -> KalshiConfig:
    fields: dict[str, Any] = {
        "rest_url": venue.base_url, "ws_url": venue.ws_url, "key_id": KEY_ID, "private_key_pem": SecretStr(pem),
        "timeout_s": 0.5, "retry_base_s": 0.01, "retry_cap_s": 0.05, "reconnect_base_s": 0.02,
        "reconnect_cap_s": 0.1, "ws_ping_interval_s": 1.0, "ws_open_timeout_s": 1.0, "poll_interval_s": 0.05,
    }
    return KalshiConfig(**{**fields, **overrides})


@pytest_asyncio.fixture(loop_scope="function")
async def standin(keys: Keys) -> AsyncIterator[KalshiStandIn]:
    async with KalshiStandIn({KEY_ID: keys.public}, slow_s=1.0, ws_heartbeat_s=0.2) as venue:
        yield venue


@pytest_asyncio.fixture(loop_scope="function")
async def connector(standin: KalshiStandIn, keys: Keys) -> AsyncIterator[KalshiConnector]:
    kalshi = KalshiConnector(fast_config(standin, keys.pem))
    yield kalshi
    await kalshi.close()


@pytest_asyncio.fixture(loop_scope="function")
async def bad_credentials_connector(standin: KalshiStandIn, keys: Keys) -> AsyncIterator[KalshiConnector]:
    kalshi = KalshiConnector(fast_config(standin, keys.other_pem))
    yield kalshi
    await kalshi.close()


@pytest.fixture
def order_spec() -> tuple[str, Decimal, Decimal]:
    return f"event_contract:{T60}", Decimal(5), Decimal("0.30")


class TestKalshiContract(ConnectorContract):
    """The shared suite, run against the Kalshi stand-in."""


async def next_within(stream: AsyncIterator[T], seconds: float = 5.0) -> T:
    return await asyncio.wait_for(anext(stream), seconds)


async def wait_until(condition: Callable[[], object], what: str, within: float = 5.0) -> None:
    async def probe() -> bool:
        return bool(condition())

    await eventually_async(probe, within=within, what=what)


async def until(stream: AsyncIterator[T], accept: Callable[[T], bool], seconds: float = 5.0) -> T:
    async def scan() -> T:
        async for item in stream:
            if accept(item):
                return item
        raise AssertionError("stream ended")

    return await asyncio.wait_for(scan(), seconds)


# --- Auth -------------------------------------------------------------------------------------------------------

async def test_signed_requests_pass_the_venues_verification(connector: KalshiConnector,
                                                            standin: KalshiStandIn) -> None:
    await connector.balances()
    await connector.positions()
    await connector.order_book(f"event_contract:{T60}")

    assert standin.auth_failures == 0
    assert standin.requests["GET /portfolio/balance"] == 1


async def test_websocket_handshake_with_a_bad_signature_is_refused_then_quotes_are_polled(
        bad_credentials_connector: KalshiConnector, standin: KalshiStandIn) -> None:
    quotes = bad_credentials_connector.quotes([f"event_contract:{T60}"])

    quote = await next_within(quotes)

    assert quote.bid == Decimal("0.42") and quote.ask == Decimal("0.44")  # public REST, unsigned
    await wait_until(lambda: standin.auth_failures > 0, "a refused handshake", within=5)
    assert not bad_credentials_connector.stream.live and standin.ws_connections == 0
    health = await bad_credentials_connector.health()
    assert health.market_data_mode is MarketDataMode.POLLING and not health.authenticated
    await quotes.aclose()


# --- Market data ----------------------------------------------------------------------------------------------

async def test_instruments_follow_the_cursor_across_pages(standin: KalshiStandIn, keys: Keys) -> None:
    kalshi = KalshiConnector(fast_config(standin, keys.pem, page_limit=2))
    try:
        instruments = {i.instrument_id: i for i in await kalshi.instruments()}
    finally:
        await kalshi.close()

    assert standin.requests["GET /markets"] == 3  # 5 open markets, 2 per page
    assert len(instruments) == 5 and "event_contract:KXHIGHNY-26JAN05-T70" not in instruments
    fine = instruments[f"event_contract:{T65}"]
    assert fine.asset_class is AssetClass.EVENT_CONTRACT and fine.multiplier == 1
    assert fine.tick_size == Decimal("0.001") and fine.lot_size == Decimal("0.01")
    assert fine.expiry == datetime(2026, 1, 6, 4, 59, tzinfo=UTC) and fine.tradeable
    whole = instruments[f"event_contract:{T60}"]
    assert whole.tick_size == Decimal("0.01") and whole.lot_size == 1
    assert instruments[f"event_contract:{FED_JAN}"].venue_symbols == {Venue.KALSHI: FED_JAN}


async def test_instruments_can_be_restricted_to_series(standin: KalshiStandIn, keys: Keys) -> None:
    kalshi = KalshiConnector(fast_config(standin, keys.pem, series_tickers=("KXFEDRATE",)))
    try:
        instruments = await kalshi.instruments()
    finally:
        await kalshi.close()

    assert sorted(i.instrument_id for i in instruments) == [f"event_contract:{FED_JAN}",
                                                             "event_contract:KXFEDRATE-26MAR-T4.00"]


async def test_a_finalized_market_is_reported_settled_with_its_result(connector: KalshiConnector,
                                                                     standin: KalshiStandIn) -> None:
    standin.settle_market(FED_JAN, "yes")
    standin.settle_market("KXFEDRATE-26MAR-T4.00", "no")
    ids = [f"event_contract:{t}" for t in (FED_JAN, "KXFEDRATE-26MAR-T4.00", T60, "NOPE-1")]

    listed = {i.instrument_id for i in await connector.instruments()}
    settled = await connector.settlements(ids)

    assert f"event_contract:{FED_JAN}" not in listed
    # T60 is still active (no settlement) and NOPE-1 unknown to the venue (a 404, left out).
    assert [(i.instrument_id, i.status, i.tradeable, i.settlement_price) for i in settled] == [
        (f"event_contract:{FED_JAN}", "finalized", False, Decimal(1)),
        ("event_contract:KXFEDRATE-26MAR-T4.00", "finalized", False, Decimal(0))]


async def test_order_book_is_the_yes_book_with_asks_from_no_bids(connector: KalshiConnector) -> None:
    book = await connector.order_book(f"event_contract:{T60}")

    assert [(b.price, b.size) for b in book.bids] == [(Decimal("0.42"), Decimal(25)), (Decimal("0.41"), Decimal(50)),
                                                      (Decimal("0.40"), Decimal(100))]
    # NO bids 0.56 x 30 and 0.55 x 80 are YES asks 0.44 x 30 and 0.45 x 80.
    assert [(a.price, a.size) for a in book.asks] == [(Decimal("0.44"), Decimal(30)), (Decimal("0.45"), Decimal(80))]


async def test_order_book_depth_is_passed_to_the_venue(connector: KalshiConnector) -> None:
    book = await connector.order_book(f"event_contract:{T60}", depth=1)

    assert [b.price for b in book.bids] == [Decimal("0.42")] and [a.price for a in book.asks] == [Decimal("0.44")]


async def test_streamed_book_is_the_snapshot_updated_by_deltas(connector: KalshiConnector,
                                                               standin: KalshiStandIn) -> None:
    quotes = connector.quotes([f"event_contract:{T60}"])
    await next_within(quotes)
    await wait_until(lambda: connector.stream.book(T60) is not None, "the snapshot", within=5)

    standin.set_top_of_book(T60, Decimal("0.46"), Decimal("0.48"), Decimal(7))
    quote = await until(quotes, lambda q: (q.bid, q.ask) == (Decimal("0.46"), Decimal("0.48")))

    assert (quote.bid_size, quote.ask_size) == (Decimal(7), Decimal(7))
    book = connector.stream.book(T60)
    assert book is not None and book.seq is not None
    assert [(b.price, b.size) for b in book.bids] == [(Decimal("0.46"), Decimal(7))]
    assert [(a.price, a.size) for a in book.asks] == [(Decimal("0.48"), Decimal(7))]
    assert connector.stream.resyncs == 0
    await quotes.aclose()


async def test_sequence_gap_resubscribes_and_rebuilds_the_book_from_a_snapshot(
        connector: KalshiConnector, standin: KalshiStandIn) -> None:
    quotes = connector.quotes([f"event_contract:{T60}"])
    await next_within(quotes)
    await wait_until(lambda: connector.stream.book(T60) is not None, "the snapshot", within=5)

    standin.inject(Fault.SEQUENCE_GAP)
    standin.set_top_of_book(T60, Decimal("0.33"), Decimal("0.35"), Decimal(4))
    await until(quotes, lambda q: (q.bid, q.ask) == (Decimal("0.33"), Decimal("0.35")))

    assert connector.stream.resyncs == 1
    assert standin.ws_commands["unsubscribe"] == 1 and standin.ws_commands["subscribe:orderbook_delta"] == 2
    book = connector.stream.book(T60)
    assert book is not None and [(b.price, b.size) for b in book.bids] == [(Decimal("0.33"), Decimal(4))]
    await quotes.aclose()


async def test_websocket_drop_falls_back_to_polling_then_recovers(connector: KalshiConnector,
                                                                  standin: KalshiStandIn) -> None:
    assert any("polling" in fallback for fallback in connector.capabilities.fallbacks)
    quotes = connector.quotes([f"event_contract:{T60}"])
    await next_within(quotes)
    await wait_until(lambda: connector.stream.book(T60) is not None, "streaming", within=5)

    standin.inject(Fault.DROP_WEBSOCKET, 25)  # the open socket, then the next 24 handshakes
    await eventually_async(lambda: _health_mode(connector, MarketDataMode.POLLING), within=5, what="polling")
    standin.set_top_of_book(T60, Decimal("0.21"), Decimal("0.23"), Decimal(2))
    polled = await until(quotes, lambda q: (q.bid, q.ask) == (Decimal("0.21"), Decimal("0.23")))
    assert not connector.stream.live  # this quote came over REST

    await eventually_async(lambda: _health_mode(connector, MarketDataMode.STREAMING), within=10, what="recovery")
    assert standin.ws_connections == 2 and polled.bid_size == Decimal(2)
    standin.set_top_of_book(T60, Decimal("0.25"), Decimal("0.27"), Decimal(2))
    await until(quotes, lambda q: (q.bid, q.ask) == (Decimal("0.25"), Decimal("0.27")))
    await quotes.aclose()


async def _health_mode(connector: KalshiConnector, mode: MarketDataMode) -> bool:
    return (await connector.health()).market_data_mode is mode


async def test_websocket_error_on_subscribe_leaves_that_market_to_rest(connector: KalshiConnector,
                                                                       standin: KalshiStandIn) -> None:
    async with connector.stream.listen(Channel.ORDERBOOK_DELTA, {"KXNOSUCH-26-X"}):
        await wait_until(lambda: connector.stream.live, "a connection", within=5)
        await wait_until(lambda: not connector.stream.book_live("KXNOSUCH-26-X"), "the refused subscription", within=5)

    assert connector.stream.live and connector.stream.book_live(T60)


async def test_server_pings_keep_the_connection_up(connector: KalshiConnector, standin: KalshiStandIn) -> None:
    quotes = connector.quotes([f"event_contract:{T60}"])
    await next_within(quotes)
    await wait_until(lambda: connector.stream.live, "a connection", within=5)

    await asyncio.sleep(1.0)  # five server pings at the stand-in's 0.2 s heartbeat

    assert connector.stream.live and standin.ws_connections == 1
    await quotes.aclose()


async def test_ticker_channel(connector: KalshiConnector, standin: KalshiStandIn) -> None:
    tickers = connector.stream_tickers([f"event_contract:{T60}"])
    pending = asyncio.ensure_future(next_within(tickers))
    await wait_until(lambda: connector.stream.live, "a connection", within=5)
    await wait_until(lambda: standin.ws_commands["subscribe:ticker"] == 1, "the ticker subscription", within=5)
    await asyncio.sleep(0.05)  # let the subscription be acknowledged

    standin.set_top_of_book(T60, Decimal("0.50"), Decimal("0.52"), Decimal(1))
    update = await pending

    assert (update.instrument_id, update.yes_bid, update.yes_ask) == (f"event_contract:{T60}", Decimal("0.50"),
                                                                     Decimal("0.52"))
    await tickers.aclose()


# --- Rate limits and retries ------------------------------------------------------------------------------------

class RecordingRandom(random.Random):
    def __init__(self) -> None:
        super().__init__(7)
        self.draws: list[tuple[float, float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        value = super().uniform(a, b)
        self.draws.append((a, b, value))
        return value


async def test_rate_limit_without_retry_after_is_retried_with_jittered_backoff(keys: Keys) -> None:
    rng = RecordingRandom()
    async with KalshiStandIn({KEY_ID: keys.public}, reads_per_s=4) as venue:
        async with httpx.AsyncClient() as raw:
            answers = [await raw.get(f"{venue.base_url}/exchange/status") for _ in range(5)]
        refused = [a for a in answers if a.status_code == 429]
        assert refused and all("retry-after" not in a.headers for a in refused)

        kalshi = KalshiConnector(fast_config(venue, keys.pem, read_rate_per_s=1000, retry_base_s=0.05,
                                             retry_cap_s=0.4, retry_attempts=20), rng=rng)
        try:
            results = await asyncio.gather(*(kalshi.balances() for _ in range(8)))
        finally:
            await kalshi.close()

    assert len(results) == 8 and venue.rate_limited > len(refused)
    assert rng.draws and all(low == 0 and 0 <= value <= high <= 0.4 for low, high, value in rng.draws)
    assert len({round(value, 6) for _, _, value in rng.draws}) > 1  # jittered, not one fixed delay


async def test_rate_limit_error_carries_no_retry_after(standin: KalshiStandIn, keys: Keys) -> None:
    kalshi = KalshiConnector(fast_config(standin, keys.pem, retry_attempts=1))
    standin.inject(Fault.RATE_LIMIT)
    try:
        with pytest.raises(RateLimitedError) as caught:
            await kalshi.balances()
    finally:
        await kalshi.close()

    assert caught.value.retry_after_s is None and caught.value.status == 429


# --- Orders -----------------------------------------------------------------------------------------------------

async def test_order_body_maps_buy_to_bid_and_sell_to_ask(connector: KalshiConnector,
                                                         standin: KalshiStandIn) -> None:
    buy = live_order(f"event_contract:{T60}", Decimal(10), Decimal("0.56"))
    sell = live_order(f"event_contract:{T60}", Decimal(3), Decimal("0.61"), side=Side.SELL)

    for order in (buy, sell):
        await connector.place_order(order, authorize(order))

    orders = {o.client_order_id: o for o in await connector.open_orders()}
    assert (orders[buy.client_order_id].side, orders[buy.client_order_id].limit_price) == (Side.BUY, Decimal("0.56"))
    assert orders[sell.client_order_id].side is Side.SELL and orders[sell.client_order_id].quantity == 3
    assert all(o.status is OrderStatus.OPEN and o.venue_status == "resting" for o in orders.values())


async def test_conflict_on_create_is_resolved_by_a_lookup_never_a_second_order(
        connector: KalshiConnector, standin: KalshiStandIn) -> None:
    order = live_order(f"event_contract:{T60}", Decimal(5), Decimal("0.30"))
    first = await connector.place_order(order, authorize(order))

    again = await connector.place_order(order, authorize(order))  # e.g. re-sent after a restart

    assert again.recovered and not first.recovered
    assert again.venue_order_id == first.venue_order_id and again.status is OrderStatus.OPEN
    assert standin.order_count() == 1 and standin.write_calls == 2


async def test_lost_answer_is_recovered_by_client_order_id(connector: KalshiConnector,
                                                           standin: KalshiStandIn) -> None:
    await connector.instruments()
    standin.inject(Fault.LOSE_ORDER_RESPONSE)
    order = live_order(f"event_contract:{T60}", Decimal(5), Decimal("0.30"))

    result = await connector.place_order(order, authorize(order))

    assert result.recovered and standin.order_count() == 1 and standin.write_calls == 2
    assert standin.requests["GET /portfolio/orders"] >= 1


async def test_slow_answer_after_acceptance_is_recovered(connector: KalshiConnector,
                                                         standin: KalshiStandIn) -> None:
    await connector.instruments()
    standin.inject(Fault.SLOW)
    order = live_order(f"event_contract:{T60}", Decimal(5), Decimal("0.30"))

    result = await connector.place_order(order, authorize(order))

    assert result.recovered and standin.order_count() == 1


async def test_cancel_whose_answer_was_late_is_still_a_success(connector: KalshiConnector,
                                                               standin: KalshiStandIn) -> None:
    order = live_order(f"event_contract:{T60}", Decimal(5), Decimal("0.30"))
    placed = await connector.place_order(order, authorize(order))
    standin.inject(Fault.SLOW)

    await connector.cancel_order(order, placed.venue_order_id, authorize(order))

    assert standin.write_calls == 3  # the place, the cancel, its retry (answered 404)
    assert await connector.open_orders() == []


async def test_market_order_is_unsupported_and_never_sent(connector: KalshiConnector,
                                                          standin: KalshiStandIn) -> None:
    intent = OrderIntent(
        trace_id=uuid.uuid4().hex, account_id="live-1", owner=OWNER, strategy_id="s", idempotency_key="m-1",
        instrument_id=f"event_contract:{T60}", side=Side.BUY, order_type=OrderType.MARKET, quantity=Decimal(1),
        requested_mode=ExecutionMode.LIVE, source=IntentSource.API, created_at=datetime.now(UTC))
    now = datetime.now(UTC)
    order = new_order(intent, "APPROVED", "", now).transition(OrderStatus.PENDING_SUBMIT, now,
                                                              effective_mode=ExecutionMode.LIVE)

    with pytest.raises(UnsupportedError):
        await connector.place_order(order, authorize(order))

    assert connector.capabilities.order_types == {OrderType.LIMIT}
    assert standin.write_calls == 0


async def test_prices_are_checked_against_the_markets_ranges_before_any_write(
        connector: KalshiConnector, standin: KalshiStandIn) -> None:
    off_tick = live_order(f"event_contract:{T65}", Decimal("1.5"), Decimal("0.505"))  # the middle range steps 0.01
    sub_penny = live_order(f"event_contract:{T65}", Decimal("1.5"), Decimal("0.955"))  # the top range steps 0.001
    fractional_on_whole = live_order(f"event_contract:{T60}", Decimal("1.5"), Decimal("0.50"))

    for refused in (off_tick, fractional_on_whole):
        with pytest.raises(OrderRejectedError):
            await connector.place_order(refused, authorize(refused))
    assert standin.write_calls == 0

    placed = await connector.place_order(sub_penny, authorize(sub_penny))
    assert placed.status is OrderStatus.OPEN and standin.write_calls == 1


async def test_venue_refusal_is_an_order_rejection(connector: KalshiConnector, standin: KalshiStandIn) -> None:
    closed = live_order("event_contract:KXHIGHNY-26JAN05-T70", Decimal(1), Decimal("0.50"))

    with pytest.raises(OrderRejectedError) as caught:
        await connector.place_order(closed, authorize(closed))

    assert caught.value.status == 400 and caught.value.code == "market_closed"


async def test_partial_fill_maps_to_partially_filled_then_filled_leaves_the_open_orders(
        connector: KalshiConnector, standin: KalshiStandIn) -> None:
    order = live_order(f"event_contract:{T60}", Decimal(5), Decimal("0.30"))
    placed = await connector.place_order(order, authorize(order))

    standin.fill_resting_order(placed.venue_order_id, Decimal(2), Decimal("0.30"))
    [partial] = await connector.open_orders()
    standin.fill_resting_order(placed.venue_order_id, Decimal(3), Decimal("0.30"))

    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.filled_quantity == 2
    assert await connector.open_orders() == []


async def test_positions_are_signed_negative_for_no(connector: KalshiConnector, standin: KalshiStandIn) -> None:
    sell = live_order(f"event_contract:{T60}", Decimal(4), Decimal("0.60"), side=Side.SELL)
    placed = await connector.place_order(sell, authorize(sell))
    standin.fill_resting_order(placed.venue_order_id, Decimal(4), Decimal("0.60"))

    [position] = await connector.positions()

    assert (position.instrument_id, position.venue_symbol, position.quantity) == (f"event_contract:{T60}", T60,
                                                                                   Decimal(-4))


# --- Fees and fills ---------------------------------------------------------------------------------------------

async def test_fee_model_comes_from_the_series_or_the_events_override(connector: KalshiConnector) -> None:
    assert await connector.fee_model(f"event_contract:{T60}") == KalshiFees(charges_makers=False,
                                                                            fee_multiplier=Decimal("1.0"))
    assert await connector.fee_model(f"event_contract:{FED_JAN}") == KalshiFees(charges_makers=True,
                                                                                fee_multiplier=Decimal("0.5"))
    assert await connector.fee_model("event_contract:KXFEDRATE-26MAR-T4.00") == KalshiFees(
        charges_makers=False, fee_multiplier=Decimal("2.0"))
    with pytest.raises(UnsupportedError):
        await connector.fee_model("event_contract:KXFLAT-26-A")


async def test_fill_fee_is_the_venues_fee_cost(connector: KalshiConnector, standin: KalshiStandIn) -> None:
    order = live_order(f"event_contract:{FED_JAN}", Decimal(10), Decimal("0.40"))
    placed = await connector.place_order(order, authorize(order))
    standin.fill_resting_order(placed.venue_order_id, Decimal(10), Decimal("0.40"))

    [fill] = (await connector.fills_since(None)).fills
    model = await connector.fee_model(f"event_contract:{FED_JAN}")
    instrument = next(i for i in await connector.instruments() if i.instrument_id == order.instrument_id)

    assert fill.liquidity is Liquidity.MAKER and fill.client_order_id == order.client_order_id
    assert fill.fee == Decimal("0.03")  # ceil(0.0175 x 0.5 x 10 x 0.4 x 0.6) to the cent
    assert fill.fee == model.fee(instrument, fill.quantity, fill.price, fill.liquidity)


async def test_fills_stream_over_the_websocket_once_each(connector: KalshiConnector,
                                                         standin: KalshiStandIn) -> None:
    order = live_order(f"event_contract:{T60}", Decimal(5), Decimal("0.30"))
    placed = await connector.place_order(order, authorize(order))
    fills = connector.stream_fills(None)
    first = asyncio.ensure_future(next_within(fills))
    await wait_until(lambda: standin.ws_commands["subscribe:fill"] == 1, "subscribe", within=5)
    await asyncio.sleep(0.05)  # let the subscription be acknowledged

    standin.inject(Fault.DUPLICATE_FILL)
    standin.fill_resting_order(placed.venue_order_id, Decimal(2), Decimal("0.30"))
    standin.fill_resting_order(placed.venue_order_id, Decimal(3), Decimal("0.30"))
    received = [await first, await next_within(fills)]

    assert [f.quantity for f in received] == [2, 3]
    assert all(f.client_order_id == order.client_order_id and f.side is Side.BUY for f in received)
    with pytest.raises(TimeoutError):
        await next_within(fills, 0.3)  # the duplicate is not reported
    await fills.aclose()


async def test_fills_during_a_disconnect_are_recovered_on_reconnect(connector: KalshiConnector,
                                                                    standin: KalshiStandIn) -> None:
    order = live_order(f"event_contract:{T60}", Decimal(5), Decimal("0.30"))
    placed = await connector.place_order(order, authorize(order))
    cursor = (await connector.fills_since(None)).cursor
    fills = connector.stream_fills(cursor)
    pending = asyncio.ensure_future(next_within(fills, 10))
    await wait_until(lambda: standin.ws_commands["subscribe:fill"] == 1, "subscribe", within=5)

    standin.inject(Fault.DROP_WEBSOCKET, 5)
    await wait_until(lambda: not connector.stream.live, "the drop", within=5)
    standin.fill_resting_order(placed.venue_order_id, Decimal(5), Decimal("0.30"))  # nobody is connected
    fill: VenueFill = await pending

    assert fill.venue_order_id == placed.venue_order_id and fill.quantity == 5
    assert standin.ws_connections == 2
    await fills.aclose()


async def test_public_trades_are_read_with_the_takers_side(connector: KalshiConnector,
                                                           standin: KalshiStandIn) -> None:
    order = live_order(f"event_contract:{T60}", Decimal(2), Decimal("0.30"))
    placed = await connector.place_order(order, authorize(order))
    standin.fill_resting_order(placed.venue_order_id, Decimal(2), Decimal("0.30"))

    [trade] = await connector.trades(f"event_contract:{T60}", since=datetime(2026, 1, 1, tzinfo=UTC))

    assert (trade.price, trade.quantity, trade.taker_side) == (Decimal("0.30"), Decimal(2), Side.SELL)


# --- Secrets ----------------------------------------------------------------------------------------------------

async def test_key_material_and_signatures_never_reach_logs_or_errors(
        keys: Keys, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    async with KalshiStandIn({KEY_ID: keys.public}, ws_heartbeat_s=0.2) as venue:
        good = KalshiConnector(fast_config(venue, keys.pem))
        bad = KalshiConnector(fast_config(venue, keys.other_pem))
        try:
            await good.health()
            order = live_order(f"event_contract:{T60}", Decimal(1), Decimal("0.30"))
            await good.place_order(order, authorize(order))
            quotes = good.quotes([f"event_contract:{T60}"])
            await next_within(quotes)
            await wait_until(lambda: good.stream.live, "a signed handshake", within=5)
            await quotes.aclose()
            for failing in (bad.balances(), bad.order_book(f"event_contract:{T60}")):
                try:
                    await failing
                except AuthenticationError as exc:
                    errors.append(f"{exc} {exc!r}")
            errors.append(repr(fast_config(venue, keys.pem)) + repr(fast_config(venue, keys.pem).model_dump()))
        finally:
            await good.close()
            await bad.close()
        signatures = venue.signatures

    captured = capsys.readouterr()
    haystack = "\n".join([caplog.text, captured.out, captured.err, *errors])
    key_lines = [line for pem in (keys.pem, keys.other_pem) for line in pem.splitlines() if "-----" not in line]
    assert signatures and all(signatures)
    assert not [s for s in signatures if s in haystack]
    assert not [line for line in key_lines if line in haystack]
    assert len(errors) >= 3 and "httpcore" in haystack  # the failures and the HTTP debug log were captured
