"""Topic replay: recorded quotes published again through the running pipeline, in their recorded rhythm.

Replayed quotes are re-stamped by one constant shift, so their spacing is kept and they are fresh for the risk
gate's stale-quote guard; the idempotency keys strategies derive from quote times are new, so a replay never
collides with the orders of the original run. The same re-stamped quotes drive the in-process backtest
engine, which must agree trade for trade.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from confluent_kafka import Producer

from core.market import Quote
from streams.kafka import headers, producer_config, read_to_end
from streams.records import decode
from streams.topics import MD_QUOTES, topic_name
from tradestream.config import Settings


def read_recorded_quotes(settings: Settings, topic: str, timeout_s: float = 30.0) -> list[Quote]:
    """Every quote on `topic`, from the beginning, in (ts, seq) order."""
    quotes = [decode(Quote, value) for _, value in read_to_end(settings, topic, timeout_s)]
    return sorted(quotes, key=lambda q: (q.ts, q.seq))


def restamped(quotes: Sequence[Quote], start: datetime) -> list[Quote]:
    """The quotes shifted so the first is at `start`; spacing and order are kept."""
    if not quotes:
        return []
    shift = start - quotes[0].ts
    return [q.model_copy(update={"ts": q.ts + shift}) for q in quotes]


def rounds(quotes: Iterable[Quote]) -> list[list[Quote]]:
    """Quotes grouped by timestamp: everything that happened at one instant is published together."""
    grouped: dict[datetime, list[Quote]] = {}
    for quote in quotes:
        grouped.setdefault(quote.ts, []).append(quote)
    return [grouped[ts] for ts in sorted(grouped)]


def replay(settings: Settings, quotes: Sequence[Quote]) -> int:
    """Publish the (re-stamped) quotes to md.quotes at their recorded pace; return how many were published."""
    producer = Producer(producer_config(settings))
    topic = topic_name(MD_QUOTES, settings.topic_prefix)
    published = 0
    origin = quotes[0].ts if quotes else datetime.now(UTC)
    began = time.monotonic()
    for batch in rounds(quotes):
        wait = (batch[0].ts - origin).total_seconds() - (time.monotonic() - began)
        if wait > 0:
            time.sleep(wait)
        for quote in batch:
            producer.produce(topic, key=quote.instrument_id.encode(), value=quote.model_dump_json().encode(),
                             headers=headers(None, "Quote"))
            published += 1
        producer.flush(10)
    return published
