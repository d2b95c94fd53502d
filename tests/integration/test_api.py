"""The API against the real Postgres, Redis and Kafka: reads over rows written with SQL, order submission
through the intents topic (consumed back with a confluent consumer), idempotency under concurrency, errors and
health."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio
import redis
import structlog
from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from fastapi import FastAPI
from psycopg.types.json import Jsonb
from structlog.testing import LogCapture

from api.app import create_app
from api.intake import build_intent
from api.schemas.orders import OrderCreate
from core.clock import ManualClock, WallClock
from core.instruments import Venue
from core.orders import OrderIntent, order_id_for
from core.venue import ConnectorHealth, MarketDataMode, connector_status
from streams.kafka import consumer_config, ensure_topics, header_value
from streams.records import RECORD_HEADER, TRACE_HEADER, decode, encode
from streams.shared_state import (
    HEARTBEAT_TTL_S,
    connector_health_key,
    heartbeat_key,
    idempotency_key,
    latest_quotes_key,
)
from streams.topics import ORDER_INTENTS, topic_name
from tests.kit import builders
from tests.kit.waiting import eventually
from tradestream.config import (
    CoinbaseSettings,
    ConnectorSettings,
    IbkrSettings,
    KalshiSettings,
    Settings,
    load_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ACCOUNT = "paper-main"  # configured by default in Settings
T0 = builders.T0


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def intents_topic(settings: Settings) -> Iterator[str]:
    name = topic_name(ORDER_INTENTS, settings.topic_prefix)
    ensure_topics(settings, [ORDER_INTENTS])
    yield name
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    admin.delete_topics([name])[name].result(timeout=30)


@pytest.fixture(scope="module")
def sync_redis(settings: Settings) -> Iterator[redis.Redis]:
    """A Redis client; at the end of the module, every key of the module's namespace is removed."""
    client = redis.Redis.from_url(settings.redis, decode_responses=True)
    yield client
    keys = list(client.scan_iter(match=f"{settings.topic_prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the app, with the app's lifespan running for the duration."""
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings: Settings, intents_topic: str, sync_redis: redis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with _running(create_app(settings)) as running:
        yield running


@dataclass(frozen=True)
class Produced:
    intent: OrderIntent
    key: bytes | None
    partition: int | None
    headers: list[tuple[str, bytes]]


class IntentTail:
    """Reads the intents topic from its current end: what the API produces after the tail was opened."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self._consumer = Consumer(consumer_config(settings, f"test-api-{uuid.uuid4().hex[:8]}"))
        metadata = self._consumer.list_topics(topic, timeout=10)
        self.partitions = len(metadata.topics[topic].partitions)
        self._topic = topic
        self._start = {p: self._high(p) for p in range(self.partitions)}
        self._consumer.assign([TopicPartition(topic, p, offset) for p, offset in self._start.items()])
        self.records: list[Produced] = []

    def _drain(self) -> None:
        for message in self._consumer.consume(500, timeout=0.2):
            if message.error():
                raise AssertionError(f"consumer error: {message.error()}")
            raw_headers = message.headers() or []
            assert isinstance(raw_headers, list)
            headers = [(name, value) for name, value in raw_headers if isinstance(value, bytes)]
            self.records.append(Produced(decode(OrderIntent, message.value()), message.key(), message.partition(),
                                         headers))

    def read_to_end(self) -> list[Produced]:
        """Everything produced so far: the API answers only after the broker acknowledged (acks=all)."""

        def caught_up() -> bool:
            self._drain()
            positions = self._consumer.position([TopicPartition(self._topic, p) for p in range(self.partitions)])
            # A partition nothing was fetched from yet has no position: it is where the tail started.
            return all(max(tp.offset, self._start[tp.partition]) >= self._high(tp.partition) for tp in positions)

        eventually(caught_up, timeout=20, what="the intents topic read to its end")
        return self.records

    def _high(self, partition: int) -> int:
        return int(self._consumer.get_watermark_offsets(TopicPartition(self._topic, partition), timeout=10,
                                                        cached=False)[1])

    def wait_for(self, order_id: str) -> Produced:
        def found() -> Produced | None:
            self._drain()
            return next((r for r in self.records if r.intent.order_id == order_id), None)

        return eventually(found, timeout=20, what=f"the intent of {order_id} on the topic")

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def tail(settings: Settings, intents_topic: str) -> Iterator[IntentTail]:
    reader = IntentTail(settings, intents_topic)
    yield reader
    reader.close()


def _body(**overrides: Any) -> dict[str, Any]:
    return {"account_id": ACCOUNT, "instrument_id": "crypto_spot:BTC-USD", "side": "buy", "order_type": "limit",
            "quantity": "0.5", "limit_price": "100.25", "time_in_force": "gtc", **overrides}


def _order_row(order_id: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "order_id": order_id, "client_order_id": order_id, "trace_id": uuid.uuid4().hex, "account_id": ACCOUNT,
        "org_id": "default", "user_id": "operator", "strategy_id": "api", "idempotency_key": uuid.uuid4().hex,
        "intent_fingerprint": "f" * 32, "instrument_id": "crypto_spot:BTC-USD", "side": "buy",
        "order_type": "limit", "quantity": Decimal("0.5"), "limit_price": Decimal("100.25"),
        "time_in_force": "gtc", "status": "open", "filled_quantity": Decimal(0), "average_fill_price": None,
        "requested_mode": "paper", "effective_mode": "paper", "reason_code": "PAPER_SIMULATED",
        "reason_detail": "", "venue_response": None, "created_at": T0, "updated_at": T0, "version": 1,
    }
    row.update(overrides)
    if row["venue_response"] is not None:
        row["venue_response"] = Jsonb(row["venue_response"])
    return row


def _insert(settings: Settings, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    values = ", ".join(f"%({c})s" for c in row)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({values})", row)


def _fill_row(order_id: str, trade_id: str, quantity: str, price: str, fee: str, ts: datetime) -> dict[str, Any]:
    return {"ts": ts, "venue": "paper", "venue_trade_id": trade_id, "order_id": order_id,
            "trace_id": uuid.uuid4().hex, "account_id": ACCOUNT, "org_id": "default", "user_id": "operator",
            "strategy_id": "api", "instrument_id": "crypto_spot:BTC-USD", "side": "buy",
            "quantity": Decimal(quantity), "price": Decimal(price), "fee": Decimal(fee), "liquidity": "taker",
            "mode": "paper"}


def _for(records: list[Produced], order_id: str) -> list[Produced]:
    return [r for r in records if r.intent.order_id == order_id]


# ---------------------------------------------------------------- reads


async def test_get_order_when_rows_exist_then_order_with_fills_summary_and_decimal_strings(
        settings: Settings, client: httpx.AsyncClient) -> None:
    order_id = f"ord_{uuid.uuid4().hex[:28]}"
    _insert(settings, "orders", _order_row(order_id, status="partially_filled", filled_quantity=Decimal("0.3"),
                                           average_fill_price=Decimal("100.20"),
                                           venue_response={"simulated": True, "book": "paper"},
                                           reason_code="FILLED_AT_TOUCH", reason_detail="price=100.20"))
    _insert(settings, "fills", _fill_row(order_id, f"t-{order_id}-1", "0.1", "100.10", "0.01", T0))
    _insert(settings, "fills", _fill_row(order_id, f"t-{order_id}-2", "0.2", "100.25", "0.02",
                                         T0 + timedelta(seconds=1)))

    response = await client.get(f"/v1/orders/{order_id}")

    assert response.status_code == 200, response.text
    order = response.json()
    assert order["order_id"] == order_id
    assert order["status"] == "partially_filled"
    assert order["quantity"] == "0.5" and order["limit_price"] == "100.25"
    assert order["filled_quantity"] == "0.3" and order["average_fill_price"] == "100.20"
    assert order["requested_mode"] == "paper" and order["effective_mode"] == "paper"
    assert order["reason_code"] == "FILLED_AT_TOUCH" and order["reason_detail"] == "price=100.20"
    assert order["venue_response"] == {"simulated": True, "book": "paper"}
    assert len(order["trace_id"]) == 32
    assert order["fills"]["count"] == 2
    assert Decimal(order["fills"]["quantity"]) == Decimal("0.3")
    assert Decimal(order["fills"]["fees"]) == Decimal("0.03")
    assert datetime.fromisoformat(order["fills"]["last_fill_at"]) == T0 + timedelta(seconds=1)


async def test_get_order_when_unknown_then_404_with_reason(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/orders/ord_doesnotexist")

    assert response.status_code == 404
    assert response.json()["error"] == "ORDER_NOT_FOUND"
    assert "ord_doesnotexist" in response.json()["detail"]


async def test_list_orders_when_filtered_then_matching_orders_newest_first(
        settings: Settings, client: httpx.AsyncClient) -> None:
    instrument = f"equity:T{uuid.uuid4().hex[:6]}"
    ids = [f"ord_{uuid.uuid4().hex[:28]}" for _ in range(3)]
    for minutes, order_id in enumerate(ids):
        _insert(settings, "orders", _order_row(order_id, instrument_id=instrument,
                                               created_at=T0 + timedelta(minutes=minutes),
                                               status="filled" if minutes == 1 else "open"))

    everything = await client.get("/v1/orders", params={"instrument_id": instrument, "account_id": ACCOUNT})
    filled = await client.get("/v1/orders", params={"instrument_id": instrument, "status": "filled"})
    limited = await client.get("/v1/orders", params={"instrument_id": instrument, "limit": 2})

    assert everything.status_code == 200
    assert [o["order_id"] for o in everything.json()["data"]] == ids[::-1]
    assert everything.json()["count"] == 3
    assert [o["order_id"] for o in filled.json()["data"]] == [ids[1]]
    assert [o["order_id"] for o in limited.json()["data"]] == [ids[2], ids[1]]


async def test_list_orders_when_limit_above_max_or_status_unknown_then_422(client: httpx.AsyncClient) -> None:
    too_many = await client.get("/v1/orders", params={"limit": 100_000})
    bad_status = await client.get("/v1/orders", params={"status": "sleeping"})

    assert too_many.status_code == 422 and too_many.json()["error"] == "VALIDATION_ERROR"
    assert "query.limit" in too_many.json()["detail"]
    assert bad_status.status_code == 422 and "query.status" in bad_status.json()["detail"]


async def test_list_positions_when_filtered_by_account_then_only_its_positions(
        settings: Settings, client: httpx.AsyncClient) -> None:
    other = f"acct-{uuid.uuid4().hex[:6]}"
    for account_id, instrument, quantity in ((ACCOUNT, "crypto_spot:ETH-USD", "-2.5"), (other, "x:Y", "1")):
        _insert(settings, "positions", {
            "account_id": account_id, "instrument_id": instrument, "org_id": "default", "user_id": "operator",
            "mode": "paper", "quantity": Decimal(quantity), "average_price": Decimal("2000.5"),
            "multiplier": Decimal(1), "realized_pnl": Decimal("12.75"), "fees_paid": Decimal("0.4"),
            "trace_id": uuid.uuid4().hex, "updated_at": T0})

    response = await client.get("/v1/positions", params={"account_id": other})
    mine = await client.get("/v1/positions", params={"account_id": ACCOUNT})

    assert response.status_code == 200
    assert [(p["account_id"], p["instrument_id"], p["quantity"]) for p in response.json()["data"]] == [
        (other, "x:Y", "1")]
    eth = next(p for p in mine.json()["data"] if p["instrument_id"] == "crypto_spot:ETH-USD")
    assert (eth["quantity"], eth["average_price"], eth["realized_pnl"], eth["mode"]) == (
        "-2.5", "2000.5", "12.75", "paper")


async def test_latest_quotes_when_in_redis_then_listed_and_filterable(
        settings: Settings, sync_redis: redis.Redis, client: httpx.AsyncClient) -> None:
    key = latest_quotes_key(settings)
    btc = builders.quote("crypto_spot:BTC-USD", bid="100.00", ask="100.10", seq=7)
    eth = builders.quote("crypto_spot:ETH-USD", bid="2000.5", ask="2001", seq=3)
    sync_redis.hset(key, mapping={q.instrument_id: encode(q).decode() for q in (btc, eth)})

    everything = await client.get("/v1/quotes/latest")
    one = await client.get("/v1/quotes/latest", params={"instrument_id": "crypto_spot:ETH-USD"})
    none = await client.get("/v1/quotes/latest", params={"instrument_id": "nope:NOPE"})

    assert everything.status_code == 200
    assert [q["instrument_id"] for q in everything.json()["data"]] == ["crypto_spot:BTC-USD", "crypto_spot:ETH-USD"]
    assert everything.json()["data"][0]["bid"] == "100.00" and everything.json()["data"][0]["seq"] == 7
    assert one.json()["data"] == [{"instrument_id": "crypto_spot:ETH-USD", "bid": "2000.5", "ask": "2001",
                                   "bid_size": "5", "ask_size": "5", "ts": "2026-01-05T14:30:00Z", "seq": 3}]
    assert none.json() == {"data": [], "count": 0}


# ---------------------------------------------------------------- instruments


def _instrument_row(instrument_id: str, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "instrument_id": instrument_id, "asset_class": instrument_id.split(":", 1)[0], "venue": "coinbase",
        "quote_currency": "USD", "tick_size": Decimal("0.01"), "lot_size": Decimal("0.0001"),
        "multiplier": Decimal(1), "expiry": None, "venue_symbols": {"coinbase": instrument_id.split(":", 1)[1]},
        "tradeable": True, "status": "online", "listed_by": ["coinbase"], "updated_at": T0}
    row.update(overrides)
    row["venue_symbols"] = Jsonb(row["venue_symbols"])
    return row


async def test_list_instruments_when_filtered_or_paged_then_matching_instruments_by_id(
        settings: Settings, client: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    first, second = f"crypto_spot:A{tag}-USD", f"crypto_spot:B{tag}-USD"
    _insert(settings, "instruments", _instrument_row(first, venue_symbols={"coinbase": f"A{tag}-USD",
                                                                           "simulated": "a"},
                                                     listed_by=["simulated", "coinbase"]))
    _insert(settings, "instruments", _instrument_row(second, tradeable=False, status="trading_disabled"))

    crypto = await client.get("/v1/instruments", params={"asset_class": "crypto_spot", "venue": "coinbase"})
    untradeable = await client.get("/v1/instruments", params={"tradeable": "false"})
    page_one = await client.get("/v1/instruments", params={"asset_class": "crypto_spot", "limit": 1})
    page_two = await client.get("/v1/instruments", params={"asset_class": "crypto_spot", "limit": 1,
                                                           "after": page_one.json()["data"][0]["instrument_id"]})

    assert crypto.status_code == 200, crypto.text
    assert [i["instrument_id"] for i in crypto.json()["data"]] == [first, second]
    assert crypto.json()["data"][0] == {
        "instrument_id": first, "asset_class": "crypto_spot", "venue": "coinbase", "quote_currency": "USD",
        "tick_size": "0.01", "lot_size": "0.0001", "multiplier": "1", "expiry": None,
        "venue_symbols": {"coinbase": f"A{tag}-USD", "simulated": "a"}, "tradeable": True, "status": "online",
        "settlement_price": None, "listed_by": ["simulated", "coinbase"], "updated_at": "2026-01-05T14:30:00Z"}
    assert [(i["instrument_id"], i["status"]) for i in untradeable.json()["data"]] == [(second, "trading_disabled")]
    assert [i["instrument_id"] for i in page_one.json()["data"] + page_two.json()["data"]] == [first, second]


async def test_get_instrument_when_known_then_it_with_expiry_and_multiplier(
        settings: Settings, client: httpx.AsyncClient) -> None:
    option = f"option:T{uuid.uuid4().hex[:6].upper()}-20261218-C-250"
    _insert(settings, "instruments", _instrument_row(option, venue="ibkr", multiplier=Decimal(100),
                                                     lot_size=Decimal(1), expiry=T0 + timedelta(days=300),
                                                     venue_symbols={"ibkr": "700001"}, listed_by=["ibkr:DU1"]))

    response = await client.get(f"/v1/instruments/{option}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["venue"], body["multiplier"], body["lot_size"], body["venue_symbols"], body["expiry"]) == (
        "ibkr", "100", "1", {"ibkr": "700001"}, "2026-11-01T14:30:00Z")


async def test_get_instrument_when_unknown_then_404_and_bad_filters_then_422(client: httpx.AsyncClient) -> None:
    unknown = await client.get("/v1/instruments/equity:NOPE")
    bad_class = await client.get("/v1/instruments", params={"asset_class": "tulips"})
    bad_limit = await client.get("/v1/instruments", params={"limit": 0})

    assert unknown.status_code == 404
    assert unknown.json()["error"] == "INSTRUMENT_NOT_FOUND" and "equity:NOPE" in unknown.json()["detail"]
    assert bad_class.status_code == 422 and "query.asset_class" in bad_class.json()["detail"]
    assert bad_limit.status_code == 422 and bad_limit.json()["error"] == "VALIDATION_ERROR"


# ---------------------------------------------------------------- order submission


async def test_submit_when_first_time_then_one_intent_with_trace_header_and_202(
        settings: Settings, client: httpx.AsyncClient, tail: IntentTail) -> None:
    key = uuid.uuid4().hex

    response = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key})

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert response.headers["location"] == f"/v1/orders/{accepted['order_id']}" == accepted["location"]
    produced = _for(await asyncio.to_thread(tail.read_to_end), accepted["order_id"])
    assert len(produced) == 1
    intent = produced[0].intent
    assert intent.trace_id == accepted["trace_id"]
    assert header_value(produced[0].headers, TRACE_HEADER) == accepted["trace_id"]
    assert header_value(produced[0].headers, RECORD_HEADER) == "OrderIntent"
    assert produced[0].key == ACCOUNT.encode()
    assert produced[0].partition == (murmur2(ACCOUNT.encode()) & 0x7FFFFFFF) % tail.partitions
    assert (intent.account_id, intent.strategy_id, intent.idempotency_key) == (ACCOUNT, "api", key)
    assert (intent.quantity, intent.limit_price) == (Decimal("0.5"), Decimal("100.25"))
    assert intent.requested_mode.value == "paper"  # the account's mode when none is asked
    assert intent.source.value == "api"
    assert (intent.owner.org_id, intent.owner.user_id) == ("default", "operator")


async def test_submit_when_order_materialises_in_time_then_201_with_the_order(
        settings: Settings, client: httpx.AsyncClient, tail: IntentTail) -> None:
    key = uuid.uuid4().hex
    post = asyncio.create_task(client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key}))

    # Play the OMS: when the intent is on the topic, the order row appears in the read model.
    produced = await asyncio.to_thread(tail.wait_for, _order_id(key))
    _insert(settings, "orders", _order_row(produced.intent.order_id, trace_id=produced.intent.trace_id,
                                           idempotency_key=key, intent_fingerprint=produced.intent.fingerprint))
    response = await post

    assert response.status_code == 201, response.text
    assert response.json()["order_id"] == produced.intent.order_id
    assert response.json()["trace_id"] == produced.intent.trace_id
    assert response.headers["location"] == f"/v1/orders/{produced.intent.order_id}"


async def test_submit_when_same_key_twice_then_one_intent_and_the_existing_order(
        settings: Settings, client: httpx.AsyncClient, tail: IntentTail) -> None:
    key = uuid.uuid4().hex
    first = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key})
    second = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key})
    order_id = first.json()["order_id"]
    produced = _for(await asyncio.to_thread(tail.read_to_end), order_id)
    _insert(settings, "orders", _order_row(order_id, trace_id=produced[0].intent.trace_id, idempotency_key=key,
                                           intent_fingerprint=produced[0].intent.fingerprint))
    third = await client.post("/v1/orders", json=_body(quantity="0.50"), headers={"Idempotency-Key": key})

    assert (first.status_code, second.status_code, third.status_code) == (202, 202, 200)
    assert second.json()["order_id"] == order_id and second.json()["trace_id"] is None
    assert third.json()["order_id"] == order_id and third.json()["trace_id"] == produced[0].intent.trace_id
    assert len(produced) == 1
    assert len(_for(await asyncio.to_thread(tail.read_to_end), order_id)) == 1


async def test_submit_when_200_concurrent_posts_with_one_key_then_exactly_one_intent(
        client: httpx.AsyncClient, tail: IntentTail) -> None:
    key = uuid.uuid4().hex

    responses = await asyncio.gather(*(client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key})
                                       for _ in range(200)))

    assert {r.status_code for r in responses} == {202}, {r.text for r in responses if r.status_code != 202}
    order_ids = {r.json()["order_id"] for r in responses}
    assert order_ids == {_order_id(key)}
    producers = [r.json()["trace_id"] for r in responses if r.json()["trace_id"] is not None]
    assert len(producers) == 1
    produced = _for(await asyncio.to_thread(tail.read_to_end), _order_id(key))
    assert [p.intent.trace_id for p in produced] == producers


async def test_submit_when_same_key_with_another_body_then_422_idempotency_conflict(
        client: httpx.AsyncClient, tail: IntentTail) -> None:
    key = uuid.uuid4().hex
    first = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key})

    conflict = await client.post("/v1/orders", json=_body(quantity="0.6"), headers={"Idempotency-Key": key})

    assert first.status_code == 202
    assert conflict.status_code == 422
    assert conflict.json()["error"] == "IDEMPOTENCY_CONFLICT"
    assert key in conflict.json()["detail"]
    assert len(_for(await asyncio.to_thread(tail.read_to_end), first.json()["order_id"])) == 1


async def test_submit_when_order_outlived_its_claim_then_no_intent_and_the_existing_order(
        settings: Settings, sync_redis: redis.Redis, client: httpx.AsyncClient, tail: IntentTail) -> None:
    key = uuid.uuid4().hex
    order_id = _order_id(key)
    fingerprint = _intent_for(settings, _body(), key).fingerprint
    _insert(settings, "orders", _order_row(order_id, idempotency_key=key, intent_fingerprint=fingerprint))

    same = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key})
    other = await client.post("/v1/orders", json=_body(side="sell"), headers={"Idempotency-Key": key})

    assert same.status_code == 200 and same.json()["order_id"] == order_id
    assert other.status_code == 422 and other.json()["error"] == "IDEMPOTENCY_CONFLICT"
    assert sync_redis.get(idempotency_key(settings, order_id)) == fingerprint
    assert _for(await asyncio.to_thread(tail.read_to_end), order_id) == []


async def test_submit_when_idempotency_key_missing_then_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/orders", json=_body())

    assert response.status_code == 400
    assert response.json()["error"] == "IDEMPOTENCY_KEY_REQUIRED"
    assert "Idempotency-Key" in response.json()["detail"]


async def test_submit_when_idempotency_key_too_long_then_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": "k" * 256})

    assert response.status_code == 400 and response.json()["error"] == "IDEMPOTENCY_KEY_INVALID"


@pytest.mark.parametrize(("overrides", "field"), [
    ({"quantity": 0.5}, "body.quantity"),
    ({"quantity": 1}, "body.quantity"),
    ({"limit_price": 100.25}, "body.limit_price"),
    ({"quantity": "1e3"}, "body.quantity"),
    ({"quantity": "NaN"}, "body.quantity"),
    ({"quantity": "0"}, "body.quantity"),
    ({"side": "hold"}, "body.side"),
    ({"account_id": "bad id!"}, "body.account_id"),
    ({"mode": "yolo"}, "body.mode"),
    ({"surprise": True}, "body.surprise"),
    ({"limit_price": None}, "body"),
])
async def test_submit_when_body_invalid_then_422_naming_the_field(
        client: httpx.AsyncClient, overrides: dict[str, Any], field: str) -> None:
    response = await client.post("/v1/orders", json=_body(**overrides),
                                 headers={"Idempotency-Key": uuid.uuid4().hex})

    assert response.status_code == 422, response.text
    error = response.json()
    assert error["error"] == "VALIDATION_ERROR"
    assert field in [f["field"] for f in error["fields"]], error
    assert error["detail"]


async def test_submit_when_float_quantity_then_422_says_send_a_string(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/orders", json=_body(quantity=0.5), headers={"Idempotency-Key": "k-float"})

    assert response.status_code == 422
    assert response.json()["fields"] == [{"field": "body.quantity",
                                          "reason": 'must be a decimal string such as "0.5", not a JSON float'}]


async def test_submit_when_body_is_not_json_then_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/orders", content=b"{not json", headers={
        "Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"})

    assert response.status_code == 422 and response.json()["error"] == "VALIDATION_ERROR"


async def test_submit_when_account_unknown_then_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/orders", json=_body(account_id="nobody"),
                                 headers={"Idempotency-Key": uuid.uuid4().hex})

    assert response.status_code == 404
    assert response.json() == {"error": "UNKNOWN_ACCOUNT", "detail": "account 'nobody' is not configured"}


async def test_submit_when_handled_then_log_lines_carry_the_trace_id(client: httpx.AsyncClient) -> None:
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture],
                        cache_logger_on_first_use=False)
    try:
        response = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": uuid.uuid4().hex})
    finally:
        structlog.reset_defaults()

    produced = [e for e in capture.entries if e["event"] == "order intent produced"]
    assert len(produced) == 1
    assert produced[0]["trace_id"] == response.json()["trace_id"]
    assert produced[0]["order_id"] == response.json()["order_id"]


# ---------------------------------------------------------------- errors, docs, health


async def test_unknown_route_then_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing")

    assert response.status_code == 404
    assert response.json() == {"error": "NOT_FOUND", "detail": "Not Found"}


async def test_docs_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    spec = await client.get("/openapi.json")

    assert docs.status_code == 200
    assert {"/health", "/v1/orders", "/v1/orders/{order_id}", "/v1/positions", "/v1/quotes/latest",
            "/v1/instruments", "/v1/instruments/{instrument_id}"} <= set(spec.json()["paths"])


async def test_health_when_services_and_a_worker_are_up_then_200_with_each_state(
        settings: Settings, sync_redis: redis.Redis) -> None:
    clock = ManualClock(datetime.now(UTC))
    component = f"worker-{uuid.uuid4().hex[:6]}"
    _beat(sync_redis, settings, component, clock.now() - timedelta(seconds=2))
    try:
        async with _running(create_app(settings, clock)) as client:
            response = await client.get("/health")
    finally:
        sync_redis.delete(heartbeat_key(settings, component))

    assert response.status_code == 200, response.text
    health = response.json()
    assert health["state"] == "up"
    assert {health[s]["state"] for s in ("kafka", "postgres", "redis")} == {"up"}
    assert health["workers"]["components"] == [{"component": component, "state": "up", "age_s": 2.0,
                                                 "detail": ""}]


async def test_health_when_connectors_report_then_each_state_fallback_and_error_and_the_status_stays_200(
        settings: Settings, sync_redis: redis.Redis) -> None:
    clock = ManualClock(datetime.now(UTC))
    component = f"worker-{uuid.uuid4().hex[:6]}"
    _beat(sync_redis, settings, component, clock.now())
    polling = ConnectorHealth(venue=Venue.COINBASE, reachable=True, authenticated=True,
                              market_data_mode=MarketDataMode.POLLING, latency_ms=12.5,
                              detail="market data websocket down (closed): polling REST", checked_at=clock.now())
    streaming = polling.model_copy(update={"venue": Venue.IBKR, "market_data_mode": MarketDataMode.STREAMING,
                                           "detail": ""})
    coinbase = connector_status("coinbase", Venue.COINBASE, polling, [],
                                ("quotes: VenueUnavailableError: closed", clock.now()), clock.now())
    ibkr = connector_status("ibkr:DU1", Venue.IBKR, streaming, [], None, clock.now() - timedelta(minutes=5))
    key = connector_health_key(settings)
    sync_redis.hset(key, mapping={"coinbase": coinbase.model_dump_json(), "ibkr:DU1": ibkr.model_dump_json()})
    enabled = settings.model_copy(update={"connectors": ConnectorSettings(
        kalshi=KalshiSettings(), coinbase=CoinbaseSettings(), ibkr=IbkrSettings())})
    try:
        async with _running(create_app(enabled, clock)) as client:
            response = await client.get("/health")
    finally:
        sync_redis.delete(heartbeat_key(settings, component), key)

    assert response.status_code == 200, response.text
    section = response.json()["connectors"]
    assert (section["state"], section["detail"]) == (
        "degraded", "coinbase degraded (rest-polling), ibkr:DU1 stale, kalshi missing")
    reports = {r["connector"]: r for r in section["connectors"]}
    assert {k: reports["coinbase"][k] for k in ("venue", "state", "fallback", "latency_ms", "last_error")} == {
        "venue": "coinbase", "state": "degraded", "fallback": "rest-polling", "latency_ms": 12.5,
        "last_error": "quotes: VenueUnavailableError: closed"}
    assert (reports["ibkr:DU1"]["state"], reports["ibkr:DU1"]["age_s"]) == ("stale", 300.0)
    assert reports["kalshi"]["state"] == "missing"


async def test_health_when_no_connector_is_enabled_then_connectors_ok_and_empty(
        settings: Settings, client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.json()["connectors"] == {"state": "ok", "detail": "no connector enabled", "connectors": []}


async def test_health_when_a_heartbeat_is_old_or_expires_then_503_with_stale_and_missing(
        settings: Settings, sync_redis: redis.Redis) -> None:
    clock = ManualClock(datetime.now(UTC))
    slow, gone = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("slow", "gone"))
    _beat(sync_redis, settings, slow, clock.now() - timedelta(seconds=HEARTBEAT_TTL_S - 1))
    _beat(sync_redis, settings, gone, clock.now())
    try:
        async with _running(create_app(settings, clock)) as client:
            first = await client.get("/health")
            sync_redis.delete(heartbeat_key(settings, gone))
            second = await client.get("/health")
    finally:
        sync_redis.delete(heartbeat_key(settings, slow), heartbeat_key(settings, gone))

    assert first.status_code == 503
    assert first.json()["error"] == "DEPENDENCY_UNAVAILABLE"
    states = {c["component"]: c["state"] for c in first.json()["workers"]["components"]}
    assert states == {slow: "stale", gone: "up"}
    assert {c["component"]: c["state"] for c in second.json()["workers"]["components"]} == {
        slow: "stale", gone: "missing"}
    assert slow in second.json()["detail"] and gone in second.json()["detail"]


async def test_health_when_no_worker_heartbeat_then_503(settings: Settings) -> None:
    async with _running(create_app(settings)) as client:
        response = await client.get("/health")

    assert response.status_code == 503
    assert response.json()["workers"] == {"state": "down", "detail": "no worker heartbeat found",
                                          "components": []}
    assert response.json()["postgres"]["state"] == "up"


async def test_health_and_requests_when_services_unreachable_then_503_quickly(settings: Settings) -> None:
    unreachable = load_settings(topic_prefix=settings.topic_prefix, kafka_bootstrap="127.0.0.1:9",
                                postgres_dsn="postgresql://tradestream@127.0.0.1:9/tradestream",
                                redis_url="redis://127.0.0.1:9/0")
    async with _running(create_app(unreachable)) as client:
        started = time.monotonic()
        health = await client.get("/health")
        elapsed = time.monotonic() - started
        orders = await client.get("/v1/orders")
        submit = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": uuid.uuid4().hex})
        quotes = await client.get("/v1/quotes/latest")

    assert health.status_code == 503
    assert {health.json()[s]["state"] for s in ("kafka", "postgres", "redis", "workers")} == {"down"}
    assert elapsed < 2.5
    for response in (orders, submit, quotes):
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "DEPENDENCY_UNAVAILABLE"


async def test_submit_when_kafka_unreachable_then_503_and_a_retry_with_the_key_produces_once(
        settings: Settings, sync_redis: redis.Redis, client: httpx.AsyncClient, tail: IntentTail) -> None:
    key = uuid.uuid4().hex
    no_kafka = load_settings(topic_prefix=settings.topic_prefix, kafka_bootstrap="127.0.0.1:9",
                             postgres_dsn=settings.dsn, redis_url=settings.redis)
    async with _running(create_app(no_kafka)) as down:
        failed = await down.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key})

    claim_after_failure = sync_redis.get(idempotency_key(settings, _order_id(key)))
    retried = await client.post("/v1/orders", json=_body(), headers={"Idempotency-Key": key})

    assert failed.status_code == 503 and failed.json()["error"] == "DEPENDENCY_UNAVAILABLE"
    assert claim_after_failure is None
    assert retried.status_code == 202 and retried.json()["trace_id"] is not None
    assert len(_for(await asyncio.to_thread(tail.read_to_end), _order_id(key))) == 1


# ---------------------------------------------------------------- small helpers


def _order_id(key: str) -> str:
    return order_id_for(ACCOUNT, "api", key)


def _intent_for(settings: Settings, body: dict[str, Any], key: str) -> OrderIntent:
    account = settings.account(ACCOUNT)
    assert account is not None
    return build_intent(OrderCreate.model_validate(body), account, key, WallClock())


def _beat(client: redis.Redis, settings: Settings, component: str, at: datetime) -> None:
    client.set(heartbeat_key(settings, component), json.dumps({"pid": 1, "at": at.isoformat()}),
               ex=HEARTBEAT_TTL_S)
