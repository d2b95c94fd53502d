"""Builds the Faust app. Values and keys are raw bytes: agents decode records themselves so that a message
that does not validate is dead-lettered with its reason instead of being dropped by the serializer."""

from __future__ import annotations

from typing import Any

import faust
from confluent_kafka.admin import AdminClient

from streams.topics import TopicSpec, topic_name
from tradestream.config import Settings


def faust_app_id(settings: Settings) -> str:
    """Faust names its consumer group and internal topics (changelogs) after this."""
    return f"{settings.topic_prefix}{settings.app_id}".replace(".", "-")


def create_app(settings: Settings) -> faust.App:
    faust_dirs = settings.state_dir / "faust"  # Faust makes its data directory, but not the parents
    faust_dirs.mkdir(parents=True, exist_ok=True)
    return faust.App(
        faust_app_id(settings),
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",  # tables are rebuilt from their changelog topics on start
        datadir=str(faust_dirs / faust_app_id(settings)),  # not the working directory
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.topic_partitions,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_linger_ms=0,
        producer_partitioner=None,
        stream_wait_empty=False,
        web_enabled=False,
        web_host="127.0.0.1",
        table_cleanup_interval=30.0,
    )


def faust_topic(app: faust.App, spec: TopicSpec, settings: Settings) -> Any:
    return app.topic(topic_name(spec, settings.topic_prefix), key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw",
                     partitions=spec.partitions(settings.topic_partitions))


def drop_topics(settings: Settings) -> None:
    """Delete the topics of an isolated run (a test module, a bench): its prefixed topics and Faust's internal
    ones, named after the app id. Never for the default prefix, whose topics are the platform's data."""
    if not settings.topic_prefix:
        raise ValueError("drop_topics is for prefixed, throwaway runs only")
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    names = [t for t in admin.list_topics(timeout=10).topics
             if t.startswith(settings.topic_prefix) or t.startswith(faust_app_id(settings))]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=30)
