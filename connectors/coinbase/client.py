"""The Coinbase REST client (over the shared VenueHttpClient) and the websocket clients (market data, user orders).

REST: every request is signed with a fresh JWT, throttled by one client-side bucket (the venue's limit is per key,
reads and writes alike), retried by the shared client, and read into the schemas; an answer that does not match
the documented shape is a MalformedResponseError carrying the redacted body. The venue's x-ratelimit-* headers are
read by a thin transport wrapper, since the shared client's error hook sees no headers.

Websocket: `ChannelStream` keeps one socket alive (subscribe with a fresh JWT per message, check `sequence_num`,
resubscribe on a gap, reconnect with backoff when the socket drops or goes quiet). The feeds on top of it keep the
level2 books and fan quotes, trades and order updates out to listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from connectors.coinbase.config import CoinbaseConfig
from connectors.coinbase.constants import (
    AUTH_ERROR_CODES,
    CHANNEL_HEARTBEATS,
    CHANNEL_LEVEL2,
    CHANNEL_USER,
    DUPLICATE_ORDER_CODES,
    ENVELOPE_HEARTBEATS,
    ENVELOPE_L2,
    ENVELOPE_MARKET_TRADES,
    ENVELOPE_SUBSCRIPTIONS,
    ENVELOPE_TICKER,
    ENVELOPE_USER,
    HEADER_REMAINING,
    HEADER_RESET,
    MARKET_CHANNELS,
    RATE_LIMIT_ERROR_CODES,
    USER_CHANNELS,
)
from connectors.coinbase.parsing import (
    Level2Book,
    TradeTick,
    instrument_id_for,
    trade_tick,
    venue_order_from_user_order,
)
from connectors.coinbase.schemas import (
    Envelope,
    ErrorBody,
    L2Event,
    MarketTradesEvent,
    TickerEvent,
    UserEvent,
)
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    DuplicateClientOrderIdError,
    MalformedResponseError,
    RateLimitedError,
    SequenceGapError,
    VenueClientError,
    VenueServerError,
)
from connectors.http import VenueHttpClient, redact
from connectors.resilience import TokenBucket
from connectors.streaming import Reconnection, reconnect_forever
from core.instruments import Venue
from core.market import Quote
from core.venue import VenueOrder
from tradestream.logging import get_logger

log = get_logger(__name__)

VENUE = Venue.COINBASE
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

# x-ratelimit-reset is "not confirmed" in venues.md: a value this large is read as a Unix time, a smaller one as
# seconds until the window resets.
_EPOCH_THRESHOLD = 1_000_000_000


def malformed(what: str, payload: Any, exc: Exception | None = None) -> MalformedResponseError:
    raw = payload if isinstance(payload, str | bytes) else json.dumps(payload, default=str)
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    reason = ""
    if isinstance(exc, ValidationError):
        # Locations and messages only: the offending values could be anything.
        reason = "; ".join(f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                           for error in exc.errors(include_input=False, include_url=False)[:5])
    elif exc is not None:
        reason = str(exc)
    return MalformedResponseError(VENUE, f"{what}: answer does not match the documented format: {reason}",
                                  raw_body=redact(text))


def validate(model: type[M], payload: Any, what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise malformed(what, payload, exc) from None


# ---- REST ---------------------------------------------------------------------------------------------------


class RateLimitState:
    """What the venue's rate-limit headers last said: how long until the window resets, and whether we used it up."""

    def __init__(self, cap_s: float, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._cap_s = cap_s
        self._wall = wall
        self._monotonic = monotonic
        self._reset_after_s: float | None = None
        self._exhausted_until: float | None = None

    def observe(self, headers: httpx.Headers) -> None:
        self._reset_after_s = self._seconds_until_reset(headers.get(HEADER_RESET))
        remaining = headers.get(HEADER_REMAINING)
        if remaining is not None and remaining.strip() == "0" and self._reset_after_s:
            self._exhausted_until = self._monotonic() + self._reset_after_s
        else:
            self._exhausted_until = None

    def _seconds_until_reset(self, raw: str | None) -> float | None:
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            return None
        seconds = value - self._wall() if value > _EPOCH_THRESHOLD else value
        return min(max(seconds, 0.0), self._cap_s)

    def retry_after_s(self) -> float | None:
        return self._reset_after_s

    async def wait_if_exhausted(self) -> None:
        if self._exhausted_until is not None:
            delay = self._exhausted_until - self._monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._exhausted_until = None


class _RateLimitObservingTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, state: RateLimitState) -> None:
        self._inner = inner
        self._state = state

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._state.wait_if_exhausted()
        response = await self._inner.handle_async_request(request)
        self._state.observe(response.headers)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class RestClient:
    def __init__(self, config: CoinbaseConfig, signer: Callable[[str, str, bytes], Mapping[str, str]], *,
                 transport: httpx.AsyncBaseTransport | None = None, rng: random.Random | None = None) -> None:
        self.limits = RateLimitState(cap_s=config.retry_cap_s)
        # One bucket for reads and writes: the venue counts every private request against the same key limit.
        bucket = TokenBucket(config.rest_rate_per_s, config.rest_burst)
        self._http = VenueHttpClient(
            venue=VENUE, base_url=config.rest_url, signer=signer, read_bucket=bucket, write_bucket=bucket,
            read_error=self.read_error, timeout_s=config.timeout_s, backoff=config.backoff,
            rng=rng or random.Random(),
            transport=_RateLimitObservingTransport(transport or httpx.AsyncHTTPTransport(), self.limits))

    async def close(self) -> None:
        await self._http.close()

    async def get(self, path: str, model: type[M], params: Mapping[str, Any] | None = None, *,
                  retry: bool = True) -> M:
        payload = await self._http.request("GET", path, params=params, retry=retry)
        return validate(model, payload, f"GET {path}")

    async def post(self, path: str, body: Mapping[str, Any], model: type[M], *, retry: bool) -> M:
        payload = await self._http.request("POST", path, body=body, write=True, retry=retry)
        return validate(model, payload, f"POST {path}")

    def read_error(self, status: int, payload: Any) -> ConnectorError | None:
        """{"error","error_details","message"} -> a typed error; None lets the shared client map the status."""
        try:
            body: ErrorBody | None = ErrorBody.model_validate(payload)
        except ValidationError:
            body = None
        code = body.error if body else None
        log.warning("coinbase.http_error", status=status, code=code)
        if status == 429 or code in RATE_LIMIT_ERROR_CODES:
            return RateLimitedError(VENUE, f"HTTP {status} {code or ''}: rate limited".strip(),
                                    retry_after_s=self.limits.retry_after_s(), status=status)
        if body is None:
            return None
        detail = f"HTTP {status} {body.error}: {redact(body.message)} {redact(body.error_details)}".strip()
        if status in (401, 403) or body.error in AUTH_ERROR_CODES:
            return AuthenticationError(VENUE, detail, status=status, code=body.error)
        if status == 409 or body.error in DUPLICATE_ORDER_CODES:
            return DuplicateClientOrderIdError(VENUE, detail, status=status, code=body.error)
        if status >= 500:
            return VenueServerError(VENUE, detail, status=status, code=body.error)
        return VenueClientError(VENUE, detail, status=status, code=body.error)


