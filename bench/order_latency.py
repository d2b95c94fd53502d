"""Paper intent-to-fill latency through the real broker: intents in, FillReported out, p50/p99 printed.

Starts a stream worker on a fresh topic prefix, seeds a quote per instrument in the shared market view,
sends paced intents (alternating buy/sell so positions stay inside the risk limits) and times each intent
from produce to the moment its fill is read back from orders.events.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import redis
from confluent_kafka import Consumer, Producer

from connectors.simulated.market import SimulatedMarket
from core.orders import IntentSource, OrderIntent
from core.types import OrderType, Side
from infra.services import ensure_up
from streams.kafka import consumer_config, ensure_topics, headers, producer_config
from streams.records import encode
from streams.shared_state import heartbeat_key, latest_quotes_key
from streams.topics import ORDER_EVENTS, ORDER_INTENTS, topic_name
from tradestream.config import Settings, load_settings


def isolated_settings() -> Settings:
    endpoints = ensure_up()
    tag = uuid.uuid4().hex[:8]
    os.environ.update({"TRADESTREAM_TOPIC_PREFIX": f"bench{tag}.", "TRADESTREAM_APP_ID": f"bench-{tag}",
                       "TRADESTREAM_LOG_LEVEL": "WARNING",
                       # the bench measures the path, not the per-account order-rate limit
                       "TRADESTREAM_RISK__MAX_ORDERS_PER_WINDOW": "1000000"})
    return load_settings(kafka_bootstrap=endpoints.kafka_bootstrap, redis_url=endpoints.redis_url)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="intents per second")
    args = parser.parse_args()

    settings = isolated_settings()
    ensure_topics(settings)
    market = SimulatedMarket(seed=1)
    store = redis.Redis.from_url(settings.redis)
    for quote in market.next_round(datetime.now(UTC)):
        store.hset(latest_quotes_key(settings), quote.instrument_id, encode(quote))
    log_path = settings.state_dir / "logs" / "bench-order-latency-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen([sys.executable, "-m", "tradestream", "worker"], env=os.environ.copy(),
                              stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not store.exists(heartbeat_key(settings, "worker:stream")):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the stream worker did not start; see {log_path}")
            time.sleep(0.2)
        consumer = Consumer(consumer_config(settings, f"bench-{uuid.uuid4().hex[:6]}", **{"fetch.wait.max.ms": 1}))
        consumer.subscribe([topic_name(ORDER_EVENTS, settings.topic_prefix)])
        producer = Producer(producer_config(settings, **{"linger.ms": 0}))
        account = settings.accounts[0]
        sent: dict[str, float] = {}
        start_timed = 0
        created: dict[str, datetime] = {}
        routed: list[float] = []
        latencies: list[float] = []
        interval = 1 / args.rate
        next_send = time.monotonic()
        i = 0
        end = time.monotonic() + args.orders / args.rate + 60
        warmup = max(20, int(args.rate * 3))  # the first seconds settle the worker (assignment, tables): untimed
        while (i < args.orders or len(latencies) < len(sent)) and time.monotonic() < end:
            if i < args.orders and time.monotonic() >= next_send:
                intent = OrderIntent(
                    trace_id=uuid.uuid4().hex, account_id=account.account_id, owner=account.owner,
                    strategy_id="bench", idempotency_key=f"k{i}", instrument_id="equity:AAPL",
                    side=Side.BUY if i % 2 == 0 else Side.SELL, order_type=OrderType.MARKET, quantity=Decimal(1),
                    requested_mode=account.mode, source=IntentSource.API, created_at=datetime.now(UTC))
                sent[intent.order_id] = time.perf_counter()
                created[intent.order_id] = intent.created_at
                producer.produce(topic_name(ORDER_INTENTS, settings.topic_prefix), key=account.account_id.encode(),
                                 value=encode(intent), headers=headers(intent.trace_id, "OrderIntent"))
                producer.poll(0)
                i += 1
                next_send += interval
            message = consumer.poll(0.001)
            value = message.value() if message is not None and not message.error() else None
            if value is None:
                continue
            event = json.loads(value)
            if event["kind"] == "fill" and event["fill"]["order_id"] in sent:
                latencies.append((time.perf_counter() - sent[event["fill"]["order_id"]]) * 1000)
                routed.append((datetime.fromisoformat(event["fill"]["ts"]) - created[event["fill"]["order_id"]])
                              .total_seconds() * 1000)
                if len(latencies) == warmup:
                    start_timed = len(latencies)
            if i == warmup and len(latencies) < warmup:
                next_send = time.monotonic() + interval  # hold until the warm-up intents came back
        consumer.close()
    finally:
        worker.terminate()
        worker.wait(30)
    latencies = latencies[start_timed:]
    if not latencies:
        raise SystemExit(f"no fill came back; see the worker's log {log_path}")
    print(f"intents sent: {len(sent)}  fills received: {len(latencies)}  rate: {args.rate:.0f}/s")
    routed = routed[start_timed:]
    print(f"intent-to-routing ms: p50={percentile(routed, 50):.2f} p99={percentile(routed, 99):.2f}")
    print(f"intent-to-fill latency ms: p50={percentile(latencies, 50):.2f} p99={percentile(latencies, 99):.2f} "
          f"max={max(latencies):.2f} mean={statistics.fmean(latencies):.2f}")


if __name__ == "__main__":
    main()
