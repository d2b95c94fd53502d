"""The Kalshi connector: fills in the shared `Connector` hooks with the REST client and the websocket stream.

Instruments are the YES contracts of Kalshi markets (`event_contract:<market ticker>`); prices are YES prices in
dollars, quantities contracts. Only limit orders exist on Kalshi.
"""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime
from decimal import Decimal

from pydantic import ValidationError

from connectors.base import Connector
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    DuplicateClientOrderIdError,
    MalformedResponseError,
    OrderRejectedError,
    RetryableError,
    VenueClientError,
)
from connectors.kalshi.auth import KalshiSigner
from connectors.kalshi.client import KalshiRestClient
from connectors.kalshi.config import KalshiConfig
from connectors.kalshi.constants import (
    FRACTIONAL_LOT,
    MAX_BOOK_DEPTH,
    OPEN_MARKETS,
    WHOLE_LOT,
    Channel,
    KalshiOrderStatus,
)
from connectors.kalshi.parsing import (
    VENUE,
    TickerUpdate,
    TradePrint,
    check_price,
    decode_cursor,
    encode_cursor,
    epoch_s,
    fee_model,
    inconsistent,
    new_fills,
    order_body,
    order_status,
    placed_status,
    quote_from_book,
    quote_from_market,
    ticker_for,
    to_balance,
    to_fill,
    to_instrument,
    to_position,
    to_trade,
    to_venue_order,
    yes_book,
)
from connectors.kalshi.schemas import Fill, Market
from connectors.kalshi.websocket import KalshiStream, StreamStatus
from core.clock import Clock, WallClock
from core.fees import KalshiFees
from core.instruments import AssetClass, Instrument, Venue
from core.market import Quote
from core.orders import Order
from core.types import OrderType, TimeInForce
from core.venue import (
    Balance,
    Capabilities,
    ConnectorHealth,
    FillPage,
    MarketDataMode,
    OrderBook,
    PlaceResult,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from tradestream.logging import get_logger

log = get_logger(__name__)

_RECENT_FILL_IDS = 10_000
_LOOKUP_CLOCK_SKEW_S = 300


class KalshiConnector(Connector):
    venue = Venue.KALSHI
    capabilities = Capabilities(
        venue=Venue.KALSHI,
        asset_classes=frozenset({AssetClass.EVENT_CONTRACT}),
        order_types=frozenset({OrderType.LIMIT}),
        time_in_force=frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
        streaming_market_data=True,
        streaming_fills=True,
        fractional_quantities=True,
        fallbacks=(
            "market_data: REST polling of the market while the websocket is down",
            "fills: REST catch-up from the last fills cursor after every websocket reconnect",
        ),
    )

    def __init__(self, config: KalshiConfig, *, clock: Clock | None = None,
                 rng: random.Random | None = None) -> None:
        self._config = config
        self._clock = clock or WallClock()
        self._rng = rng or random.Random()
        signer = KalshiSigner(config.key_id, config.private_key_pem, self._clock)
        self._rest = KalshiRestClient(config, signer, rng=self._rng)
        self.stream = KalshiStream(config.ws_base_url, signer, clock=self._clock, reconnect=config.reconnect_policy,
                                   ping_interval_s=config.ws_ping_interval_s,
                                   open_timeout_s=config.ws_open_timeout_s, rng=self._rng)
        self._markets: dict[str, Market] = {}
        self._fees: dict[str, KalshiFees] = {}
        self._client_ids: dict[str, str] = {}
        """venue order id -> client order id, for fills that do not carry it (filled by placements and reads)."""

    async def close(self) -> None:
        await self.stream.close()
        await self._rest.close()

    # --- Reads ----------------------------------------------------------------------------------------------

    async def health(self) -> ConnectorHealth:
        loop = asyncio.get_running_loop()
        started = loop.time()
        reachable = authenticated = False
        latency_ms: float | None = None
        notes: list[str] = []
        try:
            status = await self._rest.exchange_status()
            reachable, latency_ms = True, (loop.time() - started) * 1000
            if not status.trading_active:
                notes.append("exchange trading is paused")
        except ConnectorError as exc:
            notes.append(f"exchange status: {type(exc).__name__}")
        if reachable:
            try:
                await self._rest.balance(retry=False)
                authenticated = True
            except ConnectorError as exc:
                notes.append(f"balance: {type(exc).__name__}")
        polling = self.stream.started and not self.stream.live
        if polling:
            notes.append("websocket down: quotes are polled over REST")
        return ConnectorHealth(venue=self.venue, reachable=reachable, authenticated=authenticated,
                               market_data_mode=MarketDataMode.POLLING if polling else MarketDataMode.STREAMING,
                               latency_ms=latency_ms, detail="; ".join(notes), checked_at=self._clock.now())

    async def instruments(self) -> list[Instrument]:
        if self._config.series_tickers:
            markets = [market for series in self._config.series_tickers
                       for market in await self._rest.markets(status=OPEN_MARKETS, series_ticker=series)]
        else:
            markets = await self._rest.markets(status=OPEN_MARKETS)
        instruments = []
        for market in markets:
            self._markets[market.ticker] = market
            try:
                instruments.append(to_instrument(market))
            except ValidationError:
                log.warning("kalshi.market_skipped", ticker=market.ticker, reason="not expressible as an instrument id")
        return instruments

    async def settlements(self, instrument_ids: Sequence[str]) -> list[Instrument]:
        """The finalized markets among `instrument_ids`, read one by one (GET /markets/{ticker}). A market the
        venue does not know or that cannot be one of our instruments is logged and left out; a failed read
        raises (nothing is learnt from it)."""
        settled = []
        for instrument_id in instrument_ids:
            ticker = ticker_for(instrument_id)
            try:
                market = await self._rest.market(ticker)
                instrument = to_instrument(market)
            except AuthenticationError:
                raise
            except (VenueClientError, MalformedResponseError, ValidationError) as exc:
                log.warning("kalshi.settlement_unreadable", ticker=ticker, error=str(exc)[:300])
                continue
            self._markets[ticker] = market
            if instrument.settlement_price is not None:
                settled.append(instrument)
        return settled

    async def fee_model(self, instrument_id: str) -> KalshiFees:
        """The market's fees: its series' `fee_type`/`fee_multiplier`, or its event's override."""
        market = await self._market(ticker_for(instrument_id))
        if market.event_ticker not in self._fees:
            event = await self._rest.event(market.event_ticker)
            series = await self._rest.series(event.series_ticker)
            self._fees[market.event_ticker] = fee_model(series, event)
        return self._fees[market.event_ticker]

    async def quotes(self, instrument_ids: Sequence[str]) -> AsyncGenerator[Quote, None]:
        """YES top of book on every change: from the websocket book, or polled from REST while a market has no
        stream (socket down, or its subscription refused)."""
        tickers = {ticker_for(i) for i in instrument_ids}
        last: dict[str, tuple[Decimal, ...]] = {}
        seqs: dict[str, int] = {}

        def changed(quote: Quote) -> Quote | None:
            top = (quote.bid, quote.ask, quote.bid_size, quote.ask_size)
            if last.get(quote.instrument_id) == top:
                return None
            last[quote.instrument_id] = top
            seqs[quote.instrument_id] = seqs.get(quote.instrument_id, 0) + 1
            return quote.model_copy(update={"seq": seqs[quote.instrument_id]})

        loop = asyncio.get_running_loop()
        interval = self._config.poll_interval_s
        next_poll = loop.time()
        async with self.stream.listen(Channel.ORDERBOOK_DELTA, tickers) as listener:
            while True:
                polled = sorted(t for t in tickers if not self.stream.book_live(t))
                if polled and loop.time() >= next_poll:
                    next_poll = loop.time() + interval
                    for ticker in polled:
                        polled_quote = await self._polled_quote(ticker)
                        if polled_quote is not None and (fresh := changed(polled_quote)):
                            yield fresh
                event = await listener.get(max(0.0, next_poll - loop.time()) if polled else interval)
                if isinstance(event, OrderBook) and (fresh := changed(quote_from_book(event, 0))):
                    yield fresh
                elif isinstance(event, StreamStatus) and not event.live:
                    next_poll = loop.time()

    async def stream_tickers(self, instrument_ids: Sequence[str]) -> AsyncGenerator[TickerUpdate, None]:
        """Kalshi's `ticker` channel: last price, YES bid and ask, volume (no sizes: use `quotes` for those)."""
        async with self.stream.listen(Channel.TICKER, {ticker_for(i) for i in instrument_ids}) as listener:
            while True:
                event = await listener.get(None)
                if isinstance(event, TickerUpdate):
                    yield event

    async def order_book(self, instrument_id: str, depth: int = 10) -> OrderBook:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        depth = min(depth, MAX_BOOK_DEPTH)
        ticker = ticker_for(instrument_id)
        book = await self._rest.orderbook(ticker, depth)
        try:
            return yes_book(instrument_id, book.yes_dollars or (), book.no_dollars or (), ts=self._clock.now(),
                            depth=depth)
        except ValueError as exc:
            raise inconsistent(book, f"order book {ticker}: {exc}") from None

    async def trades(self, instrument_id: str, since: datetime | None = None) -> list[TradePrint]:
        trades = await self._rest.trades(ticker_for(instrument_id),
                                         min_ts=epoch_s(since) if since is not None else None)
        return sorted((to_trade(t) for t in trades), key=lambda t: (t.ts, t.venue_trade_id))

    async def balances(self) -> list[Balance]:
        return [to_balance(await self._rest.balance())]

    async def positions(self) -> list[VenuePosition]:
        return [to_position(p) for p in await self._rest.positions() if p.position_fp != 0]

    async def open_orders(self) -> list[VenueOrder]:
        orders = await self._rest.orders(status=KalshiOrderStatus.RESTING)
        self._client_ids.update((o.order_id, o.client_order_id) for o in orders if o.client_order_id)
        return [to_venue_order(o) for o in orders]

    async def fills_since(self, cursor: str | None) -> FillPage:
        """Fills after `cursor` (all of them for None), oldest first, each trade id once. The cursor is ours:
        Kalshi's own pagination cursor ends empty, so it cannot say where a reader stopped."""
        state = decode_cursor(cursor) if cursor else None
        fetched = [self._venue_fill(f) for f in await self._rest.fills(min_ts=state.min_ts if state else None)]
        fills, after = new_fills(state, fetched)
        return FillPage(fills=fills, cursor=encode_cursor(after) if after else None)

    async def stream_fills(self, cursor: str | None) -> AsyncGenerator[VenueFill, None]:
        """Live fills, each trade id once: caught up over REST from `cursor` at the start and after every
        reconnect (fills during a disconnect are not lost), then streamed."""
        recent: OrderedDict[str, None] = OrderedDict()

        def first_time(fill: VenueFill) -> bool:
            if fill.venue_trade_id in recent:
                return False
            recent[fill.venue_trade_id] = None
            if len(recent) > _RECENT_FILL_IDS:
                recent.popitem(last=False)
            return True

        async with self.stream.listen(Channel.FILL) as listener:
            catch_up = True
            while True:
                if catch_up:
                    page = await self.fills_since(cursor)
                    cursor = page.cursor or cursor
                    for fill in page.fills:
                        if first_time(fill):
                            yield fill
                event = await listener.get(None)
                catch_up = isinstance(event, StreamStatus) and event.live
                if isinstance(event, VenueFill) and first_time(event):
                    if event.client_order_id is None and event.venue_order_id in self._client_ids:
                        event = event.model_copy(update={"client_order_id": self._client_ids[event.venue_order_id]})
                    _, after = new_fills(decode_cursor(cursor) if cursor else None, [event])
                    cursor = encode_cursor(after) if after else cursor
                    yield event

    # --- Writes ---------------------------------------------------------------------------------------------

    async def _place_order(self, order: Order) -> PlaceResult:
        ticker = ticker_for(order.instrument_id)
        body = order_body(order, ticker, self._config.self_trade_prevention)
        self._check_against_market(order.client_order_id, Decimal(body["price"]), Decimal(body["count"]),
                                   await self._market(ticker))
        try:
            answer = await self._rest.create_order(body)
        except DuplicateClientOrderIdError:
            # 409 (exact body not confirmed): an earlier attempt with this id went through. Look it up; never
            # place again.
            recovered = await self._recover(order, ticker)
            if recovered is None:
                raise DuplicateClientOrderIdError(
                    VENUE, f"client order id {order.client_order_id} is in use but no order carries it; not placing "
                           "again") from None
            return recovered
        except RetryableError:
            # Every answer was lost or failed: the order may exist all the same. Look before reporting failure.
            recovered = await self._recover(order, ticker)
            if recovered is None:
                raise
            return recovered
        except AuthenticationError:
            raise
        except VenueClientError as exc:
            raise OrderRejectedError(VENUE, f"order {order.client_order_id} refused: HTTP {exc.status} {exc.code}",
                                     status=exc.status, code=exc.code) from exc
        self._client_ids[answer.order_id] = order.client_order_id
        return PlaceResult(venue_order_id=answer.order_id, client_order_id=order.client_order_id,
                           status=placed_status(answer), venue_response=answer.model_dump(mode="json"))

    @staticmethod
    def _check_against_market(client_order_id: str, price: Decimal, count: Decimal, market: Market) -> None:
        """Refuse locally, before any write, what Kalshi would refuse: a price off the market's ticks, a count off
        its lot. Checks the very strings sent."""
        try:
            check_price(price, market.price_ranges)
        except ValueError as exc:
            raise OrderRejectedError(VENUE, f"order {client_order_id}: {exc}") from None
        lot = FRACTIONAL_LOT if market.fractional_trading_enabled else WHOLE_LOT
        if count % lot != 0:
            raise OrderRejectedError(VENUE, f"order {client_order_id}: count {count} is not a multiple of the lot "
                                            f"{lot} of {market.ticker}")

    async def _recover(self, order: Order, ticker: str) -> PlaceResult | None:
        """Find the order placed under this client order id, retrying a little: the venue may list it late."""
        policy = self._config.retry_policy
        # Only orders created since a little before ours (clocks differ): the lookup stays one page.
        since = epoch_s(order.created_at) - _LOOKUP_CLOCK_SKEW_S
        for attempt in range(1, self._config.lookup_attempts + 1):
            for found in await self._rest.orders(ticker=ticker, min_ts=since):
                if found.client_order_id == order.client_order_id:
                    log.warning("kalshi.order_recovered", client_order_id=order.client_order_id,
                                venue_order_id=found.order_id)
                    self._client_ids[found.order_id] = order.client_order_id
                    return PlaceResult(venue_order_id=found.order_id, client_order_id=order.client_order_id,
                                       status=order_status(found.status, found.fill_count_fp), recovered=True,
                                       venue_response=found.model_dump(mode="json"))
            if attempt < self._config.lookup_attempts:
                await asyncio.sleep(policy.delay(attempt, self._rng))
        return None

    async def _cancel_order(self, venue_order_id: str) -> None:
        try:
            await self._rest.cancel_order(venue_order_id)
        except VenueClientError as exc:
            # A retried cancel whose first answer was lost finds nothing left to cancel: that is success if the
            # order is indeed cancelled.
            if exc.status != 404 or (await self._rest.order(venue_order_id)).status is not KalshiOrderStatus.CANCELED:
                raise

    # --- Helpers --------------------------------------------------------------------------------------------

    async def _market(self, ticker: str) -> Market:
        if ticker not in self._markets:
            self._markets[ticker] = await self._rest.market(ticker)
        return self._markets[ticker]

    async def _polled_quote(self, ticker: str) -> Quote | None:
        try:
            market = await self._rest.market(ticker)
        except RetryableError as exc:
            log.warning("kalshi.quote_poll_failed", ticker=ticker, error=type(exc).__name__)
            return None
        self._markets[ticker] = market
        return quote_from_market(market, self._clock.now(), 0)

    def _venue_fill(self, fill: Fill) -> VenueFill:
        return to_fill(fill, self._client_ids.get(fill.order_id))

