"""Kafka client settings and topic creation, shared by every producer and consumer of the platform."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.records import RECORD_HEADER, TRACE_HEADER
from streams.topics import ALL_TOPICS, TopicSpec, topic_name
from tradestream.config import ConfigError, Settings


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "partitioner": "murmur2_random",  # same partition for a key as aiokafka/Faust and the Java client
        "enable.idempotence": True,
        "linger.ms": 2,
        **extra,
    }


def consumer_config(settings: Settings, group_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.queue.backoff.ms": 100,  # the default stalls once ~100k messages are queued (see kafka.md)
        "session.timeout.ms": 10_000,
        **extra,
    }


def headers(trace_id: str | None, record: str) -> list[tuple[str, str | bytes | None]]:
    out: list[tuple[str, str | bytes | None]] = [(RECORD_HEADER, record.encode())]
    if trace_id:
        out.append((TRACE_HEADER, trace_id.encode()))
    return out


def header_value(raw_headers: Iterable[tuple[str, bytes | None]] | dict[str, bytes] | None, name: str) -> str | None:
    if not raw_headers:
        return None
    items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    for key, value in items:
        if key == name and value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def ensure_topics(settings: Settings, specs: Iterable[TopicSpec] = ALL_TOPICS, timeout: float = 30.0) -> list[str]:
    """Create the platform's topics that do not exist yet; return the names created. A topic that exists with
    another partition count than configured stops start-up (ConfigError): its keys would be routed to the wrong
    partitions, and Faust's tables would not line up with their source topics."""
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    existing = {name: len(metadata.partitions) for name, metadata in admin.list_topics(timeout=timeout).topics.items()}
    mismatched = [f"{name} has {existing[name]}, configured {spec.partitions(settings.topic_partitions)}"
                  for spec in specs if (name := topic_name(spec, settings.topic_prefix)) in existing
                  and existing[name] != spec.partitions(settings.topic_partitions)]
    if mismatched:
        raise ConfigError(f"topic_partitions: existing topics have other partition counts ({'; '.join(mismatched)}):"
                          " set TRADESTREAM_TOPIC_PARTITIONS to theirs, or use another topic_prefix")
    wanted = [
        NewTopic(topic_name(spec, settings.topic_prefix), num_partitions=spec.partitions(settings.topic_partitions),
                 replication_factor=1, config=spec.config())
        for spec in specs if topic_name(spec, settings.topic_prefix) not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


def read_to_end(settings: Settings, topic: str,
                timeout_s: float = 30.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) on `topic`, from its beginning to where it ended when called, partition by partition
    (of a compacted topic: the latest value of each key, and possibly older ones). Outside any consumer group:
    nothing is committed. Raises TimeoutError when the end is not reached within `timeout_s`."""
    consumer = Consumer(consumer_config(settings, f"reader-{uuid.uuid4().hex[:8]}"))
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in metadata.partitions}
        ends = {p: high for p, (_, high) in marks.items()}
        pending = {p for p, (low, high) in marks.items() if high > low}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        messages: list[tuple[bytes | None, bytes | None]] = []
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{topic}: not read to its end within {timeout_s}s")
            for message in consumer.consume(1000, 0.5):
                if message.error() is None:
                    messages.append((message.key(), message.value()))
            # The position, not the last offset read: compaction leaves gaps in the offsets.
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            pending -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
    finally:
        consumer.close()
    return messages
