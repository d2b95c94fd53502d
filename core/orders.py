"""Order intents, orders, and the order state machine.

The order id is a deterministic function of (account, strategy, idempotency key), so a retried or replayed
submission lands on the same order. The venue client order id is the order id: a retry to a venue reuses it.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, model_validator

from core.accounts import IDENT, Account, Owner
from core.market import Quote
from core.trusted import builder, evolve_with
from core.types import (
    ZERO,
    Amount,
    ExecutionMode,
    Frozen,
    NonNegative,
    OrderType,
    Positive,
    Side,
    TimeInForce,
    UtcDatetime,
)


class IntentSource(StrEnum):
    STRATEGY = "strategy"
    API = "api"


TRACE_ID = r"^[0-9a-f]{32}$"
MAX_IDEMPOTENCY_KEY = 255


class OrderIntent(Frozen):
    """A wish to trade, before risk. Carries the trace id minted with it."""

    schema_version: Literal[1] = 1
    trace_id: str = Field(pattern=TRACE_ID)
    account_id: str = Field(pattern=IDENT)
    owner: Owner
    strategy_id: str = Field(pattern=IDENT)
    idempotency_key: str = Field(min_length=1, max_length=MAX_IDEMPOTENCY_KEY)
    instrument_id: str = Field(min_length=1)
    side: Side
    order_type: OrderType
    quantity: Positive
    limit_price: Positive | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    requested_mode: ExecutionMode
    source: IntentSource
    created_at: UtcDatetime
    market: Quote | None = None
    """The quote the strategy acted on. The gate and the simulator use it when nothing newer is known, so a
    paper fill is never at a quote older than the signal's."""

    @model_validator(mode="after")
    def _price_matches_type(self) -> OrderIntent:
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        if self.order_type is OrderType.MARKET and self.limit_price is not None:
            raise ValueError("a market order takes no limit_price")
        return self

    @property
    def order_id(self) -> str:
        return order_id_for(self.account_id, self.strategy_id, self.idempotency_key)

    @property
    def fingerprint(self) -> str:
        """What the order asks for; the same idempotency key with another fingerprint is a conflict."""
        return intent_fingerprint(self.instrument_id, self.side, self.order_type, self.quantity, self.limit_price,
                                  self.time_in_force, self.requested_mode)


_trusted_intent = builder(OrderIntent)
_trace_id = re.compile(TRACE_ID).fullmatch  # fullmatch: `$` alone also matches before a final newline
_ident = re.compile(IDENT).fullmatch


def strategy_intent(*, trace_id: str, account: Account, strategy_id: str, idempotency_key: str, instrument_id: str,
                    side: Side, order_type: OrderType, quantity: Decimal, limit_price: Decimal | None,
                    time_in_force: TimeInForce, created_at: datetime) -> OrderIntent:
    """The intent a strategy asks for, on `account`. Arguments of exactly the types the model holds and within its
    constraints are assembled without validating them again (that took a tenth of a backtest's order path); any
    other argument goes through `model_validate`, which converts it as ever or says what is wrong. The checks are
    the model's, only narrower: what passes them is what validation would return unchanged (a test holds the two
    to that)."""
    values = {"trace_id": trace_id, "account_id": account.account_id, "owner": account.owner,
              "strategy_id": strategy_id, "idempotency_key": idempotency_key, "instrument_id": instrument_id,
              "side": side, "order_type": order_type, "quantity": quantity, "limit_price": limit_price,
              "time_in_force": time_in_force, "requested_mode": account.mode, "source": IntentSource.STRATEGY,
              "created_at": created_at}
    plain = (type(trace_id) is str and _trace_id(trace_id) is not None
             and type(strategy_id) is str and _ident(strategy_id) is not None
             and type(idempotency_key) is str and 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY
             and type(instrument_id) is str and instrument_id != ""
             and type(side) is Side and type(time_in_force) is TimeInForce
             and _positive_decimal(quantity)
             and (limit_price is None if order_type is OrderType.MARKET
                  else order_type is OrderType.LIMIT and _positive_decimal(limit_price))
             and type(created_at) is datetime and created_at.tzinfo is UTC)
    return _trusted_intent(**values) if plain else OrderIntent.model_validate(values)


def _positive_decimal(value: object) -> bool:
    return type(value) is Decimal and value.is_finite() and value > ZERO


@lru_cache(maxsize=4096)  # a flow repeats a few bodies (instrument, side, size): each is hashed once
def intent_fingerprint(instrument_id: str, side: Side, order_type: OrderType, quantity: Decimal,
                       limit_price: Decimal | None, time_in_force: TimeInForce, requested_mode: ExecutionMode) -> str:
    """The fingerprint of an order body. Quantity and price count by value (normalised: 1.50 and 1.5 are one
    price), so equal arguments, as the cache compares them, always have the same fingerprint."""
    parts = (
        instrument_id, side.value, order_type.value, str(quantity.normalize()),
        "" if limit_price is None else str(limit_price.normalize()), time_in_force.value, requested_mode.value,
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@lru_cache(maxsize=4096)  # the OMS, the risk gate and the strategy context each ask for it: hash once
def order_id_for(account_id: str, strategy_id: str, idempotency_key: str) -> str:
    digest = hashlib.sha256(f"{account_id}\x1f{strategy_id}\x1f{idempotency_key}".encode()).hexdigest()
    return f"ord_{digest[:28]}"


class OrderStatus(StrEnum):
    NEW = "new"
    PENDING_SUBMIT = "pending_submit"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED,
                               OrderStatus.EXPIRED})

