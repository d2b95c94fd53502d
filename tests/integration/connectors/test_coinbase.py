"""The Coinbase connector against its stand-in: the shared contract, then Coinbase-specific behaviour."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from connectors.coinbase import CoinbaseConfig, CoinbaseConnector
from connectors.errors import (
    AuthenticationError,
    OrderRejectedError,
    RateLimitedError,
    UnsupportedError,
)
from core.clock import ManualClock
from core.market import Quote
from core.orders import OrderStatus
from core.types import Liquidity, OrderType, Side, TimeInForce
from core.venue import MarketDataMode, VenueOrder
from tests.integration.connectors.contract import ConnectorContract, authorize, live_order
from tests.kit.waiting import eventually_async
from tests.standins.base import Fault
from tests.standins.coinbase import CoinbaseStandIn, GeneratedKey, generate_key

pytestmark = pytest.mark.asyncio(loop_scope="session")

BTC = "crypto_spot:BTC-USD"
ETH = "crypto_spot:ETH-USD"


@pytest.fixture(scope="session")
def es256_key() -> GeneratedKey:
    return generate_key("ES256")


@pytest.fixture(scope="session")
def eddsa_key() -> GeneratedKey:
    return generate_key("EdDSA")


@pytest.fixture
async def standin(es256_key: GeneratedKey, eddsa_key: GeneratedKey) -> AsyncIterator[CoinbaseStandIn]:
    keys = {es256_key.key_name: es256_key.public_key, eddsa_key.key_name: eddsa_key.public_key}
    async with CoinbaseStandIn(keys, heartbeat_interval_s=0.1, slow_delay_s=0.6) as running:
        yield running


def fast_config(standin: CoinbaseStandIn, key: GeneratedKey, **overrides: Any) -> CoinbaseConfig:
    """Production defaults scaled down so faults resolve in milliseconds."""
    settings: dict[str, Any] = {
        "rest_url": standin.base_url, "ws_market_url": standin.ws_url, "ws_user_url": standin.ws_user_url,
        "key_name": key.key_name, "private_key": SecretStr(key.secret), "algorithm": key.algorithm,
        "timeout_s": 0.5, "retry_base_s": 0.01, "retry_cap_s": 0.05, "ws_open_timeout_s": 1.0,
        "ws_reconnect_base_s": 0.02, "ws_reconnect_cap_s": 0.1, "ws_stale_after_s": 1.0, "poll_interval_s": 0.05,
        **overrides}
    return CoinbaseConfig(**settings)


@pytest.fixture
async def connector(standin: CoinbaseStandIn, es256_key: GeneratedKey) -> AsyncIterator[CoinbaseConnector]:
    running = CoinbaseConnector(fast_config(standin, es256_key))
    yield running
    await running.close()


@pytest.fixture
def order_spec() -> tuple[str, Decimal, Decimal]:
    """A buy well below the 95000 bid: it rests."""
    return BTC, Decimal("0.001"), Decimal("50000.00")


@pytest.fixture
async def bad_credentials_connector(standin: CoinbaseStandIn) -> AsyncIterator[CoinbaseConnector]:
    stranger = generate_key("ES256")
    running = CoinbaseConnector(fast_config(standin, stranger))
    yield running
    await running.close()


class TestCoinbaseContract(ConnectorContract):
    """The shared contract, run against the Coinbase stand-in."""


# ---- helpers ------------------------------------------------------------------------------------------------


class QuoteCollector:
    """Drains `connector.quotes()` in the background so tests can look at what arrived."""

    def __init__(self, connector: CoinbaseConnector, instrument_ids: list[str]) -> None:
        self.quotes: list[Quote] = []
        self._stream = connector.quotes(instrument_ids)
        self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        async for quote in self._stream:
            self.quotes.append(quote)

    def saw(self, bid: Decimal, ask: Decimal) -> bool:
        return any(q.bid == bid and q.ask == ask for q in self.quotes)

    async def stop(self) -> None:
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def btc_quotes(connector: CoinbaseConnector) -> AsyncIterator[QuoteCollector]:
    collector = QuoteCollector(connector, [BTC])
    await until(lambda: _streaming(connector), "the market socket to stream")
    yield collector
    await collector.stop()


def _streaming(connector: CoinbaseConnector) -> bool:
    return connector.market_feed.stream.streaming and connector.streamed_book(BTC) is not None


async def until(check: Callable[[], object], what: str, within: float = 5.0) -> None:
    async def probe() -> bool:
        return bool(check())
    await eventually_async(probe, within=within, what=what)


def _claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


def _book_matches(connector: CoinbaseConnector, standin: CoinbaseStandIn) -> bool:
    book = connector.streamed_book(BTC, depth=100)
    if book is None:
        return False
    bids, asks = standin.book("BTC-USD")
    return [(b.price, b.size) for b in book.bids] == bids and [(a.price, a.size) for a in book.asks] == asks


# ---- auth ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
async def test_rest_jwt_claims_when_signed_with_each_algorithm_then_verified_by_the_venue(
        standin: CoinbaseStandIn, es256_key: GeneratedKey, eddsa_key: GeneratedKey, algorithm: str) -> None:
    key = es256_key if algorithm == "ES256" else eddsa_key
    connector = CoinbaseConnector(fast_config(standin, key))
    try:
        assert await connector.balances()
    finally:
        await connector.close()
    header, claims = _claims(standin.tokens[-1])
    assert header["alg"] == algorithm and header["kid"] == key.key_name
    int(header["nonce"], 16)
    assert claims["sub"] == key.key_name and claims["iss"] == "cdp"
    assert claims["exp"] - claims["nbf"] == 120
    # The request carried ?limit=250, the uri claim carries no query string.
    assert standin.requests[-1][1].startswith("/api/v3/brokerage/accounts?")
    assert claims["uri"] == "GET 127.0.0.1/api/v3/brokerage/accounts"


async def test_each_request_gets_a_fresh_jwt(connector: CoinbaseConnector, standin: CoinbaseStandIn) -> None:
    await connector.balances()
    await connector.balances()
    first, second = standin.tokens[-2:]
    assert first != second
    assert _claims(first)[0]["nonce"] != _claims(second)[0]["nonce"]


async def test_websocket_subscribe_jwts_are_fresh_and_carry_no_uri(
        connector: CoinbaseConnector, standin: CoinbaseStandIn, btc_quotes: QuoteCollector) -> None:
    ws_tokens = [token for token in standin.tokens if "uri" not in _claims(token)[1]]
    assert len(ws_tokens) == 4  # level2, ticker, market_trades, heartbeats
    assert len({_claims(token)[0]["nonce"] for token in ws_tokens}) == 4


async def test_token_from_a_clock_far_behind_is_refused_as_authentication_error(
        standin: CoinbaseStandIn, es256_key: GeneratedKey) -> None:
    behind = ManualClock(datetime.now(UTC) - timedelta(minutes=10))
    connector = CoinbaseConnector(fast_config(standin, es256_key), clock=behind)
    try:
        with pytest.raises(AuthenticationError) as caught:
            await connector.balances()
        health = await connector.health()
    finally:
        await connector.close()
    assert caught.value.status == 401
    assert health.reachable and not health.authenticated


# ---- market data --------------------------------------------------------------------------------------------


async def test_instruments_are_spot_products_with_venue_increments(connector: CoinbaseConnector) -> None:
    instruments = {i.instrument_id: i for i in await connector.instruments()}
    assert set(instruments) == {BTC, ETH, "crypto_spot:SOL-USD"}  # the future is not a spot instrument
    btc = instruments[BTC]
    assert btc.tick_size == Decimal("0.01") and btc.lot_size == Decimal("0.00000001")
    assert btc.quote_currency == "USD" and btc.venue_symbols == {connector.venue: "BTC-USD"}
    assert not instruments["crypto_spot:SOL-USD"].tradeable


async def test_level2_snapshot_and_updates_build_the_venue_book(
        connector: CoinbaseConnector, standin: CoinbaseStandIn, btc_quotes: QuoteCollector) -> None:
    assert _book_matches(connector, standin)
    standin.update_book("BTC-USD", [("bid", Decimal("95000.00"), Decimal(0)),       # best bid leaves
                                    ("bid", Decimal("94999.99"), Decimal("2.5")),   # new size at the new best
                                    ("offer", Decimal("95000.50"), Decimal("0.1")),  # a better ask
                                    ("offer", Decimal("95001.04"), Decimal(0))])     # a deep level goes
    await until(lambda: _book_matches(connector, standin), "book in sync")
    await until(lambda: btc_quotes.saw(Decimal("94999.99"), Decimal("95000.50")), "the new top of book as a quote")
    last = btc_quotes.quotes[-1]
    assert (last.bid_size, last.ask_size) == (Decimal("2.5"), Decimal("0.1"))
    assert [q.seq for q in btc_quotes.quotes] == sorted({q.seq for q in btc_quotes.quotes})


async def test_order_book_is_served_from_the_stream_while_in_sync(
        connector: CoinbaseConnector, standin: CoinbaseStandIn, btc_quotes: QuoteCollector) -> None:
    before = len(standin.requests)
    book = await connector.order_book(BTC, depth=3)
    assert len(standin.requests) == before
    assert [level.price for level in book.bids] == [Decimal("95000"), Decimal("94999.99"), Decimal("94999.98")]


async def test_sequence_gap_resubscribes_level2_and_rebuilds_the_book(
        connector: CoinbaseConnector, standin: CoinbaseStandIn, btc_quotes: QuoteCollector) -> None:
    assert standin.subscribe_count("level2") == 1
    standin.inject(Fault.SEQUENCE_GAP)
    # This update arrives with a skipped sequence number: it is dropped, and the new snapshot carries it.
    standin.update_book("BTC-USD", [("bid", Decimal("95000.20"), Decimal("1.25"))])
    await until(lambda: standin.subscribe_count("level2") == 2, "resubscribe")
    await until(lambda: _book_matches(connector, standin), "rebuilt book")
    assert connector.streamed_book(BTC) is not None
    assert connector.market_feed.stream.resyncs == 1
    assert connector.market_feed.stream.reconnects == 0


async def test_websocket_drop_falls_back_to_polling_then_recovers(
        connector: CoinbaseConnector, standin: CoinbaseStandIn, btc_quotes: QuoteCollector) -> None:
    assert (await connector.health()).market_data_mode is MarketDataMode.STREAMING
    standin.ws_available = False
    standin.inject(Fault.DROP_WEBSOCKET)

    async def polling() -> bool:
        return (await connector.health()).market_data_mode is MarketDataMode.POLLING
    await eventually_async(polling, within=5, what="health to report polling")
    assert "polling" in (await connector.health()).detail
    assert connector.streamed_book(BTC) is None
    # Quotes keep coming while the socket is down: from REST best_bid_ask.
    standin.set_top_of_book("BTC-USD", Decimal("96000.00"), Decimal("96000.10"), Decimal("0.3"))
    await until(lambda: btc_quotes.saw(Decimal("96000"), Decimal("96000.1")), "a polled quote")
    assert any(method == "GET" and path.startswith("/api/v3/brokerage/best_bid_ask")
               for method, path in standin.requests)

    standin.ws_available = True

    async def streaming() -> bool:
        return (await connector.health()).market_data_mode is MarketDataMode.STREAMING
    await eventually_async(streaming, within=5, what="the socket to come back")
    standin.set_top_of_book("BTC-USD", Decimal("97000.00"), Decimal("97000.10"), Decimal("0.7"))
    await until(lambda: btc_quotes.saw(Decimal("97000"), Decimal("97000.1")), "a streamed quote after recovery")
    await until(lambda: _book_matches(connector, standin), "book after recovery")
    assert connector.capabilities.fallbacks


async def test_quiet_socket_is_reconnected(connector: CoinbaseConnector, standin: CoinbaseStandIn,
                                           btc_quotes: QuoteCollector) -> None:
    standin.heartbeat_interval_s = 30.0  # no heartbeats: the socket goes quiet past ws_stale_after_s
    await until(lambda: connector.market_feed.stream.reconnects >= 1, "a reconnect")
    standin.heartbeat_interval_s = 0.1
    await until(lambda: _streaming(connector), "streaming again")


async def test_malformed_stream_message_drops_the_socket_and_reconnects(
        connector: CoinbaseConnector, standin: CoinbaseStandIn, btc_quotes: QuoteCollector) -> None:
    standin.send_raw("market", {"channel": "l2_data", "timestamp": "2026-01-01T00:00:00Z", "sequence_num": 999,
                                "events": [{"type": "update", "product_id": "BTC-USD", "updates": [
                                    {"side": "sideways", "price_level": 1.5}]}]})
    await until(lambda: connector.market_feed.stream.reconnects >= 1, "a reconnect")
    await until(lambda: _streaming(connector), "streaming again")


async def test_public_trades_stream(connector: CoinbaseConnector, standin: CoinbaseStandIn,
                                    btc_quotes: QuoteCollector) -> None:
    trades = connector.trades([BTC])
    first = asyncio.ensure_future(anext(trades))
    await asyncio.sleep(0.05)
    standin.trade("BTC-USD", Decimal("95000.50"), Decimal("0.02"), "BUY")
    tick = await asyncio.wait_for(first, 5)
    await trades.aclose()
    assert (tick.instrument_id, tick.price, tick.size, tick.side) == (BTC, Decimal("95000.5"), Decimal("0.02"),
                                                                       Side.BUY)


# ---- REST resilience ----------------------------------------------------------------------------------------


async def test_429_is_retried_after_the_venue_reset_time(connector: CoinbaseConnector,
                                                         standin: CoinbaseStandIn) -> None:
    standin.inject(Fault.RATE_LIMIT, 2)  # each 429 says x-ratelimit-reset: 0.050
    started = asyncio.get_running_loop().time()
    assert await connector.balances()
    assert asyncio.get_running_loop().time() - started >= 0.1
    assert standin.rate_limited == 2
    assert sum(1 for _, path in standin.requests if path.startswith("/api/v3/brokerage/accounts")) == 3


async def test_429_beyond_the_retry_budget_is_a_rate_limited_error(connector: CoinbaseConnector,
                                                                   standin: CoinbaseStandIn) -> None:
    standin.inject(Fault.RATE_LIMIT, 20)
    with pytest.raises(RateLimitedError):
        await connector.balances()


async def test_venue_rate_limit_is_survived_by_backing_off(standin: CoinbaseStandIn,
                                                           es256_key: GeneratedKey) -> None:
    restricted = CoinbaseStandIn({es256_key.key_name: es256_key.public_key}, rate_per_s=20.0, burst=2.0)
    async with restricted:
        greedy = CoinbaseConnector(fast_config(restricted, es256_key, rest_rate_per_s=1000.0, rest_burst=1000.0,
                                               retry_attempts=12))
        try:
            results = await asyncio.gather(*(greedy.balances() for _ in range(8)))
        finally:
            await greedy.close()
    assert all(results)
    assert restricted.rate_limited > 0


async def test_accounts_are_read_across_pages(connector: CoinbaseConnector, standin: CoinbaseStandIn) -> None:
    standin.max_page = 2
    for index in range(5):
        standin.add_account(f"X{index}", Decimal(index + 1))
    balances = {b.currency: b for b in await connector.balances()}
    assert {"USD", "BTC", "ETH", "DOGE", "X0", "X4"} <= set(balances)
    assert balances["X4"].total == Decimal(5)
    assert sum(1 for _, path in standin.requests if path.startswith("/api/v3/brokerage/accounts")) == 5


async def test_positions_are_non_zero_base_balances(connector: CoinbaseConnector, standin: CoinbaseStandIn,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    standin.add_account("BTC", Decimal("0.25"), hold=Decimal("0.05"))  # a second BTC account adds up
    positions = await connector.positions()
    assert [(p.instrument_id, p.quantity) for p in positions] == [(BTC, Decimal("1.80"))]


async def test_open_orders_are_read_across_pages_with_mapped_statuses(
        connector: CoinbaseConnector, standin: CoinbaseStandIn) -> None:
    standin.max_page = 2
    placed = []
    for _ in range(5):
        order = live_order(BTC, Decimal("0.002"), Decimal("50000.00"))
        placed.append((order, await connector.place_order(order, authorize(order))))
    standin.fill_resting_order(placed[0][1].venue_order_id, Decimal("0.001"), Decimal("50000.00"))
    standin.fill_resting_order(placed[1][1].venue_order_id, Decimal("0.002"), Decimal("50000.00"))
    await connector.cancel_order(placed[2][0], placed[2][1].venue_order_id, authorize(placed[2][0]))
    open_orders = {o.client_order_id: o for o in await connector.open_orders()}
    assert set(open_orders) == {placed[i][0].client_order_id for i in (0, 3, 4)}
    partial = open_orders[placed[0][0].client_order_id]
    assert partial.status is OrderStatus.PARTIALLY_FILLED and partial.venue_status == "OPEN"
    assert (partial.quantity, partial.filled_quantity, partial.limit_price) == (
        Decimal("0.002"), Decimal("0.001"), Decimal("50000"))


# ---- orders -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["refuse", "conflict"])
async def test_resending_a_placed_order_recovers_it_instead_of_placing_twice(
        connector: CoinbaseConnector, standin: CoinbaseStandIn, answer: str) -> None:
    standin.duplicate_answer = "refuse" if answer == "refuse" else "conflict"
    order = live_order(BTC, Decimal("0.001"), Decimal("50000.00"))
    first = await connector.place_order(order, authorize(order))
    again = await connector.place_order(order, authorize(order))
    assert not first.recovered and again.recovered
    assert again.venue_order_id == first.venue_order_id and again.status is OrderStatus.OPEN
    assert standin.order_count() == 1 and standin.write_calls == 2


async def test_lost_order_answer_is_looked_up_before_any_resend(connector: CoinbaseConnector,
                                                                standin: CoinbaseStandIn) -> None:
    standin.inject(Fault.LOSE_ORDER_RESPONSE)
    order = live_order(BTC, Decimal("0.001"), Decimal("50000.00"))
    result = await connector.place_order(order, authorize(order))
    assert result.recovered and result.status is OrderStatus.OPEN
    assert standin.write_calls == 1 and standin.order_count() == 1


async def test_slow_order_answer_is_recovered(connector: CoinbaseConnector, standin: CoinbaseStandIn) -> None:
    standin.inject(Fault.SLOW)  # 0.6 s, past the 0.5 s client timeout
    order = live_order(BTC, Decimal("0.001"), Decimal("50000.00"))
    result = await connector.place_order(order, authorize(order))
    assert result.recovered
    assert standin.write_calls == 1 and standin.order_count() == 1


async def test_malformed_order_answer_is_resolved_by_lookup(connector: CoinbaseConnector,
                                                            standin: CoinbaseStandIn) -> None:
    standin.inject(Fault.MALFORMED)
    order = live_order(BTC, Decimal("0.001"), Decimal("50000.00"))
    result = await connector.place_order(order, authorize(order))
    assert result.recovered and standin.order_count() == 1 and standin.write_calls == 1


async def test_refused_order_is_an_order_rejected_error_and_not_retried(connector: CoinbaseConnector,
                                                                        standin: CoinbaseStandIn) -> None:
    order = live_order(BTC, Decimal("0.001"), Decimal("50000.005"))
    with pytest.raises(OrderRejectedError) as caught:
        await connector.place_order(order, authorize(order))
    assert caught.value.code == "INVALID_PRICE_PRECISION"
    assert standin.write_calls == 1 and standin.order_count() == 0


@pytest.mark.parametrize(("order_type", "tif"), [(OrderType.MARKET, TimeInForce.GTC),
                                                 (OrderType.LIMIT, TimeInForce.DAY)])
async def test_unsupported_order_combinations_are_refused_before_any_write(
        connector: CoinbaseConnector, standin: CoinbaseStandIn, order_type: OrderType, tif: TimeInForce) -> None:
    order = live_order(BTC, Decimal("0.001"), Decimal("50000.00"))
    order = order.model_copy(update={"order_type": order_type, "time_in_force": tif,
                                     "limit_price": None if order_type is OrderType.MARKET else order.limit_price})
    with pytest.raises(UnsupportedError):
        await connector.place_order(order, authorize(order))
    assert standin.write_calls == 0


async def test_marketable_orders_fill_as_taker_with_the_venue_commission(connector: CoinbaseConnector,
                                                                         standin: CoinbaseStandIn) -> None:
    market = live_order(BTC, Decimal("0.01"), Decimal("1"), side=Side.SELL)
    market = market.model_copy(update={"order_type": OrderType.MARKET, "time_in_force": TimeInForce.IOC,
                                       "limit_price": None})
    fok = live_order(ETH, Decimal("0.5"), Decimal("3600.00"))
    fok = fok.model_copy(update={"time_in_force": TimeInForce.FOK})
    for order in (market, fok):
        await connector.place_order(order, authorize(order))
    fills = {f.instrument_id: f for f in (await connector.fills_since(None)).fills}
    assert fills[BTC].side is Side.SELL and fills[BTC].price == Decimal("95000")
    assert fills[BTC].fee == Decimal("5.7") and fills[BTC].liquidity is Liquidity.TAKER  # 0.01 x 95000 x 0.6%
    assert fills[ETH].price == Decimal("3500.5") and fills[ETH].quantity == Decimal("0.5")
    assert await connector.open_orders() == []


async def test_cancel_of_an_order_the_venue_no_longer_has_open_is_refused(connector: CoinbaseConnector,
                                                                          standin: CoinbaseStandIn) -> None:
    order = live_order(BTC, Decimal("0.001"), Decimal("50000.00"))
    placed = await connector.place_order(order, authorize(order))
    standin.fill_resting_order(placed.venue_order_id, Decimal("0.001"), Decimal("50000.00"))
    with pytest.raises(OrderRejectedError) as caught:
        await connector.cancel_order(order, placed.venue_order_id, authorize(order))
    assert caught.value.code == "UNKNOWN_CANCEL_ORDER"


# ---- fills, fees, user channel ------------------------------------------------------------------------------


async def test_fills_are_read_across_pages_and_the_cursor_only_returns_new_ones(
        connector: CoinbaseConnector, standin: CoinbaseStandIn) -> None:
    standin.max_page = 2
    order = live_order(BTC, Decimal("0.005"), Decimal("50000.00"))
    placed = await connector.place_order(order, authorize(order))
    for _ in range(3):
        standin.fill_resting_order(placed.venue_order_id, Decimal("0.001"), Decimal("50000.00"))
    first = await connector.fills_since(None)
    assert len(first.fills) == 3 and first.cursor is not None
    assert all(f.fee == Decimal("0.2") and f.liquidity is Liquidity.MAKER for f in first.fills)
    assert [f.ts for f in first.fills] == sorted(f.ts for f in first.fills)
    assert (await connector.fills_since(first.cursor)).fills == ()
    standin.fill_resting_order(placed.venue_order_id, Decimal("0.002"), Decimal("50000.00"))
    later = await connector.fills_since(first.cursor)
    assert [f.quantity for f in later.fills] == [Decimal("0.002")]
    assert any("start_sequence_timestamp" in path for _, path in standin.requests)


async def test_fee_rates_come_from_the_transaction_summary(connector: CoinbaseConnector,
                                                           standin: CoinbaseStandIn) -> None:
    standin.maker_fee_rate, standin.taker_fee_rate = Decimal("0.0025"), Decimal("0.004")
    fees = await connector.fee_rates()
    assert (fees.maker_rate, fees.taker_rate) == (Decimal("0.0025"), Decimal("0.004"))


async def test_user_channel_reports_open_orders_then_the_fill(connector: CoinbaseConnector,
                                                              standin: CoinbaseStandIn) -> None:
    order = live_order(BTC, Decimal("0.001"), Decimal("50000.00"))
    placed = await connector.place_order(order, authorize(order))
    updates = connector.order_updates()
    snapshot = await asyncio.wait_for(anext(updates), 5)
    assert (snapshot.venue_order_id, snapshot.status) == (placed.venue_order_id, OrderStatus.OPEN)
    standin.inject(Fault.DUPLICATE_FILL)
    standin.fill_resting_order(placed.venue_order_id, Decimal("0.001"), Decimal("50000.00"))
    seen: list[VenueOrder] = [await asyncio.wait_for(anext(updates), 5) for _ in range(2)]
    await updates.aclose()
    # Order states are full states: a repeated one changes nothing.
    assert {(u.status, u.filled_quantity) for u in seen} == {(OrderStatus.FILLED, Decimal("0.001"))}
    user_tokens = [t for t in standin.tokens if "uri" not in _claims(t)[1]]
    assert user_tokens  # the user channel is authenticated


# ---- secrets ------------------------------------------------------------------------------------------------


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


async def test_secrets_never_appear_in_logs_or_errors(
        standin: CoinbaseStandIn, es256_key: GeneratedKey, eddsa_key: GeneratedKey,
        captured_logs: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    errors: list[str] = []
    connectors = [CoinbaseConnector(fast_config(standin, key)) for key in (es256_key, eddsa_key)]
    # A connector whose key the venue does not know: every answer is a refusal.
    stranger = CoinbaseConnector(fast_config(standin, generate_key("EdDSA", key_name=es256_key.key_name)))
    try:
        for connector in connectors:
            await connector.balances()
            quotes = connector.quotes([BTC])
            await asyncio.wait_for(anext(quotes), 5)
            await quotes.aclose()
        for fault in (Fault.SERVER_ERROR, Fault.MALFORMED, Fault.RATE_LIMIT):
            standin.inject(fault, 20)
            try:
                await connectors[0].balances()
            except Exception as exc:
                errors.append(f"{exc!r} {exc} {getattr(exc, 'raw_body', '')}")
            standin.inject(fault, -standin._faults[fault])  # clear what is left of it
        try:
            await stranger.balances()
        except AuthenticationError as exc:
            errors.append(f"{exc!r} {exc}")
        errors.append((await stranger.health()).detail)
        updates = stranger.order_updates()  # the user channel refuses the token: logged, retried
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(updates), 0.3)
        await updates.aclose()
        errors.extend(repr(c) for c in connectors)
        errors.append(repr(fast_config(standin, es256_key)))
    finally:
        for connector in (*connectors, stranger):
            await connector.close()
    out = capsys.readouterr()
    haystack = "\n".join([captured_logs.text, out.out, out.err, *errors])
    assert standin.tokens
    assert "coinbase.ws_down" in haystack and "coinbase.http_error" in haystack  # the logs were captured
    secrets = [*standin.tokens, es256_key.secret, eddsa_key.secret,
               *(line for line in es256_key.secret.splitlines() if "PRIVATE KEY" not in line)]
    leaked = [secret[:16] for secret in secrets if secret and secret in haystack]
    assert leaked == []


