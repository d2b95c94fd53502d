"""The FastAPI application: `create_app(settings)` for tests and embedding, `serve(settings)` for the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import uvicorn
from fastapi import FastAPI
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import BlockingConnectionPool, Redis

from api.deps import Resources
from api.errors import exception_handlers
from api.probes import HealthProbes
from api.producer import IntentProducer
from api.read_model import Pool
from api.routes import api_router
from core.clock import Clock, WallClock
from streams.control import ControlPlane
from tradestream.config import Settings

POOL_MAX_SIZE = 10
POOL_TIMEOUT_S = 2.0
"""How long a request waits for a Postgres connection before answering 503."""
REDIS_TIMEOUT_S = 1.0
REDIS_MAX_CONNECTIONS = 50
REDIS_POOL_TIMEOUT_S = 2.0
"""Requests beyond REDIS_MAX_CONNECTIONS wait this long for a connection before answering 503."""


def _pool(settings: Settings) -> Pool:
    return AsyncConnectionPool(
        settings.dsn, connection_class=AsyncConnection[DictRow], open=False, min_size=1, max_size=POOL_MAX_SIZE,
        timeout=POOL_TIMEOUT_S, check=AsyncConnectionPool.check_connection, name="api",
        kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": 2},
    )


def _redis(settings: Settings) -> Redis:
    return Redis.from_pool(BlockingConnectionPool.from_url(
        settings.redis, max_connections=REDIS_MAX_CONNECTIONS, timeout=REDIS_POOL_TIMEOUT_S, decode_responses=True,
        socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S))


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            pool = _pool(settings)
            await pool.open(wait=False)  # a Postgres that is down makes requests 503, not the start fail
            stack.push_async_callback(pool.close)
            redis = _redis(settings)
            stack.push_async_callback(redis.aclose)
            producer = IntentProducer(settings)
            await producer.start()
            stack.push_async_callback(producer.stop)
            wall = clock or WallClock()
            control = ControlPlane(settings)
            stack.callback(control.close)
            app.state.resources = Resources(settings=settings, clock=wall, pool=pool, redis=redis,
                                            producer=producer,
                                            probes=HealthProbes(settings, pool, redis, producer, wall),
                                            control=control)
            yield

    app = FastAPI(title="tradestream", summary="Control layer of the tradestream trading platform",
                  version="0.1.0", lifespan=lifespan, exception_handlers=exception_handlers())
    app.include_router(api_router)
    return app


def serve(settings: Settings) -> None:
    """Run the API with uvicorn on settings.api_host:api_port until interrupted (logging configured by the caller)."""
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None)
