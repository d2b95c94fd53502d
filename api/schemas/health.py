"""The state of each service and worker the platform needs."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


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


class ServiceHealth(BaseModel):
    state: State
    latency_ms: float
    detail: str


class WorkerHealth(BaseModel):
    component: str
    state: WorkerState
    age_s: float | None
    """Seconds since the worker's last heartbeat; unknown when missing or invalid."""
    detail: str = ""


class WorkersHealth(BaseModel):
    state: State
    detail: str
    components: list[WorkerHealth]


class HealthPublic(BaseModel):
    state: State
    kafka: ServiceHealth
    postgres: ServiceHealth
    redis: ServiceHealth
    workers: WorkersHealth
