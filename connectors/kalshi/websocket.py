"""The Kalshi websocket: one signed connection carrying every subscription, order books kept from a snapshot and
its deltas, a resubscribe (and a fresh snapshot) on a sequence gap, reconnection with jittered backoff.

Consumers listen through queues. Each one is told when the socket goes down or comes back (`StreamStatus`), so
it can fall back to REST meanwhile; subscriptions are replayed on every reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from connectors.errors import ConnectorError, SequenceGapError
from connectors.kalshi.auth import KalshiSigner
from connectors.kalshi.constants import Channel, OutcomeSide
from connectors.kalshi.parsing import (
    VENUE,
    CrossedBookError,
    TickerUpdate,
    decode,
    from_epoch_ms,
    instrument_id_for,
    to_fill,
    to_ticker_update,
    yes_book,
)
from connectors.kalshi.schemas import (
    Level,
    WsEnvelope,
    WsError,
    WsFill,
    WsOrderbookDelta,
    WsOrderbookSnapshot,
    WsSubscribed,
    WsTicker,
)
from connectors.resilience import BackoffPolicy
from connectors.streaming import Reconnection, reconnect_forever
from core.clock import Clock
from core.types import ZERO
from core.venue import OrderBook, VenueFill
from tradestream.logging import get_logger

log = get_logger(__name__)

# The websockets library logs handshake headers (our signature among them) at DEBUG: its logger never goes below
# INFO, whatever the root level.
_wire_log = logging.getLogger(f"{__name__}.wire")
_wire_log.setLevel(logging.INFO)


@dataclass(frozen=True)
class StreamStatus:
    live: bool


StreamEvent = OrderBook | TickerUpdate | VenueFill | StreamStatus


class Listener:
    """One consumer's queue: the events of one channel (for some markets, or all) and every status change."""

    def __init__(self, channel: Channel, tickers: frozenset[str] | None) -> None:
        self.channel = channel
        self.tickers = tickers
        self._queue: asyncio.Queue[StreamEvent] = asyncio.Queue()

    def wants(self, channel: Channel, ticker: str) -> bool:
        return channel is self.channel and (self.tickers is None or ticker in self.tickers)

    def put(self, event: StreamEvent) -> None:
        self._queue.put_nowait(event)

    async def get(self, within: float | None) -> StreamEvent | None:
        """The next event, or None when `within` seconds pass without one (None: wait as long as it takes)."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        if within is not None and within <= 0:
            return None  # wait_for(..., 0) would time out even with an event ready to take
        try:
            return await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            return None


class Listening:
    """Registers a listener for the duration of an `async with` (a class, not a generator-based context manager:
    it is used inside async generators, which the event loop may finalize in any order)."""

    def __init__(self, stream: KalshiStream, listener: Listener) -> None:
        self._stream = stream
        self._listener = listener

    async def __aenter__(self) -> Listener:
        self._stream._listeners.add(self._listener)
        await self._stream._want(self._listener.channel, self._listener.tickers)
        return self._listener

    async def __aexit__(self, *exc_info: object) -> None:
        self._stream._listeners.discard(self._listener)


@dataclass
class _Subscription:
    channel: Channel
    tickers: tuple[str, ...]
    sid: int | None = None
    seq: int | None = None


class _Ladder:
    """One market's bids on both legs, as Kalshi streams them."""

    def __init__(self, yes: Iterable[Level], no: Iterable[Level]) -> None:
        self.legs: dict[OutcomeSide, dict[Decimal, Decimal]] = {OutcomeSide.YES: dict(yes), OutcomeSide.NO: dict(no)}

    def apply(self, side: OutcomeSide, price: Decimal, delta: Decimal) -> None:
        leg = self.legs[side]
        size = leg.get(price, ZERO) + delta
        if size < 0:
            raise ValueError(f"delta {delta} at {price} leaves a negative size: the book is out of sync")
        if size == 0:
            leg.pop(price, None)
        else:
            leg[price] = size

    def book(self, ticker: str, ts: datetime, seq: int | None) -> OrderBook:
        return yes_book(instrument_id_for(ticker), self.legs[OutcomeSide.YES].items(),
                        self.legs[OutcomeSide.NO].items(), ts=ts, seq=seq)


