"""Order submission from outside: claim the idempotency key, produce one intent, wait briefly for the order.

Idempotency follows Stripe's semantics. The order id is `order_id_for(account, strategy, key)`, and the key is
claimed with one atomic Redis command, `SET <idem key> <fingerprint> NX GET EX 24h`: it either claims the key
(and answers nothing) or answers the fingerprint that claimed it first. Only the claiming request produces an
intent, so any number of simultaneous submissions with one key produce one intent. A later request with the
same fingerprint gets the existing order (or 202 while the pipeline is still on it); with another fingerprint it
is refused with IDEMPOTENCY_CONFLICT. An order that outlived its 24 h claim is found in Postgres and answered
the same way. If anything fails between the claim and the broker's acknowledgement, the claim is released so
that a retry (with the same key) can produce the intent.

The API approves nothing: the intent goes through the same risk gate as a strategy's.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from redis.asyncio import Redis

from api import read_model
from api.errors import DEPENDENCY_ERRORS, ApiError, ErrorCode
from api.producer import IntentProducer
from api.read_model import Pool
from api.schemas.orders import OrderCreate, OrderPublic
from core.accounts import Account
from core.clock import Clock
from core.orders import IntentSource, OrderIntent
from streams.kafka import headers
from streams.records import encode
from streams.shared_state import idempotency_key
from streams.topics import ORDER_INTENTS, topic_name
from tradestream.config import Settings
from tradestream.logging import get_logger

log = get_logger(__name__)

CLAIM_TTL_S = 24 * 3600
ORDER_WAIT_S = 3.0
"""How long a submission waits for its order to reach the read model before answering 202."""
ORDER_POLL_S = 0.1

# Delete the claim only if it still holds this fingerprint.
_RELEASE_CLAIM = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class Outcome(StrEnum):
    CREATED = "created"
    """This request produced the intent and the order reached the read model in time."""
    ACCEPTED = "accepted"
    """This request produced the intent; the order is not in the read model yet."""
    EXISTING = "existing"
    """A repeat of an earlier submission whose order is in the read model."""
    PENDING = "pending"
    """A repeat of an earlier submission whose order is not in the read model yet."""


@dataclass(frozen=True)
class Submission:
    outcome: Outcome
    order_id: str
    order: OrderPublic | None
    produced_trace_id: str | None
    """The trace id of the intent this request produced; None for a repeat, which produces nothing."""


def build_intent(body: OrderCreate, account: Account, key: str, clock: Clock) -> OrderIntent:
    """The intent for a request; raises pydantic's ValidationError when the body breaks an order rule."""
    return OrderIntent(
        trace_id=uuid.uuid4().hex, account_id=account.account_id, owner=account.owner,
        strategy_id=body.strategy_id, idempotency_key=key, instrument_id=body.instrument_id, side=body.side,
        order_type=body.order_type, quantity=body.quantity, limit_price=body.limit_price,
        time_in_force=body.time_in_force, requested_mode=body.mode or account.mode, source=IntentSource.API,
        created_at=clock.now(),
    )


class OrderIntake:
    def __init__(self, settings: Settings, redis: Redis, producer: IntentProducer, pool: Pool) -> None:
        self._settings = settings
        self._redis = redis
        self._producer = producer
        self._pool = pool

    async def submit(self, intent: OrderIntent) -> Submission:
        claim = idempotency_key(self._settings, intent.order_id)
        # The fingerprint that claimed the key first; None when this request just claimed it.
        first = cast(str | None, await self._redis.set(claim, intent.fingerprint, nx=True, get=True,
                                                        ex=CLAIM_TTL_S))
        if first is not None:
            return self._repeat(intent, first, await read_model.get_order(self._pool, intent.order_id))
        try:
            existing = await read_model.get_order(self._pool, intent.order_id)
            if existing is None:
                await self._produce(intent)
        except BaseException:
            # Nothing was produced, or it is unknown whether it was: free the key so that a retry can produce.
            # (Should the first attempt have reached the broker after all, the OMS dedups by the order id.)
            await self._redis.eval(_RELEASE_CLAIM, 1, claim, intent.fingerprint)
            raise
        if existing is not None:  # submitted longer ago than a claim lives: the order holds the fingerprint
            await self._redis.set(claim, existing.intent_fingerprint, xx=True, keepttl=True)
            return self._repeat(intent, existing.intent_fingerprint, existing)
        order = await self._wait_for_order(intent.order_id)
        return Submission(Outcome.CREATED if order else Outcome.ACCEPTED, intent.order_id, order, intent.trace_id)

    def _repeat(self, intent: OrderIntent, first_fingerprint: str, order: OrderPublic | None) -> Submission:
        if first_fingerprint != intent.fingerprint:
            log.warning("idempotency conflict", idempotency_key=intent.idempotency_key)
            raise ApiError(422, ErrorCode.IDEMPOTENCY_CONFLICT,
                           f"idempotency key {intent.idempotency_key!r} was already used for order "
                           f"{intent.order_id} with a different body (instrument, side, type, quantity, price, "
                           f"time in force or mode); use a new key for a new order")
        log.info("repeated submission; no intent produced", first_trace_id=order.trace_id if order else None)
        return Submission(Outcome.EXISTING if order else Outcome.PENDING, intent.order_id, order, None)

    async def _produce(self, intent: OrderIntent) -> None:
        topic = topic_name(ORDER_INTENTS, self._settings.topic_prefix)
        await self._producer.send(topic, intent.account_id, encode(intent),
                                  headers(intent.trace_id, ORDER_INTENTS.record))
        log.info("order intent produced", topic=topic)

    async def _wait_for_order(self, order_id: str) -> OrderPublic | None:
        """The order once the read model has it; None after ORDER_WAIT_S or if Postgres does not answer (the
        intent is produced either way, so the answer is then 202)."""
        deadline = asyncio.get_running_loop().time() + ORDER_WAIT_S
        while True:
            try:
                order = await read_model.get_order(self._pool, order_id)
            except DEPENDENCY_ERRORS as exc:
                log.warning("read model unavailable while waiting for the order", error=f"{type(exc).__name__}: {exc}")
                return None
            if order is not None or asyncio.get_running_loop().time() >= deadline:
                return order
            await asyncio.sleep(ORDER_POLL_S)
