"""Fixtures for tests against the real services.

`services` starts Kafka, Postgres and Redis through infra/ (or finds them running) and fails loudly when it
cannot: no test that needs a service is ever skipped. `settings` isolates a test module: its own topic
prefix, Faust app id, Redis namespace and Postgres database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis

from infra.services import Endpoints, ServiceError, ensure_up
from streams.app import drop_topics
from tradestream.config import Settings, load_settings


@pytest.fixture(scope="session")
def services() -> Endpoints:
    try:
        return ensure_up()
    except ServiceError as exc:
        pytest.fail(f"the real services could not be started: {exc}", pytrace=False)


def _admin_dsn(endpoints: Endpoints) -> str:
    return endpoints.postgres_dsn


@pytest.fixture(scope="module")
def settings(services: Endpoints) -> Iterator[Settings]:
    """Settings for one isolated test module: fresh topics, Faust app id, Redis keys and database."""
    from sinks.schema import apply_schema

    tag = uuid.uuid4().hex[:8]
    database = f"ts_test_{tag}"
    with psycopg.connect(_admin_dsn(services), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    base = services.postgres_dsn.rsplit("/", 1)[0]
    # Two partitions per topic, where a deployment with one worker has one: keyed routing is exercised.
    isolated = load_settings(topic_prefix=f"t{tag}.", app_id=f"ts-{tag}", postgres_dsn=f"{base}/{database}",
                             kafka_bootstrap=services.kafka_bootstrap, redis_url=services.redis_url,
                             topic_partitions=2)
    apply_schema(isolated.dsn)
    yield isolated
    with psycopg.connect(_admin_dsn(services), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    drop_topics(isolated)
    store = redis.Redis.from_url(isolated.redis)
    for key in store.scan_iter(match=f"{isolated.topic_prefix}*", count=1000):
        store.delete(key)


