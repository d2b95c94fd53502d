"""The websocket's message handling, driven without a network: sequence checks, resyncs, errors."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection

from connectors.kalshi.auth import KalshiSigner
from connectors.kalshi.constants import Channel
from connectors.kalshi.websocket import KalshiStream, Listener
from connectors.resilience import BackoffPolicy
from core.clock import ManualClock
from core.venue import OrderBook

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
D = Decimal


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, message: str) -> None:
        self.sent.append(json.loads(message))


@pytest_asyncio.fixture(loop_scope="function")
async def wired(rsa_key: tuple[str, rsa.RSAPublicKey]) -> tuple[KalshiStream, FakeSocket, Listener]:
    """A stream 'connected' to a fake socket, subscribed to the book of market X (sid 7), with one listener."""
    clock = ManualClock(T0)
    stream = KalshiStream("ws://unused", KalshiSigner("k", SecretStr(rsa_key[0]), clock), clock=clock,
                          reconnect=BackoffPolicy(), ping_interval_s=10, open_timeout_s=1, rng=random.Random(1))
    socket = FakeSocket()
    stream._ws = cast(ClientConnection, socket)
    listener = Listener(Channel.ORDERBOOK_DELTA, frozenset({"X"}))
    stream._listeners.add(listener)
    await stream._subscribe(stream._ws, Channel.ORDERBOOK_DELTA, ("X",))
    await feed(stream, {"id": 1, "type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 7}})
    return stream, socket, listener


async def feed(stream: KalshiStream, message: dict[str, Any]) -> None:
    assert stream._ws is not None
    await stream._handle(stream._ws, json.dumps(message))


def snapshot(seq: int, yes: list[list[str]], no: list[list[str]]) -> dict[str, Any]:
    return {"type": "orderbook_snapshot", "sid": 7, "seq": seq,
            "msg": {"market_ticker": "X", "yes_dollars_fp": yes, "no_dollars_fp": no}}


def delta(seq: int, side: str, price: str, change: str) -> dict[str, Any]:
    return {"type": "orderbook_delta", "sid": 7, "seq": seq,
            "msg": {"market_ticker": "X", "price_dollars": price, "delta_fp": change, "side": side,
                    "ts_ms": 1767623400000}}


async def books(listener: Listener) -> list[OrderBook]:
    found = []
    while (event := await listener.get(0)) is not None:
        assert isinstance(event, OrderBook)
        found.append(event)
    return found


async def test_snapshot_then_deltas_publish_the_yes_book(wired: tuple[KalshiStream, FakeSocket, Listener]) -> None:
    stream, socket, listener = wired

    await feed(stream, snapshot(1, [["0.4000", "10.00"]], [["0.5500", "5.00"]]))
    await feed(stream, delta(2, "yes", "0.4100", "3.00"))
    await feed(stream, delta(3, "no", "0.5500", "-5.00"))

    published = await books(listener)
    assert [(b.bids[0].price, b.asks[0].price if b.asks else None) for b in published] == [
        (D("0.40"), D("0.45")), (D("0.41"), D("0.45")), (D("0.41"), None)]
    assert published[-1].seq == 3 and stream.book("X") == published[-1]
    assert [m["cmd"] for m in socket.sent] == ["subscribe"]


@pytest.mark.parametrize("bad", [delta(4, "yes", "0.4000", "1.00"),  # seq 2 expected: a gap
                                 delta(2, "yes", "0.3000", "-1.00"),  # removes what is not there
                                 {"type": "orderbook_delta", "sid": 7, "seq": 2, "msg": {"market_ticker": "X"}}])
async def test_gap_or_inconsistent_delta_resubscribes_and_drops_the_book(
        wired: tuple[KalshiStream, FakeSocket, Listener], bad: dict[str, Any]) -> None:
    stream, socket, listener = wired
    await feed(stream, snapshot(1, [["0.4000", "10.00"]], [["0.5500", "5.00"]]))

    await feed(stream, bad)
    await feed(stream, delta(3, "yes", "0.4000", "1.00"))  # late message of the dropped subscription

    assert stream.resyncs == 1 and stream.book("X") is None
    assert [(m["cmd"], m["params"]) for m in socket.sent[1:]] == [
        ("unsubscribe", {"sids": [7]}), ("subscribe", {"channels": ["orderbook_delta"], "market_tickers": ["X"]})]
    await feed(stream, {"id": socket.sent[-1]["id"], "type": "subscribed",
                        "msg": {"channel": "orderbook_delta", "sid": 8}})
    await feed(stream, {**snapshot(1, [["0.3000", "2.00"]], []), "sid": 8})
    rebuilt = stream.book("X")
    assert rebuilt is not None and rebuilt.bids[0].price == D("0.30") and rebuilt.asks == ()
    assert len(await books(listener)) == 2  # the first snapshot and the rebuilt one


async def test_a_crossed_book_is_held_back_once_then_resynced(
        wired: tuple[KalshiStream, FakeSocket, Listener]) -> None:
    stream, _, listener = wired
    await feed(stream, snapshot(1, [["0.4000", "10.00"]], [["0.5500", "5.00"]]))

    await feed(stream, delta(2, "yes", "0.4600", "1.00"))  # crosses the 0.45 ask
    assert stream.resyncs == 0
    await feed(stream, delta(3, "no", "0.5500", "-5.00"))  # uncrossed again
    assert stream.resyncs == 0 and [b.seq for b in await books(listener)] == [1, 3]

    await feed(stream, delta(4, "no", "0.5500", "1.00"))  # a 0.45 ask under the 0.46 bid
    await feed(stream, delta(5, "no", "0.5600", "1.00"))  # crossed twice in a row
    assert stream.resyncs == 1


async def test_an_error_for_a_subscription_leaves_its_markets_to_rest(
        wired: tuple[KalshiStream, FakeSocket, Listener]) -> None:
    stream, _, _ = wired
    await stream._subscribe(cast(ClientConnection, stream._ws), Channel.ORDERBOOK_DELTA, ("NOPE",))

    await feed(stream, {"id": 2, "type": "error", "msg": {"code": 16, "msg": "Market not found"}})

    assert not stream.book_live("NOPE") and stream.book_live("X")


async def test_malformed_and_unexpected_messages_are_dropped(wired: tuple[KalshiStream, FakeSocket, Listener],
                                                             caplog: pytest.LogCaptureFixture) -> None:
    stream, socket, listener = wired

    await stream._handle(cast(ClientConnection, socket), "not json")
    await feed(stream, {"type": "ticker", "sid": 3, "msg": {"market_ticker": "X", "price_dollars": 0.5}})
    await feed(stream, {"type": "market_lifecycle_v2", "sid": 4, "msg": {}})

    assert await books(listener) == [] and stream.resyncs == 0 and len(socket.sent) == 1
