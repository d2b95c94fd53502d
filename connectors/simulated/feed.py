"""The simulated market-data connector: publishes the simulated market's quotes to md.quotes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from confluent_kafka import Producer

from connectors.simulated.market import SimulatedMarket
from streams.kafka import headers, producer_config
from streams.records import encode
from streams.topics import MD_QUOTES, topic_name
from tradestream.config import Settings
from tradestream.heartbeat import Heartbeat
from tradestream.logging import get_logger

log = get_logger(__name__)


def run_feed(settings: Settings, stop: threading.Event) -> int:
    """Publish one round of quotes every `feed.interval_ms` until `stop` is set; return quotes published."""
    market = SimulatedMarket(settings.feed.seed)
    producer = Producer(producer_config(settings))
    topic = topic_name(MD_QUOTES, settings.topic_prefix)
    interval = settings.feed.interval_ms / 1000
    published = 0
    heartbeat = Heartbeat(settings, "feed:simulated")
    log.info("feed.started", topic=topic, instruments=len(market.instruments), interval_s=interval)
    next_round = time.monotonic()
    while not stop.is_set():
        for quote in market.next_round(datetime.now(UTC)):
            producer.produce(topic, key=quote.instrument_id.encode(), value=encode(quote),
                             headers=headers(None, "Quote"))
            published += 1
        producer.poll(0)
        heartbeat.beat({"published": published})
        next_round += interval
        stop.wait(max(0.0, next_round - time.monotonic()))
    remaining = producer.flush(10)
    log.info("feed.stopped", published=published, undelivered=remaining)
    return published
