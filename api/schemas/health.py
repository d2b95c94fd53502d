"""The state of each service and worker the platform needs."""

from __future__ import annotations

from enum import StrEnum

from api.errors import ErrorCode
from api.schemas.common import Public


class State(StrEnum):
    UP = "up"
    DOWN = "down"


class WorkerState(StrEnum):
    UP = "up"
    STALE = "stale"
    """The heartbeat is still in Redis but older than it should be."""
    MISSING = "missing"
    """Seen by this API process before; its heartbeat has expired."""
    INVALID = "invalid"
    """The heartbeat value does not parse."""


class ServiceHealth(Public):
    state: State
    latency_ms: float
    detail: str


class WorkerHealth(Public):
    component: str
    state: WorkerState
    age_s: float | None
    """Seconds since the worker's last heartbeat; unknown when missing or invalid."""
    detail: str = ""


class WorkersHealth(Public):
    state: State
    detail: str
    components: list[WorkerHealth]


class HealthPublic(Public):
    state: State
    detail: str
    kafka: ServiceHealth
    postgres: ServiceHealth
    redis: ServiceHealth
    workers: WorkersHealth


class HealthDown(HealthPublic):
    """The 503 answer: the report, with the error code every error carries."""

    error: ErrorCode = ErrorCode.DEPENDENCY_UNAVAILABLE
