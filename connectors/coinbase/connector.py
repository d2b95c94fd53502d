"""The Coinbase Advanced Trade connector: the shared Connector contract filled in for Coinbase spot.

Market data streams over the market websocket (level2 books, quotes at each top-of-book change); while the socket
is down, `quotes()` polls REST best_bid_ask and `health()` says `polling`. Orders are placed with the order's
client order id; a lost answer or a "duplicate" refusal is resolved by looking the order up, never by a second
placement.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import httpx

from connectors.base import Connector
from connectors.coinbase.auth import JwtSigner
from connectors.coinbase.client import (
    Listener,
    MarketDataFeed,
    QuoteSequencer,
    RestClient,
    UserOrderFeed,
    malformed,
    next_item,
)
from connectors.coinbase.config import CoinbaseConfig
from connectors.coinbase.constants import (
    ACCOUNTS,
    ACCOUNTS_PAGE_LIMIT,
    BEST_BID_ASK,
    CANCEL_ALREADY_REQUESTED,
    DUPLICATE_ORDER_CODES,
    FILLS,
    FILLS_PAGE_LIMIT,
    OPEN_STATUS_QUERY,
    ORDERS,
    ORDERS_BATCH_CANCEL,
    ORDERS_HISTORICAL,
    ORDERS_PAGE_LIMIT,
    PRODUCT_BOOK,
    PRODUCTS,
    TRANSACTION_SUMMARY,
)
from connectors.coinbase.parsing import (
    FillCursor,
    TradeTick,
    balances_from_accounts,
    create_order_body,
    fills_after,
    instrument_id_for,
    instruments_from_products,
    order_book_from_pricebook,
    positions_from_balances,
    product_id_for,
    quote_from_pricebook,
    rate_fees_from_summary,
    spot_products_by_base,
    venue_fill_from_fill,
    venue_order_from_historical,
)
from connectors.coinbase.schemas import (
    AccountsResponse,
    BestBidAskResponse,
    CancelResponse,
    CreateOrderResponse,
    FillsResponse,
    HistoricalOrder,
    OrdersResponse,
    ProductBookResponse,
    ProductsResponse,
    TransactionSummary,
)
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    DuplicateClientOrderIdError,
    MalformedResponseError,
    OrderRejectedError,
    RetryableError,
    UnsupportedError,
    VenueServerError,
    VenueUnavailableError,
)
from connectors.http import redact
from connectors.resilience import with_retries
from core.clock import Clock, WallClock
from core.fees import RateFees
from core.instruments import AssetClass, Instrument, Venue
from core.market import Quote
from core.orders import Order, OrderStatus
from core.types import OrderType, TimeInForce
from core.venue import (
    Balance,
    Capabilities,
    ConnectorHealth,
    FillPage,
    MarketDataMode,
    OrderBook,
    PlaceResult,
    VenueOrder,
    VenuePosition,
)
from tradestream.logging import get_logger

log = get_logger(__name__)

VENUE = Venue.COINBASE
T = TypeVar("T")


class OrderNotListedError(RetryableError):
    """The venue refused a client order id as taken but does not list the order yet (its listing may lag)."""


class CoinbaseConnector(Connector):
    venue = VENUE
    capabilities = Capabilities(
        venue=VENUE, asset_classes=frozenset({AssetClass.CRYPTO_SPOT}),
        order_types=frozenset({OrderType.MARKET, OrderType.LIMIT}),
        time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
        streaming_market_data=True,
        # The user channel carries order states, not per-fill trade ids: fills come from REST (fills_since).
        streaming_fills=False,
        fractional_quantities=True,
        fallbacks=("market_data: REST polling of best_bid_ask while the market data websocket is down",))

    def __init__(self, config: CoinbaseConfig, *, clock: Clock | None = None,
                 transport: httpx.AsyncBaseTransport | None = None, rng: random.Random | None = None) -> None:
        self._config = config
        self._clock = clock or WallClock()
        self._rng = rng or random.Random()
        self._signer = JwtSigner(config.key_name, config.private_key, config.algorithm, config.uri_host,
                                 self._clock)
        self._rest = RestClient(config, self._signer.headers, transport=transport, rng=self._rng)
        self._sequencer = QuoteSequencer()
        self._market: MarketDataFeed | None = None
        self._user: UserOrderFeed | None = None
        self._products_by_base: dict[str, str] | None = None

    @property
    def market_feed(self) -> MarketDataFeed:
        if self._market is None:
            self._market = MarketDataFeed(self._config, self._signer.ws_token, self._sequencer, self._rng)
        return self._market

    @property
    def user_feed(self) -> UserOrderFeed:
        if self._user is None:
            self._user = UserOrderFeed(self._config, self._signer.ws_token, self._rng)
        return self._user

    async def close(self) -> None:
        for feed in (self._market, self._user):
            if feed is not None:
                await feed.stream.close()
        await self._rest.close()

    # ---- reads ----------------------------------------------------------------------------------------------

    async def health(self) -> ConnectorHealth:
        started = time.monotonic()
        reachable = authenticated = False
        detail = []
        try:
            # Cheapest authenticated read; not retried, so health tells how the venue answers now.
            await self._rest.get(ACCOUNTS, AccountsResponse, {"limit": 1}, retry=False)
            reachable = authenticated = True
        except AuthenticationError as exc:
            reachable = True
            detail.append(str(exc))
        except ConnectorError as exc:
            detail.append(str(exc))
        latency_ms = (time.monotonic() - started) * 1000 if reachable else None
        # Without a market data subscription nothing is polled either: only a subscribed feed whose socket is
        # down is served by the REST fallback.
        feed = self._market
        polling = feed is not None and not feed.stream.streaming
        if feed is not None and polling:
            detail.append(f"market data websocket down ({feed.stream.down_reason}): polling REST")
        return ConnectorHealth(
            venue=VENUE, reachable=reachable, authenticated=authenticated,
            market_data_mode=MarketDataMode.POLLING if polling else MarketDataMode.STREAMING,
            latency_ms=latency_ms, detail="; ".join(detail), checked_at=self._clock.now())

    async def instruments(self) -> list[Instrument]:
        return (await self._load_products())[0]

    async def _load_products(self) -> tuple[list[Instrument], dict[str, str]]:
        response = await self._rest.get(PRODUCTS, ProductsResponse, {"product_type": "SPOT"})
        instruments, by_base = self._parsed(
            lambda: (instruments_from_products(response.products),
                     spot_products_by_base(response.products, self._config.quote_currency)),
            f"GET {PRODUCTS}", response.model_dump(mode="json"))
        self._products_by_base = by_base
        return instruments, by_base

    async def quotes(self, instrument_ids: Sequence[str]) -> AsyncGenerator[Quote, None]:
        product_ids = [product_id_for(instrument_id) for instrument_id in instrument_ids]
        feed = self.market_feed
        listener: Listener[Quote] = Listener(frozenset(instrument_ids))
        feed.quote_listeners.add(listener)
        try:
            await feed.ensure(product_ids)
            while True:
                if feed.stream.streaming:
                    quote = await next_item(listener, self._config.poll_interval_s)
                    if quote is not None:
                        yield quote
                    continue
                # Socket down: anything queued predates the outage and would arrive out of order.
                listener.clear()
                for quote in await self._poll_quotes(product_ids):
                    yield quote
                await feed.stream.wait_changed(self._config.poll_interval_s)
        finally:
            feed.quote_listeners.discard(listener)

    async def trades(self, instrument_ids: Sequence[str]) -> AsyncGenerator[TradeTick, None]:
        """Public trades from the market_trades channel (streamed only: no polling fallback)."""
        feed = self.market_feed
        listener: Listener[TradeTick] = Listener(frozenset(instrument_ids))
        feed.trade_listeners.add(listener)
        try:
            await feed.ensure(product_id_for(instrument_id) for instrument_id in instrument_ids)
            while True:
                yield await listener.queue.get()
        finally:
            feed.trade_listeners.discard(listener)

    async def order_updates(self) -> AsyncGenerator[VenueOrder, None]:
        """Order states from the user channel: the open orders on (re)subscribe, then every change."""
        feed = self.user_feed
        listener: Listener[VenueOrder] = Listener(None)
        feed.listeners.add(listener)
        try:
            feed.stream.start()
            while True:
                yield await listener.queue.get()
        finally:
            feed.listeners.discard(listener)

    async def _poll_quotes(self, product_ids: list[str]) -> list[Quote]:
        try:
            response = await self._rest.get(BEST_BID_ASK, BestBidAskResponse, {"product_ids": product_ids})
        except RetryableError as exc:
            # Already retried with backoff; keep polling rather than end the stream (health shows the outage).
            log.warning("coinbase.poll_failed", error=str(exc))
            return []
        quotes = []
        for book in response.pricebooks:
            try:
                quote = quote_from_pricebook(book, self._sequencer.next(instrument_id_for(book.product_id)))
            except ValueError as exc:
                log.warning("coinbase.poll_quote_refused", product_id=book.product_id, error=str(exc))
                continue
            if quote is not None:
                quotes.append(quote)
        return quotes

    async def order_book(self, instrument_id: str, depth: int = 10) -> OrderBook:
        """From the streamed level2 book while it is in sync, else from REST."""
        product_id = product_id_for(instrument_id)
        book = self._market.book(product_id) if self._market is not None else None
        if book is not None:
            return book.order_book(depth)
        response = await self._rest.get(PRODUCT_BOOK, ProductBookResponse, {"product_id": product_id,
                                                                            "limit": depth})
        return order_book_from_pricebook(response.pricebook, depth)

    def streamed_book(self, instrument_id: str, depth: int = 50) -> OrderBook | None:
        """The level2 book kept from the websocket, or None while it is not in sync."""
        book = self._market.book(product_id_for(instrument_id)) if self._market is not None else None
        return book.order_book(depth) if book is not None else None

    async def balances(self) -> list[Balance]:
        accounts = []
        cursor = ""
        while True:
            params: dict[str, Any] = {"limit": ACCOUNTS_PAGE_LIMIT}
            if cursor:
                params["cursor"] = cursor
            page = await self._rest.get(ACCOUNTS, AccountsResponse, params)
            accounts.extend(page.accounts)
            if not page.has_next:
                break
            if not page.cursor or page.cursor == cursor:
                raise malformed("GET /accounts", page.model_dump(mode="json"),
                                ValueError("has_next without a new cursor"))
            cursor = page.cursor
        return self._parsed(lambda: balances_from_accounts(accounts), "GET /accounts",
                            [a.model_dump(mode="json") for a in accounts])

    async def positions(self) -> list[VenuePosition]:
        balances = await self.balances()
        by_base: Mapping[str, str] = self._products_by_base or (await self._load_products())[1]
        positions, unmapped = positions_from_balances(balances, by_base, self._config.quote_currency)
        if unmapped:
            # Products appear over time: refresh once before calling a currency unmapped.
            by_base = (await self._load_products())[1]
            positions, unmapped = positions_from_balances(balances, by_base, self._config.quote_currency)
        if unmapped:
            log.warning("coinbase.unmapped_balances", currencies=unmapped, quote_currency=self._config.quote_currency)
        return positions

    async def open_orders(self) -> list[VenueOrder]:
        orders = await self._list_orders({"order_status": OPEN_STATUS_QUERY})
        parsed = self._parsed(lambda: [venue_order_from_historical(order) for order in orders],
                              f"GET {ORDERS_HISTORICAL}", [o.model_dump(mode="json") for o in orders])
        return [order for order in parsed if not order.status.is_terminal]

    async def _list_orders(self, params: dict[str, Any], match: str | None = None) -> list[HistoricalOrder]:
        """Every page of the historical orders listing; with `match`, stops at the order with that client id."""
        orders: list[HistoricalOrder] = []
        cursor = ""
        while True:
            query = {**params, "limit": ORDERS_PAGE_LIMIT, **({"cursor": cursor} if cursor else {})}
            page = await self._rest.get(ORDERS_HISTORICAL, OrdersResponse, query)
            for order in page.orders:
                if match is not None and order.client_order_id == match:
                    return [order]
            orders.extend(page.orders)
            if not page.has_next:
                return [] if match is not None else orders
            if not page.cursor or page.cursor == cursor:
                raise malformed(f"GET {ORDERS_HISTORICAL}", page.model_dump(mode="json"),
                                ValueError("has_next without a new cursor"))
            cursor = page.cursor

    async def fills_since(self, cursor: str | None) -> FillPage:
        try:
            since = FillCursor.decode(cursor) if cursor else None
        except ValueError as exc:
            raise UnsupportedError(VENUE, str(exc)) from None
        lookback = timedelta(seconds=self._config.fills_lookback_s)
        params: dict[str, Any] = {"limit": FILLS_PAGE_LIMIT}
        if since is not None:
            # The venue filters on its sequence time (not confirmed to equal trade_time): the look-back covers the
            # difference and our own de-duplication does the rest.
            params["start_sequence_timestamp"] = since.since(lookback).isoformat().replace("+00:00", "Z")
        raw_fills = []
        page_cursor = ""
        while True:
            page = await self._rest.get(FILLS, FillsResponse, {**params, **({"cursor": page_cursor}
                                                                             if page_cursor else {})})
            raw_fills.extend(page.fills)
            if not page.fills or not page.cursor or page.cursor == page_cursor:
                break
            page_cursor = page.cursor
        fills = self._parsed(lambda: [venue_fill_from_fill(fill) for fill in raw_fills], f"GET {FILLS}",
                             [f.model_dump(mode="json") for f in raw_fills])
        fresh, after = fills_after(since, fills, lookback)
        return FillPage(fills=tuple(fresh), cursor=after.encode() if after else None)

    async def fee_rates(self) -> RateFees:
        """The account's current maker/taker rates (its 30-day volume tier)."""
        summary = await self._rest.get(TRANSACTION_SUMMARY, TransactionSummary)
        return rate_fees_from_summary(summary)

    # ---- writes ---------------------------------------------------------------------------------------------

    async def _place_order(self, order: Order) -> PlaceResult:
        body = create_order_body(order)
        maybe_sent = False

        async def attempt() -> PlaceResult:
            nonlocal maybe_sent
            if maybe_sent:
                # The last attempt may have reached the venue: look before sending the same order again.
                found = await self._find_order(order)
                if found is not None:
                    return self._recovered(order, found)
            try:
                response = await self._rest.post(ORDERS, body, CreateOrderResponse, retry=False)
            except (VenueUnavailableError, VenueServerError):
                maybe_sent = True
                raise
            except DuplicateClientOrderIdError:
                return await self._recover(order)
            except MalformedResponseError:
                # An unreadable answer to a write: the venue may hold the order. Never guess, never resend.
                found = await self._find_order(order)
                if found is not None:
                    return self._recovered(order, found)
                raise
            if response.success_response is not None:  # present exactly when success (schema rule)
                return PlaceResult(venue_order_id=response.success_response.order_id,
                                   client_order_id=order.client_order_id, status=OrderStatus.OPEN,
                                   venue_response=response.model_dump(mode="json"))
            if response.failure_codes & DUPLICATE_ORDER_CODES:
                return await self._recover(order)
            message = redact(response.error_response.message) if response.error_response else ""
            raise OrderRejectedError(VENUE, f"order {order.client_order_id} refused: {response.failure_code}: "
                                            f"{message}", code=response.failure_code)

        return await with_retries(attempt, self._config.backoff, rng=self._rng)

    async def _recover(self, order: Order) -> PlaceResult:
        """The venue says the client order id is taken: the order exists. Find it; never place it again."""
        async def lookup() -> PlaceResult:
            found = await self._find_order(order)
            if found is None:
                raise OrderNotListedError(VENUE, f"client order id {order.client_order_id} is taken but not listed")
            return self._recovered(order, found)

        try:
            return await with_retries(lookup, self._config.backoff, rng=self._rng)
        except OrderNotListedError:
            raise DuplicateClientOrderIdError(
                VENUE, f"client order id {order.client_order_id} is taken but the order was not found; not placing "
                       "it again: reconcile") from None

    async def _find_order(self, order: Order) -> HistoricalOrder | None:
        """Look an order up by client order id. The listing has no documented client_order_id filter, so we page
        through the product's orders: open ones first (the usual case), then all since shortly before it was made
        (whether an unfiltered listing includes OPEN orders is not confirmed)."""
        product_id = product_id_for(order.instrument_id)
        since = order.created_at - timedelta(seconds=self._config.recovery_window_s)
        for params in ({"product_ids": [product_id], "order_status": OPEN_STATUS_QUERY},
                       {"product_ids": [product_id], "start_date": since.isoformat().replace("+00:00", "Z")}):
            found = await self._list_orders(params, match=order.client_order_id)
            if found:
                return found[0]
        return None

    def _recovered(self, order: Order, found: HistoricalOrder) -> PlaceResult:
        venue_order = self._parsed(lambda: venue_order_from_historical(found), f"GET {ORDERS_HISTORICAL}",
                                   found.model_dump(mode="json"))
        log.info("coinbase.order_recovered", client_order_id=order.client_order_id,
                 venue_order_id=venue_order.venue_order_id)
        return PlaceResult(venue_order_id=venue_order.venue_order_id, client_order_id=order.client_order_id,
                           status=venue_order.status, recovered=True, venue_response=found.model_dump(mode="json"))

    async def _cancel_order(self, venue_order_id: str) -> None:
        # A cancel is safe to repeat, so the shared client retries it.
        response = await self._rest.post(ORDERS_BATCH_CANCEL, {"order_ids": [venue_order_id]}, CancelResponse,
                                         retry=True)
        result = next((r for r in response.results if r.order_id == venue_order_id), None)
        if result is None:
            raise malformed(f"POST {ORDERS_BATCH_CANCEL}", response.model_dump(mode="json"),
                            ValueError(f"no result for order {venue_order_id}"))
        if result.success or result.failure_reason in CANCEL_ALREADY_REQUESTED:
            return
        raise OrderRejectedError(VENUE, f"cancel of {venue_order_id} refused: {result.failure_reason}",
                                 code=result.failure_reason or None)

    # ---- helpers --------------------------------------------------------------------------------------------

    @staticmethod
    def _parsed(parse: Callable[[], T], what: str, payload: Any) -> T:
        """Run a parsing step; a value we cannot map becomes a MalformedResponseError with the redacted body."""
        try:
            return parse()
        except ValueError as exc:
            raise malformed(what, payload, exc) from None
