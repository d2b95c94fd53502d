"""GET /health: Kafka, Postgres, Redis and the workers' heartbeats, 200 only when all are up; and the venue
connectors as the worker last checked them (state, fallback in use, latency, last error), reported without
changing the status code."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ProbesDep
from api.schemas.health import HealthDown, HealthPublic, State

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, responses={503: {"model": HealthDown}})
async def health(probes: ProbesDep) -> HealthPublic | JSONResponse:
    report = await probes.check()
    if report.state is State.UP:
        return report
    down = HealthDown(**report.model_dump())
    return JSONResponse(down.model_dump(mode="json"), status_code=503)