class KalshiStream:
    def __init__(self, url: str, signer: KalshiSigner, *, clock: Clock, reconnect: BackoffPolicy,
                 ping_interval_s: float, open_timeout_s: float, rng: random.Random) -> None:
        self._url = url
        self._signer = signer
        self._clock = clock
        self._reconnection = Reconnection(reconnect, rng)
        self._ping_interval_s = ping_interval_s
        self._open_timeout_s = open_timeout_s
        self._wanted: dict[Channel, set[str]] = {}
        self._listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, _Subscription] = {}
        self._active: dict[int, _Subscription] = {}
        self._ladders: dict[str, _Ladder] = {}
        self._books: dict[str, OrderBook] = {}
        self._refused: dict[str, str] = {}
        self._crossed: set[str] = set()
        self.resyncs = 0
        """Books dropped and rebuilt from a fresh snapshot (sequence gaps, inconsistent deltas)."""

    @property
    def started(self) -> bool:
        return self._task is not None

    @property
    def live(self) -> bool:
        return self._ws is not None

    def book_live(self, ticker: str) -> bool:
        """Whether this market's book comes over the socket (else the caller polls REST)."""
        return self._ws is not None and ticker not in self._refused

    def book(self, ticker: str) -> OrderBook | None:
        return self._books.get(ticker)

    def listen(self, channel: Channel, tickers: Collection[str] | None = None) -> Listening:
        """`async with stream.listen(channel, tickers) as listener:` subscribes (once per market) and delivers."""
        return Listening(self, Listener(channel, frozenset(tickers) if tickers is not None else None))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _want(self, channel: Channel, tickers: frozenset[str] | None) -> None:
        known = self._wanted.get(channel)
        if channel is Channel.FILL:
            fresh: tuple[str, ...] | None = () if known is None else None  # fills are subscribed for all markets
        else:
            added = sorted(set(tickers or ()) - (known or set()))
            fresh = tuple(added) if added else None
        if fresh is None:
            return
        self._wanted.setdefault(channel, set()).update(fresh)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="kalshi-websocket")
        elif self._ws is not None:
            await self._subscribe(self._ws, channel, fresh)

    async def _run(self) -> None:
        await reconnect_forever(self._connect, self._dropped, self._reconnection)

    async def _connect(self) -> None:
        try:
            async with connect(self._url, additional_headers=self._signer.websocket_headers(),
                               open_timeout=self._open_timeout_s, ping_interval=self._ping_interval_s,
                               ping_timeout=self._ping_interval_s, close_timeout=1.0, logger=_wire_log) as ws:
                self._reconnection.progressed()
                await self._session(ws)
        finally:
            self._went_down()

    @staticmethod
    def _dropped(exc: Exception | None) -> None:
        if isinstance(exc, InvalidStatus):
            # 401 when the venue refuses the handshake signature: logged, retried with backoff, never hammered.
            log.warning("kalshi.ws_refused", status=exc.response.status_code)
        elif isinstance(exc, (OSError, TimeoutError, WebSocketException)):
            log.warning("kalshi.ws_down", error=type(exc).__name__)
        elif exc is not None:  # a bug: keep its traceback, and keep the stream alive by reconnecting
            log.error("kalshi.ws_failed", exc_info=exc)

    async def _session(self, ws: ClientConnection) -> None:
        # The plan is copied before the socket is published, so a concurrent `_want` either lands in the plan or
        # subscribes by itself: never both.
        plan = [(channel, tuple(sorted(tickers))) for channel, tickers in self._wanted.items()]
        self._ws = ws
        log.info("kalshi.ws_connected", subscriptions=len(plan))
        self._status(StreamStatus(live=True))
        for channel, tickers in plan:
            await self._subscribe(ws, channel, tickers)
        async for raw in ws:
            await self._handle(ws, raw)

    def _went_down(self) -> None:
        was_live = self._ws is not None
        self._ws = None
        for state in (self._pending, self._active, self._ladders, self._books, self._refused, self._crossed):
            state.clear()
        if was_live:
            self._status(StreamStatus(live=False))

    async def _subscribe(self, ws: ClientConnection, channel: Channel, tickers: tuple[str, ...]) -> None:
        command_id = next(self._ids)
        self._pending[command_id] = _Subscription(channel, tickers)
        params: dict[str, Any] = {"channels": [channel.value]}
        if tickers:
            params["market_tickers"] = list(tickers)
        await ws.send(json.dumps({"id": command_id, "cmd": "subscribe", "params": params}))

    async def _handle(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            envelope = decode(WsEnvelope, json.loads(raw), "websocket message")
        except (ValueError, ConnectorError) as exc:
            log.error("kalshi.ws_malformed", error=str(exc)[:300])
            return
        match envelope.type:
            case "orderbook_snapshot" | "orderbook_delta":
                await self._on_book(ws, envelope)
            case "ticker":
                self._on_ticker(envelope)
            case "fill":
                self._on_fill(envelope)
            case "subscribed":
                self._on_subscribed(envelope)
            case "error":
                self._on_error(envelope)
            case "unsubscribed" | "ok":
                pass
            case other:
                log.warning("kalshi.ws_unexpected_message", type=other)

    def _on_subscribed(self, envelope: WsEnvelope) -> None:
        try:
            msg = decode(WsSubscribed, envelope.msg, "subscribed")
        except ConnectorError as exc:
            log.error("kalshi.ws_malformed", error=str(exc)[:300])
            return
        sub = self._pending.pop(envelope.id, None) if envelope.id is not None else None
        if sub is not None:
            sub.sid = msg.sid
            self._active[msg.sid] = sub

    def _on_error(self, envelope: WsEnvelope) -> None:
        try:
            error = decode(WsError, envelope.msg, "error")
        except ConnectorError as exc:
            log.error("kalshi.ws_malformed", error=str(exc)[:300])
            return
        sub = self._pending.pop(envelope.id, None) if envelope.id is not None else None
        log.warning("kalshi.ws_error", code=error.code, message=error.msg[:200],
                    channel=sub.channel.value if sub else None)
        # A refused subscription leaves its markets without a stream: their consumers poll REST instead.
        for ticker in sub.tickers if sub else ():
            self._refused[ticker] = f"{error.code}: {error.msg}"

    async def _on_book(self, ws: ClientConnection, envelope: WsEnvelope) -> None:
        sub = self._active.get(envelope.sid) if envelope.sid is not None else None
        if sub is None:
            return  # a subscription dropped after a gap: its late messages are stale
        try:
            expected = None if sub.seq is None else sub.seq + 1
            if envelope.seq is None or (expected is not None and envelope.seq != expected):
                raise SequenceGapError(VENUE, f"sid {sub.sid}: expected seq {expected}, got {envelope.seq}")
            sub.seq = envelope.seq
            if envelope.type == "orderbook_snapshot":
                snapshot = decode(WsOrderbookSnapshot, envelope.msg, "orderbook_snapshot")
                ticker, ts = snapshot.market_ticker, self._clock.now()
                ladder = self._ladders[ticker] = _Ladder(snapshot.yes_dollars_fp, snapshot.no_dollars_fp)
            else:
                delta = decode(WsOrderbookDelta, envelope.msg, "orderbook_delta")
                ticker = delta.market_ticker
                ts = from_epoch_ms(delta.ts_ms) if delta.ts_ms is not None else self._clock.now()
                if ticker not in self._ladders:
                    raise SequenceGapError(VENUE, f"delta for {ticker} before its snapshot")
                ladder = self._ladders[ticker]
                ladder.apply(delta.side, delta.price_dollars, delta.delta_fp)
            if ticker not in sub.tickers:
                raise SequenceGapError(VENUE, f"sid {sub.sid} carried {ticker}, which it was not subscribed to")
            try:
                book = ladder.book(ticker, ts, envelope.seq)
            except CrossedBookError:
                # Tolerated for one message (the order of two deltas within one match is not documented), never
                # published; crossed twice in a row means the book is wrong.
                if ticker in self._crossed:
                    raise
                self._crossed.add(ticker)
                return
        except (ConnectorError, ValueError) as exc:
            await self._resync(ws, sub, exc)
            return
        self._crossed.discard(ticker)
        self._books[ticker] = book
        self._publish(Channel.ORDERBOOK_DELTA, ticker, book)

    async def _resync(self, ws: ClientConnection, sub: _Subscription, reason: Exception) -> None:
        """The book cannot be trusted: drop it, unsubscribe, subscribe again and rebuild from the new snapshot."""
        self.resyncs += 1
        log.warning("kalshi.ws_resync", sid=sub.sid, reason=str(reason)[:300])
        if sub.sid is not None:
            self._active.pop(sub.sid, None)
            await ws.send(json.dumps({"id": next(self._ids), "cmd": "unsubscribe", "params": {"sids": [sub.sid]}}))
        for ticker in sub.tickers:
            self._ladders.pop(ticker, None)
            self._books.pop(ticker, None)
            self._crossed.discard(ticker)
        await self._subscribe(ws, sub.channel, sub.tickers)

    def _on_ticker(self, envelope: WsEnvelope) -> None:
        try:
            update = decode(WsTicker, envelope.msg, "ticker")
        except ConnectorError as exc:
            log.error("kalshi.ws_malformed", error=str(exc)[:300])
            return
        self._publish(Channel.TICKER, update.market_ticker, to_ticker_update(update))

    def _on_fill(self, envelope: WsEnvelope) -> None:
        try:
            msg = decode(WsFill, envelope.msg, "fill")
            fill = to_fill(msg, None)
        except ConnectorError as exc:
            # Dropped from the stream only: the REST fills reader (fills_since) still reports it.
            log.error("kalshi.ws_malformed", error=str(exc)[:300])
            return
        self._publish(Channel.FILL, msg.market_ticker, fill)

    def _publish(self, channel: Channel, ticker: str, event: StreamEvent) -> None:
        for listener in self._listeners:
            if listener.wants(channel, ticker):
                listener.put(event)

    def _status(self, status: StreamStatus) -> None:
        for listener in self._listeners:
            listener.put(status)
