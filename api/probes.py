"""Health probes: each service is asked one cheap question with a short timeout, all at once, so /health
answers within about a second even when a service hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import cast

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from api.errors import DEPENDENCY_ERRORS
from api.producer import IntentProducer
from api.read_model import Pool
from api.schemas.health import (
    ConnectorReport,
    ConnectorReportState,
    ConnectorsHealth,
    HealthPublic,
    ServiceHealth,
    State,
    WorkerHealth,
    WorkersHealth,
    WorkerState,
)
from core.clock import Clock
from core.types import UtcDatetime
from core.venue import ConnectorStatus
from streams.shared_state import HEARTBEAT_TTL_S, connector_health_key, heartbeat_key, heartbeat_pattern
from tradestream.config import Settings

PROBE_TIMEOUT_S = 1.0
STALE_AFTER_S = HEARTBEAT_TTL_S / 2
"""A heartbeat older than this is stale: workers beat every few seconds and the key expires at the TTL."""
PROBE_FAILURES: tuple[type[Exception], ...] = (TimeoutError, *DEPENDENCY_ERRORS)


class Heartbeat(BaseModel):
    """What a worker writes (tradestream.heartbeat); only the time is read here."""

    model_config = ConfigDict(extra="allow")
    at: UtcDatetime


class HealthProbes:
    def __init__(self, settings: Settings, pool: Pool, redis: Redis, producer: IntentProducer,
                 clock: Clock) -> None:
        self._settings = settings
        self._pool = pool
        self._redis = redis
        self._producer = producer
        self._clock = clock
        self._seen_workers: set[str] = set()
        """Components this process has seen a heartbeat from: one that disappears is reported missing."""

    async def check(self) -> HealthPublic:
        kafka, postgres, redis, workers, connectors = await asyncio.gather(
            _probe(self._kafka), _probe(self._postgres), _probe(self._redis_ping), self._workers_probe(),
            self._connectors_probe())
        checks: dict[str, ServiceHealth | WorkersHealth] = {"kafka": kafka, "postgres": postgres, "redis": redis,
                                                            "workers": workers}
        down = [f"{name}: {check.detail}" for name, check in checks.items() if check.state is not State.UP]
        return HealthPublic(state=State.DOWN if down else State.UP, detail="; ".join(down) or "all up",
                            kafka=kafka, postgres=postgres, redis=redis, workers=workers, connectors=connectors)

    async def _kafka(self) -> str:
        return f"metadata from {await self._producer.broker_count()} broker(s)"

    async def _postgres(self) -> str:
        async with self._pool.connection(timeout=PROBE_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
        return "select 1 answered"

    async def _redis_ping(self) -> str:
        await self._redis.ping()
        return "ping answered"

    async def _workers_probe(self) -> WorkersHealth:
        try:
            components = await asyncio.wait_for(self._heartbeats(), PROBE_TIMEOUT_S)
        except PROBE_FAILURES as exc:
            return WorkersHealth(state=State.DOWN, detail=f"heartbeats unreadable: {_describe(exc)}", components=[])
        if not components:
            return WorkersHealth(state=State.DOWN, detail="no worker heartbeat found", components=[])
        unwell = [c.component for c in components if c.state is not WorkerState.UP]
        if unwell:
            return WorkersHealth(state=State.DOWN, detail=f"not up: {', '.join(unwell)}", components=components)
        return WorkersHealth(state=State.UP, detail=f"{len(components)} worker(s) up", components=components)

    async def _heartbeats(self) -> list[WorkerHealth]:
        keys = sorted([key async for key in self._redis.scan_iter(match=heartbeat_pattern(self._settings))])
        values = await self._redis.mget(keys) if keys else []
        prefix = heartbeat_key(self._settings, "")
        now = self._clock.now()
        found: dict[str, WorkerHealth] = {}
        for key, raw in zip(keys, values, strict=True):
            if raw is None:  # expired between SCAN and MGET
                continue
            component = key.removeprefix(prefix)
            try:
                beat = Heartbeat.model_validate_json(raw)
            except ValidationError as exc:
                found[component] = WorkerHealth(component=component, state=WorkerState.INVALID, age_s=None,
                                                detail=str(exc.errors()[0]["msg"]))
                continue
            age = round((now - beat.at).total_seconds(), 3)
            state = WorkerState.STALE if age > STALE_AFTER_S else WorkerState.UP
            found[component] = WorkerHealth(component=component, state=state, age_s=age)
        missing = [WorkerHealth(component=c, state=WorkerState.MISSING, age_s=None, detail="heartbeat expired")
                   for c in sorted(self._seen_workers - found.keys())]
        self._seen_workers |= found.keys()
        return [*found.values(), *missing]

    async def _connectors_probe(self) -> ConnectorsHealth:
        try:
            reports = await asyncio.wait_for(self._connector_reports(), PROBE_TIMEOUT_S)
        except PROBE_FAILURES as exc:
            return ConnectorsHealth(state=ConnectorReportState.STALE,
                                    detail=f"connector reports unreadable: {_describe(exc)}", connectors=[])
        if not reports:
            return ConnectorsHealth(state=ConnectorReportState.OK, detail="no connector enabled", connectors=[])
        unwell = [f"{r.connector} {r.state.value}" + (f" ({r.fallback})" if r.fallback else "")
                  for r in reports if r.state is not ConnectorReportState.OK]
        if any(r.state is ConnectorReportState.DOWN for r in reports):
            state = ConnectorReportState.DOWN
        else:
            state = ConnectorReportState.DEGRADED if unwell else ConnectorReportState.OK
        return ConnectorsHealth(state=state, detail=", ".join(unwell) or f"{len(reports)} connector(s) ok",
                                connectors=reports)

    async def _connector_reports(self) -> list[ConnectorReport]:
        """What the worker reported on each connector; an enabled venue without a report is missing."""
        raw = cast(dict[str, str], await self._redis.hgetall(connector_health_key(self._settings)))
        now = self._clock.now()
        stale_after_s = max(HEARTBEAT_TTL_S, 3 * self._settings.connectors.health_interval_s)
        reports = []
        for name, value in sorted(raw.items()):
            try:
                status = ConnectorStatus.model_validate_json(value)
            except ValidationError as exc:
                reports.append(ConnectorReport(connector=name, venue=name.split(":", 1)[0],
                                               state=ConnectorReportState.INVALID,
                                               detail=str(exc.errors()[0]["msg"])))
                continue
            age = round((now - status.checked_at).total_seconds(), 3)
            state = ConnectorReportState.STALE if age > stale_after_s else ConnectorReportState(status.state.value)
            reports.append(ConnectorReport.model_validate({**status.model_dump(), "state": state, "age_s": age}))
        reported = {r.venue for r in reports}
        enabled = self._settings.connectors.venue_accounts()  # a venue is enabled by having a section
        reports += [ConnectorReport(connector=venue, venue=venue, state=ConnectorReportState.MISSING,
                                    detail="no health report from a worker")
                    for venue in enabled if venue not in reported]
        return reports


async def _probe(question: Callable[[], Awaitable[str]]) -> ServiceHealth:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(question(), PROBE_TIMEOUT_S)
        state = State.UP
    except PROBE_FAILURES as exc:
        detail = _describe(exc)
        state = State.DOWN
    return ServiceHealth(state=state, latency_ms=round((time.perf_counter() - started) * 1000, 1), detail=detail)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {PROBE_TIMEOUT_S}s"
    return f"{type(exc).__name__}: {exc}"