# ---- websocket ----------------------------------------------------------------------------------------------


class StreamState(StrEnum):
    DOWN = "down"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    CLOSED = "closed"


class ChannelStream:
    """One websocket kept alive. `on_envelope` raising SequenceGapError asks for a resync like a sequence gap
    does; raising anything else drops the socket and reconnects (a fresh subscribe brings fresh snapshots)."""

    def __init__(self, *, name: str, url: str, channels: Iterable[str], product_ids: Iterable[str],
                 resync_channel: str, token: Callable[[], str], on_envelope: Callable[[Envelope], None],
                 on_reset: Callable[[], None], config: CoinbaseConfig, rng: random.Random) -> None:
        self.name = name
        self._url = url
        self._channels = tuple(channels)
        self._products: list[str] = list(dict.fromkeys(product_ids))
        self._resync_channel = resync_channel
        self._token = token
        self._on_envelope = on_envelope
        self._on_reset = on_reset
        self._config = config
        self._state = StreamState.DOWN
        self.down_reason = "not connected yet"
        self.reconnects = 0
        self.resyncs = 0
        self._changed = asyncio.Event()
        self._reconnection = Reconnection(config.ws_backoff, rng)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def streaming(self) -> bool:
        return self._state is StreamState.STREAMING

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"coinbase-{self.name}-ws")

    async def close(self) -> None:
        self._set_state(StreamState.CLOSED, "closed")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_changed(self, within: float) -> None:
        """Return when the state changes, or after `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()

    async def add_products(self, product_ids: Iterable[str]) -> None:
        new = [product_id for product_id in product_ids if product_id not in self._products]
        if not new:
            return
        self._products.extend(new)
        if self._ws is not None:
            # If the socket is dying, the reconnect subscribes every product.
            with contextlib.suppress(ConnectionError, WebSocketException):
                await self._subscribe(self._ws, new, "subscribe")

    def _set_state(self, state: StreamState, reason: str = "") -> None:
        if self._state is StreamState.CLOSED:
            return
        if state is not self._state:
            log.info("coinbase.ws_state", stream=self.name, state=state.value, reason=reason)
            self._state = state
            self._changed.set()
            self._changed = asyncio.Event()
        if state is not StreamState.STREAMING:
            self.down_reason = reason

    async def _subscribe(self, ws: ClientConnection, product_ids: list[str], kind: str,
                         channels: Iterable[str] | None = None) -> None:
        for channel in channels or self._channels:
            # Heartbeats keep idle sockets open (the venue closes them after 60-90 s); they take no products.
            products = [] if channel == CHANNEL_HEARTBEATS else product_ids
            await ws.send(json.dumps({"type": kind, "product_ids": products, "channel": channel,
                                      "jwt": self._token()}))

    async def _resync(self, ws: ClientConnection) -> None:
        self.resyncs += 1
        self._on_reset()
        channel = [self._resync_channel]
        await self._subscribe(ws, self._products, "unsubscribe", channel)
        await self._subscribe(ws, self._products, "subscribe", channel)

    async def _run(self) -> None:
        await reconnect_forever(self._connect, self._dropped, self._reconnection)

    async def _connect(self) -> None:
        self._set_state(StreamState.CONNECTING, self.down_reason)
        try:
            async with connect(self._url, open_timeout=self._config.ws_open_timeout_s,
                               max_size=self._config.ws_max_message_bytes) as ws:
                self._ws = ws
                await self._subscribe(ws, self._products, "subscribe")
                await self._read(ws)
        finally:
            self._ws = None

    def _dropped(self, exc: Exception | None) -> None:
        if isinstance(exc, (OSError, TimeoutError, WebSocketException, ConnectorError)):
            reason = "socket went quiet" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            log.warning("coinbase.ws_down", stream=self.name, reason=reason)
            self._set_state(StreamState.DOWN, reason)
        elif exc is not None:
            # A bug must not end the feed silently while health still says "streaming": log it, reconnect.
            log.error("coinbase.ws_failed", stream=self.name, error=type(exc).__name__, exc_info=exc)
            self._set_state(StreamState.DOWN, f"unexpected {type(exc).__name__}")
        self._on_reset()
        self.reconnects += 1

    async def _read(self, ws: ClientConnection) -> None:
        last_seq: int | None = None
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that races a finished recv.
            async with asyncio.timeout(self._config.ws_stale_after_s):
                raw = await ws.recv()
            envelope = self._parse(raw)
            # A stream that delivers data restarts its backoff; one that keeps failing backs off further.
            self._reconnection.progressed()
            self._set_state(StreamState.STREAMING)
            gap = last_seq is not None and envelope.sequence_num != last_seq + 1
            last_seq = envelope.sequence_num
            if gap:
                log.warning("coinbase.ws_sequence_gap", stream=self.name, received=envelope.sequence_num)
                await self._resync(ws)
            try:
                self._on_envelope(envelope)
            except SequenceGapError as exc:
                log.warning("coinbase.ws_resync", stream=self.name, reason=str(exc))
                await self._resync(ws)
            except (ValidationError, ValueError) as exc:
                raise malformed(f"{self.name} websocket {envelope.channel}", raw, exc) from None

    def _parse(self, raw: str | bytes) -> Envelope:
        try:
            document = json.loads(raw)
        except ValueError:
            raise malformed(f"{self.name} websocket", raw) from None
        if isinstance(document, dict) and document.get("type") == "error":
            # E.g. a refused JWT. The venue's message is kept, redacted, for health; the socket is dropped and
            # retried with backoff.
            raise VenueClientError(VENUE, f"{self.name} websocket error: "
                                          f"{redact(str(document.get('message', '')))}")
        return validate(Envelope, document, f"{self.name} websocket")


class Listener(Generic[T]):
    """A bounded queue for one consumer. A slow consumer loses the oldest items: for quotes the newest is what
    matters, and order updates are full states, so a later one supersedes an earlier one."""

    def __init__(self, keys: frozenset[str] | None, maxsize: int = 1024) -> None:
        self.keys = keys
        self.queue: asyncio.Queue[T] = asyncio.Queue(maxsize)

    def offer(self, key: str, item: T) -> None:
        if self.keys is not None and key not in self.keys:
            return
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(item)

    def clear(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


class QuoteSequencer:
    """`Quote.seq` per instrument, shared by the stream and the polling fallback so it only ever increases."""

    def __init__(self) -> None:
        self._seq: dict[str, int] = {}

    def next(self, instrument_id: str) -> int:
        self._seq[instrument_id] = self._seq.get(instrument_id, -1) + 1
        return self._seq[instrument_id]


class MarketDataFeed:
    """level2 -> books and quotes; ticker -> quotes while a product's book is not in sync (just subscribed, or
    rebuilding after a gap); market_trades -> trade ticks; heartbeats keep the socket alive."""

    def __init__(self, config: CoinbaseConfig, token: Callable[[], str], sequencer: QuoteSequencer,
                 rng: random.Random) -> None:
        self._sequencer = sequencer
        self.books: dict[str, Level2Book] = {}
        self._last_top: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]] = {}
        self.quote_listeners: set[Listener[Quote]] = set()
        self.trade_listeners: set[Listener[TradeTick]] = set()
        self.stream = ChannelStream(name="market", url=config.ws_market_url, channels=MARKET_CHANNELS,
                                    product_ids=(), resync_channel=CHANNEL_LEVEL2, token=token,
                                    on_envelope=self._on_envelope, on_reset=self._invalidate, config=config, rng=rng)

    async def ensure(self, product_ids: Iterable[str]) -> None:
        await self.stream.add_products(product_ids)
        self.stream.start()

    def book(self, product_id: str) -> Level2Book | None:
        book = self.books.get(product_id)
        return book if book is not None and book.synced and self.stream.streaming else None

    def _invalidate(self) -> None:
        for book in self.books.values():
            book.invalidate()
        self._last_top.clear()

    def _on_envelope(self, envelope: Envelope) -> None:
        if envelope.channel == ENVELOPE_L2:
            for raw in envelope.events:
                self._on_l2(validate(L2Event, raw, "l2_data event"), envelope)
        elif envelope.channel == ENVELOPE_TICKER:
            for raw in envelope.events:
                self._on_ticker(validate(TickerEvent, raw, "ticker event"), envelope)
        elif envelope.channel == ENVELOPE_MARKET_TRADES:
            for raw in envelope.events:
                for trade in validate(MarketTradesEvent, raw, "market_trades event").trades:
                    tick = trade_tick(trade)
                    for listener in list(self.trade_listeners):
                        listener.offer(tick.instrument_id, tick)
        elif envelope.channel not in (ENVELOPE_HEARTBEATS, ENVELOPE_SUBSCRIPTIONS):
            raise ValueError(f"unexpected channel {envelope.channel!r}")

    def _on_l2(self, event: L2Event, envelope: Envelope) -> None:
        book = self.books.setdefault(event.product_id, Level2Book(event.product_id))
        if not book.apply(event, envelope.timestamp):
            return
        if book.crossed:
            raise SequenceGapError(VENUE, f"{event.product_id} book crossed after an update: rebuilding")
        top = book.top()
        # Most level2 updates are deeper in the book: a quote goes out only when the top changed.
        if top is None or top == self._last_top.get(event.product_id):
            return
        self._last_top[event.product_id] = top
        self._emit(book.quote(self._sequencer.next(instrument_id_for(event.product_id))))

    def _on_ticker(self, event: TickerEvent, envelope: Envelope) -> None:
        for ticker in event.tickers:
            if ticker.product_id in self.books and self.books[ticker.product_id].synced:
                continue
            if ticker.best_bid > ticker.best_ask or not ticker.best_bid or not ticker.best_ask:
                continue
            instrument_id = instrument_id_for(ticker.product_id)
            self._emit(Quote(instrument_id=instrument_id, bid=ticker.best_bid, ask=ticker.best_ask,
                             bid_size=ticker.best_bid_quantity, ask_size=ticker.best_ask_quantity,
                             ts=envelope.timestamp, seq=self._sequencer.next(instrument_id)))

    def _emit(self, quote: Quote) -> None:
        for listener in list(self.quote_listeners):
            listener.offer(quote.instrument_id, quote)


class UserOrderFeed:
    """The user channel: full order states (a snapshot of open orders on subscribe, then updates)."""

    def __init__(self, config: CoinbaseConfig, token: Callable[[], str], rng: random.Random) -> None:
        self.listeners: set[Listener[VenueOrder]] = set()
        # Every product: the user channel is subscribed with an empty product list.
        self.stream = ChannelStream(name="user", url=config.ws_user_url, channels=USER_CHANNELS, product_ids=(),
                                    resync_channel=CHANNEL_USER, token=token, on_envelope=self._on_envelope,
                                    on_reset=lambda: None, config=config, rng=rng)

    def _on_envelope(self, envelope: Envelope) -> None:
        if envelope.channel in (ENVELOPE_HEARTBEATS, ENVELOPE_SUBSCRIPTIONS):
            return
        if envelope.channel != ENVELOPE_USER:
            raise ValueError(f"unexpected channel {envelope.channel!r}")
        for raw in envelope.events:
            for order in validate(UserEvent, raw, "user event").orders:
                update = venue_order_from_user_order(order)
                for listener in list(self.listeners):
                    listener.offer(update.instrument_id, update)


async def next_item(listener: Listener[T], within: float) -> T | None:
    try:
        async with asyncio.timeout(within):
            return await listener.queue.get()
    except TimeoutError:
        return None

