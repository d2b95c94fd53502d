"""Records carried on topics: every value is the JSON of one of these pydantic models.

Each record has a `schema_version`; a reader refuses a version it does not know (the message goes to the
dead-letter topic with the reason) rather than guessing. The trace id travels both in the record and in the
`trace_id` Kafka header.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from core.accounts import Account
from core.audit import AuditEvent
from core.commands import CancelOrder, CancelScope, MatchResting, OrderCommand
from core.control import KillSwitch, LiveEnabled
from core.fills import Fill
from core.instruments import ListedInstrument
from core.ledger import Ledger, PnlSnapshot, Position
from core.market import Quote
from core.orders import Order, OrderIntent
from core.risk import RiskDecision
from core.types import Frozen, UtcDatetime
from core.venue import Balance, VenuePosition

TRACE_HEADER = "trace_id"
RECORD_HEADER = "record"


class OrderUpdated(Frozen):
    schema_version: Literal[1] = 1
    kind: Literal["order"] = "order"
    order: Order


class FillReported(Frozen):
    schema_version: Literal[1] = 1
    kind: Literal["fill"] = "fill"
    fill: Fill


OrderEvent = Annotated[OrderUpdated | FillReported, Field(discriminator="kind")]
ORDER_EVENT: TypeAdapter[OrderUpdated | FillReported] = TypeAdapter(OrderEvent)


class PositionUpdated(Frozen):
    """A position after a fill, with the account's owner; keyed by account."""

    schema_version: Literal[1] = 1
    account_id: str
    owner_org_id: str
    owner_user_id: str
    mode: str
    position: Position
    ts: UtcDatetime

    @classmethod
    def of(cls, account: Account, position: Position, ts: UtcDatetime) -> PositionUpdated:
        return cls(account_id=account.account_id, owner_org_id=account.owner.org_id,
                   owner_user_id=account.owner.user_id, mode=account.mode.value, position=position, ts=ts)


ORDER_COMMAND: TypeAdapter[CancelOrder | CancelScope | MatchResting] = TypeAdapter(OrderCommand)


class ShadowSeed(Frozen):
    """A shadow account's opening ledger, read from its venue account; applied once, never written back."""

    schema_version: Literal[1] = 1
    account_id: str
    connectors: tuple[str, ...]
    balances: tuple[Balance, ...]
    positions: tuple[VenuePosition, ...]
    ledger: Ledger
    at: UtcDatetime


class InstrumentListed(ListedInstrument):
    """An instrument registry entry, published when it changes; keyed by instrument id on a compacted topic."""

    schema_version: Literal[1] = 1
    updated_at: UtcDatetime


class DeadLetter(Frozen):
    schema_version: Literal[1] = 1
    source_topic: str
    partition: int
    offset: int
    key: str | None
    value_b64: str
    error: str
    consumer: str
    at: UtcDatetime

    @property
    def raw_value(self) -> bytes:
        return base64.b64decode(self.value_b64)


class RecordError(ValueError):
    """A message that does not decode into its topic's record; the reason says why."""


M = TypeVar("M", bound=BaseModel)


def encode(record: BaseModel) -> bytes:
    return record.model_dump_json().encode()


def decode(model: type[M], raw: bytes | None) -> M:
    if raw is None:
        raise RecordError("empty message value")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RecordError(_describe(exc)) from None


def decode_order_event(raw: bytes | None) -> OrderUpdated | FillReported:
    if raw is None:
        raise RecordError("empty message value")
    try:
        return ORDER_EVENT.validate_json(raw)
    except ValidationError as exc:
        raise RecordError(_describe(exc)) from None


def decode_order_command(raw: bytes | None) -> CancelOrder | CancelScope | MatchResting:
    if raw is None:
        raise RecordError("empty message value")
    try:
        return ORDER_COMMAND.validate_json(raw)
    except ValidationError as exc:
        raise RecordError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(value)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


__all__ = [
    "RECORD_HEADER",
    "TRACE_HEADER",
    "AuditEvent",
    "CancelOrder",
    "CancelScope",
    "DeadLetter",
    "Fill",
    "FillReported",
    "InstrumentListed",
    "KillSwitch",
    "LiveEnabled",
    "MatchResting",
    "Order",
    "OrderIntent",
    "OrderUpdated",
    "PnlSnapshot",
    "PositionUpdated",
    "Quote",
    "RecordError",
    "RiskDecision",
    "decode",
    "decode_order_command",
    "decode_order_event",
    "encode",
]
