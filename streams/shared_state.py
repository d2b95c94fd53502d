"""Names of the fast shared state kept in Redis: latest quotes, worker heartbeats, connector health, idempotency
claims.

Every key is namespaced by the topic prefix so test runs and deployments sharing a Redis never collide.
"""

from __future__ import annotations

from tradestream.config import Settings

HEARTBEAT_TTL_S = 15


def latest_quotes_key(settings: Settings) -> str:
    return f"{settings.topic_prefix}md:latest"


def heartbeat_key(settings: Settings, component: str) -> str:
    return f"{settings.topic_prefix}health:{component}"


def heartbeat_pattern(settings: Settings) -> str:
    return f"{settings.topic_prefix}health:*"


def connector_health_key(settings: Settings) -> str:
    """A hash: connector name -> its latest `core.venue.ConnectorStatus` (JSON), written by the worker's leader."""
    return f"{settings.topic_prefix}connectors:health"


def idempotency_key(settings: Settings, order_id: str) -> str:
    return f"{settings.topic_prefix}idem:{order_id}"
