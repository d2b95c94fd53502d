"""The state of each service and worker the platform needs."""

from __future__ import annotations

from datetime import datetime
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


class ConnectorReportState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    """Serving through a declared fallback (see `fallback`) or with a failing read (see `problems`)."""
    DOWN = "down"
    STALE = "stale"
    """The worker's last report is older than it should be: the connector's state is unknown."""
    MISSING = "missing"
    """The connector is enabled, but no worker has reported on it."""
    INVALID = "invalid"
    """The report does not parse."""


class ConnectorReport(Public):
    connector: str
    """`kalshi`, `coinbase`, `ibkr` or `ibkr:<IBKR account>`."""
    venue: str
    state: ConnectorReportState
    fallback: str | None = None
    """The declared fallback in use, e.g. `rest-polling` while the market data websocket is down."""
    market_data_mode: str | None = None
    latency_ms: float | None = None
    reachable: bool | None = None
    authenticated: bool | None = None
    detail: str = ""
    problems: tuple[str, ...] = ()
    """What is failing now, e.g. `instruments: VenueServerError: ...` (the last listing is kept meanwhile)."""
    last_error: str = ""
    last_error_at: datetime | None = None
    checked_at: datetime | None = None
    age_s: float | None = None
    """Seconds since the worker checked the connector."""


class ConnectorsHealth(Public):
    """The venue connectors the worker runs. Their trouble is reported here and does not turn /health to 503:
    the platform serves paper trading, reads and control without a venue."""

    state: ConnectorReportState
    """ok, degraded (a connector is degraded, stale or unreported) or down (a connector is down)."""
    detail: str
    connectors: list[ConnectorReport]


class HealthPublic(Public):
    state: State
    detail: str
    kafka: ServiceHealth
    postgres: ServiceHealth
    redis: ServiceHealth
    workers: WorkersHealth
    connectors: ConnectorsHealth


class HealthDown(HealthPublic):
    """The 503 answer: the report, with the error code every error carries."""

    error: ErrorCode = ErrorCode.DEPENDENCY_UNAVAILABLE