LEGAL_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset({OrderStatus.PENDING_SUBMIT, OrderStatus.REJECTED}),
    OrderStatus.PENDING_SUBMIT: frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                                           OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}),
    OrderStatus.OPEN: frozenset({OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.PENDING_CANCEL,
                                 OrderStatus.CANCELLED, OrderStatus.EXPIRED}),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                                             OrderStatus.PENDING_CANCEL, OrderStatus.CANCELLED,
                                             OrderStatus.EXPIRED}),
    OrderStatus.PENDING_CANCEL: frozenset({OrderStatus.CANCELLED, OrderStatus.PARTIALLY_FILLED,
                                           OrderStatus.FILLED, OrderStatus.OPEN}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.EXPIRED: frozenset(),
}


class IllegalTransitionError(ValueError):
    def __init__(self, order_id: str, current: OrderStatus, requested: OrderStatus) -> None:
        super().__init__(f"order {order_id}: illegal transition {current.value} -> {requested.value}")
        self.order_id = order_id
        self.current = current
        self.requested = requested


class Order(Frozen):
    schema_version: Literal[1] = 1
    order_id: str
    client_order_id: str
    trace_id: str
    account_id: str
    owner: Owner
    strategy_id: str
    idempotency_key: str
    intent_fingerprint: str
    instrument_id: str
    side: Side
    order_type: OrderType
    quantity: Positive
    limit_price: Positive | None
    time_in_force: TimeInForce
    status: OrderStatus
    filled_quantity: NonNegative = ZERO
    average_fill_price: Amount | None = None
    requested_mode: ExecutionMode
    effective_mode: ExecutionMode | None = None
    reason_code: str
    reason_detail: str = ""
    venue_response: dict[str, Any] | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = Field(default=0, ge=0)

    @property
    def remaining_quantity(self) -> NonNegative:
        return self.quantity - self.filled_quantity

    def transition(self, status: OrderStatus, at: UtcDatetime, **changes: Any) -> Order:
        """Apply a legal state change; an illegal one raises and leaves the order as it was."""
        if status not in LEGAL_TRANSITIONS[self.status]:
            raise IllegalTransitionError(self.order_id, self.status, status)
        values = {"status": status, "updated_at": at, "version": self.version + 1}
        values.update(changes)
        if len(values) != len(changes) + 3:
            raise TypeError(f"order {self.order_id}: a transition sets status, updated_at and version itself")
        return evolve_with(self, values)

    def with_fill(self, quantity: Positive, price: Amount, at: UtcDatetime, **changes: Any) -> Order:
        """Account for one execution: cumulative quantity, volume-weighted average price, new status (and any
        further `changes` in the same step)."""
        filled = self.filled_quantity + quantity
        if filled > self.quantity:
            raise ValueError(f"order {self.order_id}: fill of {quantity} exceeds remaining {self.remaining_quantity}")
        previous = self.filled_quantity
        # The first fill is the average: no division (the common case, one fill per order).
        average = price if not previous else ((self.average_fill_price or ZERO) * previous + price * quantity) / filled
        status = OrderStatus.FILLED if filled == self.quantity else OrderStatus.PARTIALLY_FILLED
        return self.transition(status, at, filled_quantity=filled, average_fill_price=average, **changes)


_trusted_order = builder(Order)


def new_order(intent: OrderIntent, reason_code: str, reason_detail: str, at: UtcDatetime, *,
              status: OrderStatus = OrderStatus.NEW, version: int = 0,
              effective_mode: ExecutionMode | None = None) -> Order:
    """The order for an intent, NEW. `status`, `version` and `effective_mode` are for `core.execution.admit`, which
    builds an order directly in the state its first (legal, NEW -> PENDING_SUBMIT) transition would give it."""
    order_id = intent.order_id
    # Every field comes from the validated intent and decision: no re-validation on the order path.
    return _trusted_order(
        order_id=order_id,
        client_order_id=order_id,
        trace_id=intent.trace_id,
        account_id=intent.account_id,
        owner=intent.owner,
        strategy_id=intent.strategy_id,
        idempotency_key=intent.idempotency_key,
        intent_fingerprint=intent.fingerprint,
        instrument_id=intent.instrument_id,
        side=intent.side,
        order_type=intent.order_type,
        quantity=intent.quantity,
        limit_price=intent.limit_price,
        time_in_force=intent.time_in_force,
        status=status,
        requested_mode=intent.requested_mode,
        effective_mode=effective_mode,
        reason_code=reason_code,
        reason_detail=reason_detail,
        created_at=at,
        updated_at=at,
        version=version,
    )
