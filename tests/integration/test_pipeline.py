"""One paper order end to end through the real Kafka, Postgres and Redis, with the real processes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from confluent_kafka import Producer

from connectors.simulated.market import SimulatedMarket
from streams.kafka import ensure_topics, headers, producer_config
from streams.records import encode
from streams.shared_state import heartbeat_key, latest_quotes_key
from streams.topics import MD_QUOTES, ORDER_INTENTS, topic_name
from tests.kit.dead_letters import await_dead_letter
from tests.kit.processes import free_port, running
from tests.kit.waiting import eventually
from tradestream.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pipeline(settings: Settings,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, dict[str, Path]]]:
    live = settings.model_copy(update={"api_port": free_port(), "pnl_interval_s": 0.5})
    ensure_topics(live)
    logs = tmp_path_factory.mktemp("logs")
    with running(live, "sinks", "worker", "api", log_dir=logs) as paths:
        publish_one_round_of_quotes(live)
        store = redis.Redis.from_url(live.redis)
        eventually(lambda: store.hlen(latest_quotes_key(live)) >= 6, what="quotes in the shared market view")
        yield live, paths


def publish_one_round_of_quotes(settings: Settings) -> None:
    producer = Producer(producer_config(settings))
    for quote in SimulatedMarket(seed=3).next_round(datetime.now(UTC)):
        producer.produce(topic_name(MD_QUOTES, settings.topic_prefix), key=quote.instrument_id.encode(),
                         value=encode(quote), headers=headers(None, "Quote"))
    assert producer.flush(10) == 0


def post_order(settings: Settings, key: str, quantity: str = "5") -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{settings.api_port}/v1/orders", headers={"Idempotency-Key": key},
                      json={"account_id": "paper-main", "instrument_id": "equity:AAPL", "side": "buy",
                            "order_type": "market", "quantity": quantity}, timeout=10)


def get_order(settings: Settings, order_id: str) -> dict[str, object] | None:
    response = httpx.get(f"http://127.0.0.1:{settings.api_port}/v1/orders/{order_id}", timeout=5)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body: dict[str, object] = response.json()
    return body if body.get("status") == "filled" else None


def test_the_worker_runs_on_uvloop(pipeline: tuple[Settings, dict[str, Path]]) -> None:
    settings, _ = pipeline
    beat = redis.Redis.from_url(settings.redis).get(heartbeat_key(settings, "worker:stream"))
    assert beat is not None
    assert json.loads(beat)["event_loop"] == "uvloop"  # asyncio's own loop costs ~3 ms more CPU per order


def test_one_intent_becomes_order_fill_position_and_api_response_with_one_trace_id(
        pipeline: tuple[Settings, dict[str, Path]]) -> None:
    settings, logs = pipeline
    response = post_order(settings, key=f"e2e-{uuid.uuid4().hex}")
    assert response.status_code in (201, 202), response.text
    order_id = response.json()["order_id"]

    order = eventually(lambda: get_order(settings, order_id), timeout=30, what="the order to be filled")
    trace_id = order["trace_id"]
    assert isinstance(trace_id, str) and len(trace_id) == 32
    assert (order["requested_mode"], order["effective_mode"], order["reason_code"]) == \
        ("paper", "paper", "PAPER_SIMULATED")

    def rows() -> tuple[Any, ...] | None:
        with psycopg.connect(settings.dsn) as conn:
            found = conn.execute(
                "SELECT o.trace_id, f.trace_id, p.trace_id, f.price, f.fee FROM orders o"
                " JOIN fills f ON f.order_id = o.order_id"
                " JOIN positions p ON p.account_id = o.account_id AND p.instrument_id = o.instrument_id"
                " WHERE o.order_id = %s", (order_id,)).fetchone()
        return found if found and found[2] == found[0] else None

    order_trace, fill_trace, position_trace, price, fee = eventually(rows, what="order, fill and position rows")
    assert order_trace == fill_trace == position_trace == trace_id
    assert price > 0 and fee == 1  # IBKR's per-share minimum on 5 shares

    # every log line the worker wrote about this order carries its trace id
    worker_lines = [json.loads(line) for line in logs["worker"].read_text().splitlines() if trace_id in line]
    assert {line["event"] for line in worker_lines} >= {"risk.decided", "order.routed", "fill.applied"}
    assert all(line["trace_id"] == trace_id for line in worker_lines)


def test_malformed_intent_goes_to_the_dead_letter_topic_and_the_next_good_one_is_processed(
        pipeline: tuple[Settings, dict[str, Path]]) -> None:
    settings, _ = pipeline
    producer = Producer(producer_config(settings))
    intents = topic_name(ORDER_INTENTS, settings.topic_prefix)
    producer.produce(intents, key=b"paper-main", value=b'{"schema_version": 1, "quantity": 1.5}')
    assert producer.flush(10) == 0
    good = post_order(settings, key=f"after-bad-{uuid.uuid4().hex}", quantity="1")
    assert good.status_code in (201, 202), good.text
    eventually(lambda: get_order(settings, good.json()["order_id"]), timeout=30, what="the good order to fill")

    letter = await_dead_letter(settings, lambda d: d.source_topic == intents and d.consumer == "risk_gate",
                               "the dead letter")
    assert letter.raw_value == b'{"schema_version": 1, "quantity": 1.5}'
    assert "trace_id: Field required" in letter.error
