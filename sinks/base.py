"""The batch consumer every sink runs: Kafka to Postgres exactly once, undecodable messages to the dead letters.

Why batches and not Faust agents: Faust's per-event stream machinery tops out around 11-14k events/s per
worker, while confluent-kafka `consume(1000)` with a bulk decode and one write per batch does 100k+/s.

Exactly once, by keeping the consumer's position in Postgres rather than in Kafka:
- each batch's rows and the partitions' next offsets (table sink_offsets) are written in ONE transaction;
- when partitions are assigned, the consumer seeks to the offsets stored there (to the beginning when there
  are none: the read model is rebuilt from the topics), so a crash between the database commit and the Kafka
  commit neither replays nor skips a batch. The Kafka commit that follows is only for lag tooling;
- the offset update is conditional on the stored offset still being the one this consumer last read or wrote.
  A consumer that lost its partitions without noticing (a zombie after a rebalance) finds the row moved on,
  rolls back and re-seeks, so two consumers can never both write one batch.
Dead letters are produced and flushed before the transaction commits: they are at least once on the topic,
and exactly once in the dead_letters table (unique by consumer, source topic, partition, offset).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import psycopg
import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage

from sinks.schema import Table, storable_problem
from streams.kafka import consumer_config, header_value, headers, producer_config
from streams.records import TRACE_HEADER, DeadLetter, RecordError, encode
from streams.shared_state import HEARTBEAT_TTL_S, heartbeat_key
from streams.topics import DEAD_LETTER, TopicSpec, topic_name
from tradestream.config import Settings
from tradestream.logging import get_logger, traced

log = get_logger(__name__)

Message = KafkaMessage
TP = tuple[str, int]
B = TypeVar("B")

DLQ_FLUSH_TIMEOUT_S = 30.0


class OffsetFencedError(Exception):
    """Another consumer moved a partition's stored offset: this batch must not be written."""


def build_dead_letter(*, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                      error: str, consumer: str, at: datetime) -> DeadLetter:
    """The dead-letter record for one message: where it came from, its bytes, why it was refused and by whom."""
    return DeadLetter(
        source_topic=topic, partition=partition, offset=offset,
        key=None if key is None else key.decode("utf-8", "backslashreplace"),  # keys are ids, yet bytes are bytes
        value_b64=base64.b64encode(value or b"").decode(), error=error, consumer=consumer, at=at,
    )


def trace_id_of(message: Message) -> str | None:
    found = message.headers() or ()
    items = found.items() if isinstance(found, dict) else found
    return header_value([(k, v.encode() if isinstance(v, str) else v) for k, v in items], TRACE_HEADER)


@dataclass
class SinkStats:
    messages: int = 0
    rows: int = 0
    dead_letters: int = 0
    batches: int = 0
    fenced: int = 0
    first_message_at: float | None = None
    """time.monotonic() when the first message arrived; with last_commit_at, the throughput window."""
    last_commit_at: float | None = None


