"""Dependencies of the routes, as `Annotated` aliases; the resources live on the app from its lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Header, Request
from redis.asyncio import Redis

from api.errors import ApiError, ErrorCode
from api.intake import OrderIntake
from api.probes import HealthProbes
from api.producer import IntentProducer
from api.read_model import Pool
from core.accounts import Account
from core.clock import Clock
from streams.control import ControlPlane
from tradestream.config import Settings

IDEMPOTENCY_KEY_MAX_LENGTH = 255


@dataclass(frozen=True)
class Resources:
    settings: Settings
    clock: Clock
    pool: Pool
    redis: Redis
    producer: IntentProducer
    probes: HealthProbes
    control: ControlPlane


def _resources(request: Request) -> Resources:
    return cast(Resources, request.app.state.resources)


def _settings(request: Request) -> Settings:
    return _resources(request).settings


def _clock(request: Request) -> Clock:
    return _resources(request).clock


def _pool(request: Request) -> Pool:
    return _resources(request).pool


def _redis(request: Request) -> Redis:
    return _resources(request).redis


def _probes(request: Request) -> HealthProbes:
    return _resources(request).probes


def _control(request: Request) -> ControlPlane:
    return _resources(request).control


def _actor(actor: Annotated[str, Header(alias="X-Actor", min_length=1, max_length=64,
                                         description="Who makes the change; recorded in the audit trail.")]
           = "api") -> str:
    return actor


def _intake(request: Request) -> OrderIntake:
    res = _resources(request)
    return OrderIntake(res.settings, res.redis, res.producer, res.pool)


def _idempotency_key(
    key: Annotated[str | None, Header(alias="Idempotency-Key", description="Unique per order; retries reuse it.")]
    = None,
) -> str:
    if key is None:
        raise ApiError(400, ErrorCode.IDEMPOTENCY_KEY_REQUIRED,
                       "the Idempotency-Key header is required: send a unique key per order and reuse it on retries")
    if not key.strip() or len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise ApiError(400, ErrorCode.IDEMPOTENCY_KEY_INVALID,
                       f"the Idempotency-Key header must hold 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} visible characters")
    return key


def account_or_404(settings: Settings, account_id: str) -> Account:
    account = settings.account(account_id)
    if account is None:
        raise ApiError(404, ErrorCode.UNKNOWN_ACCOUNT, f"account {account_id!r} is not configured")
    return account


SettingsDep = Annotated[Settings, Depends(_settings)]
ClockDep = Annotated[Clock, Depends(_clock)]
PoolDep = Annotated[Pool, Depends(_pool)]
RedisDep = Annotated[Redis, Depends(_redis)]
ProbesDep = Annotated[HealthProbes, Depends(_probes)]
IntakeDep = Annotated[OrderIntake, Depends(_intake)]
IdempotencyKeyDep = Annotated[str, Depends(_idempotency_key)]
ControlDep = Annotated[ControlPlane, Depends(_control)]
ActorDep = Annotated[str, Depends(_actor)]
