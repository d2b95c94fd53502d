"""The platform's topics in the real broker: created once, and a partition count that disagrees with the
configuration stops start-up instead of routing keys to the wrong partitions."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from streams.kafka import ensure_topics
from streams.topics import ALL_TOPICS, ORDER_INTENTS, topic_name
from tradestream.config import ConfigError, Settings

pytestmark = pytest.mark.integration


def partition_counts(settings: Settings) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": settings.bootstrap_servers}).list_topics(timeout=10).topics
    return {name: len(metadata.partitions) for name, metadata in topics.items()
            if name.startswith(settings.topic_prefix)}


def test_topics_are_created_once_with_the_configured_partitions(settings: Settings) -> None:
    ensure_topics(settings)
    assert ensure_topics(settings) == []  # idempotent
    counts = partition_counts(settings)
    assert {topic_name(spec, settings.topic_prefix) for spec in ALL_TOPICS} <= counts.keys()
    for spec in ALL_TOPICS:
        assert counts[topic_name(spec, settings.topic_prefix)] == spec.partitions(settings.topic_partitions)


def test_existing_topics_with_another_partition_count_stop_start_up_naming_the_setting(settings: Settings) -> None:
    ensure_topics(settings)
    other = settings.model_copy(update={"topic_partitions": settings.topic_partitions + 1})
    with pytest.raises(ConfigError) as raised:
        ensure_topics(other)
    message = str(raised.value)
    assert message.startswith("topic_partitions:")
    intents = topic_name(ORDER_INTENTS, settings.topic_prefix)
    assert f"{intents} has {settings.topic_partitions}, configured {settings.topic_partitions + 1}" in message