class BatchSink(ABC, Generic[B]):
    """Consume `topics` in batches, `decode` them, `write` them, commit rows and offsets together."""

    name: ClassVar[str]
    topics: ClassVar[tuple[TopicSpec, ...]]

    def __init__(self, settings: Settings, *, batch_size: int = 1000, poll_timeout_s: float = 0.2,
                 heartbeat_interval_s: float = 5.0, **consumer_overrides: Any) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.poll_timeout_s = poll_timeout_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.consumer_overrides = consumer_overrides
        self.consumer_name = f"sink:{self.name}"
        self.group_id = f"{settings.topic_prefix}{settings.app_id}.sink.{self.name}"
        self.topic_names = tuple(topic_name(spec, settings.topic_prefix) for spec in self.topics)
        self.stats = SinkStats()
        self.cache = redis.Redis.from_url(settings.redis)  # connects on first use
        self._dead_letter_topic = topic_name(DEAD_LETTER, settings.topic_prefix)
        self._positions: dict[TP, int | None] = {}
        """Next offset stored in sink_offsets per assigned partition (None: no row yet)."""

    # -- what each sink supplies ------------------------------------------------------------------------

    @abstractmethod
    def decode(self, messages: list[Message]) -> tuple[B, list[DeadLetter]]:
        """Turn a batch into rows to write and dead letters for the messages that do not decode."""

    @abstractmethod
    def write(self, cur: psycopg.Cursor[Any], batch: B) -> int:
        """Write the batch inside the open transaction; return the number of rows sent."""

    def after_commit(self, batch: B) -> None:
        """Side effects that must only follow a committed batch (caches)."""

    def dead_letter(self, message: Message, error: str) -> DeadLetter:
        letter = build_dead_letter(topic=message.topic() or "", partition=message.partition() or 0,
                                   offset=message.offset() or 0, key=message.key(), value=message.value(),
                                   error=error, consumer=self.consumer_name, at=datetime.now(UTC))
        with traced(trace_id_of(message)):
            log.warning("dead_letter", consumer=self.consumer_name, topic=letter.source_topic,
                        partition=letter.partition, offset=letter.offset, error=error)
        return letter

    def storable_row(self, message: Message, table: Table, make_row: Callable[[Message], tuple[Any, ...]],
                     dead: list[DeadLetter]) -> tuple[Any, ...] | None:
        """The row `make_row` builds from `message` for `table`; or None, with the message dead-lettered into
        `dead`, when its record does not decode (RecordError) or Postgres would refuse the row."""
        try:
            row = make_row(message)
        except RecordError as exc:
            dead.append(self.dead_letter(message, str(exc)))
            return None
        problem = storable_problem(table, row)
        if problem is not None:
            dead.append(self.dead_letter(message, problem))
            return None
        return row

    # -- the loop -----------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, then commit and close. Errors propagate: the runner reports them."""
        consumer = Consumer(consumer_config(self.settings, self.group_id, **self.consumer_overrides))
        producer = Producer(producer_config(self.settings))
        try:
            with psycopg.connect(self.settings.dsn, autocommit=True) as conn:
                consumer.subscribe(list(self.topic_names),
                                   on_assign=lambda c, parts: self._on_assign(conn, c, parts),
                                   on_revoke=lambda c, parts: self._on_revoke(parts))
                log.info("sink_started", consumer=self.consumer_name, group=self.group_id, topics=self.topic_names)
                next_heartbeat = 0.0
                while not stop.is_set():
                    messages = consumer.consume(num_messages=self.batch_size, timeout=self.poll_timeout_s)
                    if messages:
                        self._process(conn, consumer, producer, messages)
                    if time.monotonic() >= next_heartbeat:
                        self._heartbeat(consumer)
                        next_heartbeat = time.monotonic() + self.heartbeat_interval_s
                self._commit_kafka(consumer, asynchronous=False)
        finally:
            consumer.close()
            producer.flush(DLQ_FLUSH_TIMEOUT_S)
            self.cache.close()
            log.info("sink_stopped", consumer=self.consumer_name, **asdict(self.stats))

    def _process(self, conn: psycopg.Connection[Any], consumer: Consumer, producer: Producer,
                 messages: list[Message]) -> None:
        if self.stats.first_message_at is None:
            self.stats.first_message_at = time.monotonic()
        good: list[Message] = []
        last: dict[tuple[str | None, int | None], int | None] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("kafka_consume_error", consumer=self.consumer_name, error=str(error))
                continue
            good.append(message)
            last[(message.topic(), message.partition())] = message.offset()
        next_offsets = {(t, p): o + 1 for (t, p), o in last.items()
                        if t is not None and p is not None and o is not None}
        if not good:
            return
        if not next_offsets.keys() <= self._positions.keys():
            # Only after a revocation: drop what belongs to partitions this consumer no longer owns.
            good = [m for m in good if (m.topic(), m.partition()) in self._positions]
            next_offsets = {tp: o for tp, o in next_offsets.items() if tp in self._positions}
        batch, dead = self.decode(good)
        try:
            with conn.transaction(), conn.cursor() as cur:
                rows = self.write(cur, batch)
                self._save_offsets(cur, next_offsets)
                if dead:
                    self._send_dead_letters(producer, dead)
        except OffsetFencedError as exc:
            self.stats.fenced += 1
            log.warning("sink_offsets_fenced", consumer=self.consumer_name, detail=str(exc))
            self._reseek(conn, consumer)
            return
        self._positions.update(next_offsets)
        self._commit_kafka(consumer, asynchronous=True)
        self.after_commit(batch)
        self.stats.messages += len(good)
        self.stats.rows += rows
        self.stats.dead_letters += len(dead)
        self.stats.batches += 1
        self.stats.last_commit_at = time.monotonic()

    # -- offsets --------------------------------------------------------------------------------------------

    def _save_offsets(self, cur: psycopg.Cursor[Any], next_offsets: dict[TP, int]) -> None:
        moved = [(t, p, self._positions[(t, p)], o) for (t, p), o in next_offsets.items()
                 if self._positions[(t, p)] is not None]
        fresh = [(t, p, o) for (t, p), o in next_offsets.items() if self._positions[(t, p)] is None]
        if moved:
            topics, partitions, expected, offsets = (list(column) for column in zip(*moved, strict=True))
            cur.execute(
                "UPDATE sink_offsets AS s SET next_offset = v.next_offset"
                " FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::bigint[])"
                "   AS v(topic, partition, expected, next_offset)"
                " WHERE s.consumer = %s AND s.topic = v.topic AND s.partition = v.partition"
                "   AND s.next_offset = v.expected",
                (topics, partitions, expected, offsets, self.group_id))
            if cur.rowcount != len(moved):
                raise OffsetFencedError(f"{len(moved) - cur.rowcount} partition(s) moved on by another consumer")
        if fresh:
            try:
                cur.executemany("INSERT INTO sink_offsets (consumer, topic, partition, next_offset)"
                                " VALUES (%s, %s, %s, %s)", [(self.group_id, *row) for row in fresh])
            except psycopg.errors.UniqueViolation:
                raise OffsetFencedError("another consumer started the same partition first") from None

    def _stored_offsets(self, conn: psycopg.Connection[Any]) -> dict[TP, int]:
        rows = conn.execute("SELECT topic, partition, next_offset FROM sink_offsets"
                            " WHERE consumer = %s AND topic = ANY(%s)",
                            (self.group_id, list(self.topic_names))).fetchall()
        return {(topic, partition): offset for topic, partition, offset in rows}

    def _on_assign(self, conn: psycopg.Connection[Any], consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self._stored_offsets(conn)
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            tp.offset = OFFSET_BEGINNING if offset is None else offset
            self._positions[(tp.topic, tp.partition)] = offset
        consumer.assign(partitions)
        log.info("sink_assigned", consumer=self.consumer_name,
                 partitions={f"{tp.topic}[{tp.partition}]": stored.get((tp.topic, tp.partition))
                             for tp in partitions})

    def _on_revoke(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            self._positions.pop((tp.topic, tp.partition), None)

    def _reseek(self, conn: psycopg.Connection[Any], consumer: Consumer) -> None:
        stored = self._stored_offsets(conn)
        for tp in list(self._positions):
            offset = stored.get(tp)
            self._positions[tp] = offset
            consumer.seek(TopicPartition(tp[0], tp[1], OFFSET_BEGINNING if offset is None else offset))

    def _commit_kafka(self, consumer: Consumer, *, asynchronous: bool) -> None:
        offsets = [TopicPartition(t, p, o) for (t, p), o in self._positions.items() if o is not None]
        if not offsets:
            return
        try:
            if asynchronous:
                consumer.commit(offsets=offsets, asynchronous=True)
            else:
                consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:  # informational only: positions live in sink_offsets
            log.warning("kafka_commit_failed", consumer=self.consumer_name, error=str(exc))

    # -- dead letters and heartbeat ---------------------------------------------------------------------

    def _send_dead_letters(self, producer: Producer, letters: list[DeadLetter]) -> None:
        for letter in letters:
            producer.produce(self._dead_letter_topic, key=letter.source_topic.encode(), value=encode(letter),
                             headers=headers(None, type(letter).__name__))
        remaining = producer.flush(DLQ_FLUSH_TIMEOUT_S)
        if remaining:
            raise RuntimeError(f"{remaining} dead letter(s) not acknowledged within {DLQ_FLUSH_TIMEOUT_S}s")

    def _lag(self, consumer: Consumer) -> int:
        lag = 0
        for (topic, partition), position in self._positions.items():
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True) or (-1, -1)
            if high >= 0:
                lag += high - (position if position is not None else max(low, 0))
        return lag

    def _heartbeat(self, consumer: Consumer) -> None:
        beat = {"component": self.consumer_name, "pid": os.getpid(), "at": datetime.now(UTC).isoformat(),
                "lag": self._lag(consumer), "partitions": len(self._positions), "messages": self.stats.messages,
                "rows": self.stats.rows, "dead_letters": self.stats.dead_letters, "batches": self.stats.batches}
        try:
            self.cache.set(heartbeat_key(self.settings, self.consumer_name), json.dumps(beat), ex=HEARTBEAT_TTL_S)
        except redis.RedisError as exc:  # a missed heartbeat is visible by itself; the data path goes on
            log.warning("heartbeat_failed", consumer=self.consumer_name, error=str(exc))
