"""Connector health for operators: each connector's state (ok / degraded / down), the fallback in use, its
latency and its last error, checked by the leader every `connectors.health_interval_s` and kept in Redis, where
`/health` reads it.

`ConnectorIssues` collects what goes wrong with a connector elsewhere in the worker (its instruments read, its
quote stream, the health check itself), free of secrets, so a report says why a connector is degraded.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from redis.typing import EncodableT, FieldT

from agents.kit import AgentKit
from connectors.http import redact
from connectors.registry import ConnectorRegistry
from core.venue import ConnectorState, connector_status
from streams.shared_state import HEARTBEAT_TTL_S, connector_health_key
from tradestream.logging import get_logger

log = get_logger(__name__)

HEALTH_CHECK_TIMEOUT_S = 10.0
MAX_ERROR_CHARS = 500


class ConnectorIssues:
    """Per connector: the problems going on now (by what failed) and the last error seen, with its time."""

    def __init__(self) -> None:
        self._current: dict[str, dict[str, str]] = {}
        self._last: dict[str, tuple[str, datetime]] = {}

    def record(self, connector: str, what: str, error: BaseException | str) -> str:
        """A one-off failure (e.g. a quote stream that ended and is restarted): kept as the last error."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        message = f"{what}: {redact(text)[:MAX_ERROR_CHARS]}"
        self._last[connector] = (message, datetime.now(UTC))
        return message

    def failed(self, connector: str, what: str, error: BaseException | str) -> None:
        """A failure that lasts until `recovered(connector, what)`; the connector is degraded meanwhile."""
        self._current.setdefault(connector, {})[what] = self.record(connector, what, error)

    def recovered(self, connector: str, what: str) -> None:
        self._current.get(connector, {}).pop(what, None)

    def current(self, connector: str) -> list[str]:
        return sorted(self._current.get(connector, {}).values())

    def last(self, connector: str) -> tuple[str, datetime] | None:
        return self._last.get(connector)


def register(kit: AgentKit, registry: ConnectorRegistry, issues: ConnectorIssues) -> None:
    if not registry.bindings:
        return
    key = connector_health_key(kit.settings)
    interval = kit.settings.connectors.health_interval_s
    ttl_s = max(HEARTBEAT_TTL_S, math.ceil(3 * interval))
    """Reports outlive a missed check or two; a worker gone for longer leaves none (/health: missing)."""
    states: dict[str, ConnectorState] = {}

    @kit.timer(interval, "connector_health", on_leader=True)
    async def publish_health() -> None:
        reports: dict[FieldT, EncodableT] = {}
        for check in await registry.check(timeout_s=min(HEALTH_CHECK_TIMEOUT_S, ttl_s)):
            name = check.binding.name
            health = check.health
            if health is None:
                issues.failed(name, "health", check.error)
            else:
                issues.recovered(name, "health")
                health = health.model_copy(update={"detail": redact(health.detail)})
            status = connector_status(name, check.binding.venue, health, issues.current(name), issues.last(name),
                                      datetime.now(UTC))
            if states.get(name) is not status.state:
                (log.info if status.state is ConnectorState.OK else log.warning)(
                    "connector.state", connector=name, state=status.state.value, fallback=status.fallback,
                    problems=list(status.problems), detail=status.detail)
                states[name] = status.state
            reports[name] = status.model_dump_json()
        pipe = kit.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=reports)
        pipe.expire(key, ttl_s)
        await pipe.execute()
