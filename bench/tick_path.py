"""Tick path throughput: the TickSink end to end against the raw ceiling, on the same data in the same run.

    .venv/bin/python -m bench.tick_path [--count 1000000] [--instruments 20]

Produces `count` quotes (as the feed does: `encode(Quote)`, keyed by instrument) to a fresh prefixed md.quotes
topic, then measures
  (a) the TickSink, one worker: validation of every quote, COPY into ticks, sink_offsets in the same
      transaction, the latest-quote hash in Redis;
  (b) the raw ceiling: confluent-kafka consume(1000) + json.loads + COPY in batches of 1000, no validation,
      no offsets, into the same (emptied) ticks table;
and prints both rates and their ratio. Both rates run from the first message received to the last batch
committed, so group join and topic metadata are not counted. A scratch database, topic and Redis keys are
made for the run and removed after it.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from core.market import Quote
from infra.services import ensure_up
from sinks.quotes import quote_row
from sinks.schema import TICKS, apply_schema, copy_statement
from sinks.ticks import TickSink
from streams.kafka import consumer_config, ensure_topics, producer_config
from streams.records import encode
from streams.shared_state import heartbeat_key, latest_quotes_key
from streams.topics import MD_QUOTES, topic_name
from tradestream.config import Settings, load_settings

BATCH = 1000
TIMEOUT_S = 600.0


def make_quotes(count: int, instruments: int, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs: a random walk per instrument, one quote per microsecond."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0)
    names = [f"crypto_spot:B{i:03d}-USD" for i in range(instruments)]
    mids = [Decimal(rng.randint(10_000, 100_000)) for _ in names]
    out = []
    for n in range(count):
        i = n % instruments
        mids[i] += Decimal(rng.randint(-50, 50)) / 100
        half = Decimal(rng.randint(1, 20)) / 100
        quote = Quote(instrument_id=names[i], bid=mids[i] - half, ask=mids[i] + half,
                      bid_size=Decimal(rng.randint(1, 5000)) / 1000, ask_size=Decimal(rng.randint(1, 5000)) / 1000,
                      ts=start + timedelta(microseconds=n), seq=n // instruments)
        out.append((names[i].encode(), encode(quote)))
    return out


def produce(settings: Settings, quotes: list[tuple[bytes, bytes]]) -> float:
    producer = Producer(producer_config(settings, **{"queue.buffering.max.messages": 2_000_000}))
    topic = topic_name(MD_QUOTES, settings.topic_prefix)
    started = time.perf_counter()
    for key, value in quotes:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("quotes not acknowledged")
    return len(quotes) / (time.perf_counter() - started)


def _wait(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def measure_sink(settings: Settings, count: int, batch_size: int | None) -> tuple[float, int]:
    sink = TickSink(settings) if batch_size is None else TickSink(settings, batch_size=batch_size)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            sink.run(stop)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="bench-tick-sink")
    thread.start()
    try:
        _wait(lambda: bool(failure) or sink.stats.messages >= count, "the TickSink to write every quote")
    finally:
        stop.set()
        thread.join()
    if failure:
        raise failure[0]
    assert sink.stats.first_message_at is not None and sink.stats.last_commit_at is not None
    if sink.stats.rows != count:
        raise RuntimeError(f"the sink wrote {sink.stats.rows} rows for {count} quotes")
    return count / (sink.stats.last_commit_at - sink.stats.first_message_at), sink.batch_size


def measure_raw(settings: Settings, count: int) -> float:
    topic = topic_name(MD_QUOTES, settings.topic_prefix)
    consumer = Consumer(consumer_config(settings, f"bench-raw-{uuid.uuid4().hex[:8]}"))
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    copy_sql = copy_statement(TICKS)
    seen = 0
    first: float | None = None
    try:
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            deadline = time.monotonic() + TIMEOUT_S
            while seen < count and time.monotonic() < deadline:
                messages = consumer.consume(num_messages=BATCH, timeout=0.5)
                if not messages:
                    continue
                first = first or time.monotonic()
                with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                    for message in messages:
                        q = json.loads(message.value())  # type: ignore[arg-type]
                        copy.write_row((q["ts"], q["instrument_id"], q["bid"], q["ask"], q["bid_size"],
                                        q["ask_size"], q["seq"]))
                seen += len(messages)
    finally:
        consumer.close()
    if seen < count or first is None:
        raise TimeoutError(f"raw consumer read {seen} of {count}")
    return count / (time.monotonic() - first)


def measure_validation(quotes: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """CPU only, no I/O: quote_row (the sink's validation) and Quote.model_validate_json per message."""
    values = [value for _, value in quotes[:200_000]]
    started = time.perf_counter()
    for value in values:
        quote_row(value)
    fast = len(values) / (time.perf_counter() - started)
    started = time.perf_counter()
    for value in values:
        Quote.model_validate_json(value)
    return fast, len(values) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--instruments", type=int, default=20)
    parser.add_argument("--sink-batch", type=int, help="override the TickSink's batch size")
    args = parser.parse_args()

    endpoints = ensure_up()
    tag = uuid.uuid4().hex[:8]
    database = f"ts_bench_{tag}"
    settings = load_settings(topic_prefix=f"bench{tag}.", app_id=f"bench-{tag}",
                             postgres_dsn=f"{endpoints.postgres_dsn.rsplit('/', 1)[0]}/{database}",
                             kafka_bootstrap=endpoints.kafka_bootstrap, redis_url=endpoints.redis_url)
    with psycopg.connect(endpoints.postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        apply_schema(settings.dsn)
        ensure_topics(settings, [MD_QUOTES])
        print(f"generating {args.count:,} quotes over {args.instruments} instruments ...", flush=True)
        quotes = make_quotes(args.count, args.instruments)
        fast, model = measure_validation(quotes)
        print(f"validation alone (CPU): quote_row {fast:,.0f}/s, Quote.model_validate_json {model:,.0f}/s")
        print(f"produced at {produce(settings, quotes):,.0f}/s to {settings.topic_partitions} partitions")
        del quotes
        sink_rate, sink_batch = measure_sink(settings, args.count, args.sink_batch)
        print(f"(a) TickSink end to end:  {sink_rate:>10,.0f} ticks/s (batches of up to {sink_batch})", flush=True)
        with psycopg.connect(settings.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE ticks")
        raw_rate = measure_raw(settings, args.count)
        print(f"(b) raw ceiling:          {raw_rate:>10,.0f} ticks/s (batches of {BATCH})")
        print(f"ratio sink / raw:         {sink_rate / raw_rate:>10.2f}")
    finally:
        with psycopg.connect(endpoints.postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
        for future in admin.delete_topics([topic_name(MD_QUOTES, settings.topic_prefix)]).values():
            future.result(timeout=30)
        with redis.Redis.from_url(settings.redis) as cache:
            cache.delete(latest_quotes_key(settings), heartbeat_key(settings, "sink:ticks"))


if __name__ == "__main__":
    main()
