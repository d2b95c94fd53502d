"""Commands to the OMS (cancel one order, cancel a kill switch's scope, match resting simulated orders) and
the pure rules that apply them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from core.control import KillSwitch, KillSwitchScope
from core.orders import Order, OrderStatus
from core.types import ExecutionMode, Frozen, UtcDatetime

CANCELLABLE = frozenset({OrderStatus.NEW, OrderStatus.PENDING_SUBMIT, OrderStatus.OPEN,
                         OrderStatus.PARTIALLY_FILLED})


class CancelOrder(Frozen):
    schema_version: Literal[1] = 1
    kind: Literal["cancel_order"] = "cancel_order"
    account_id: str
    order_id: str
    actor: str
    reason: str = ""
    at: UtcDatetime


class CancelScope(Frozen):
    """Cancel every resting order of the account that a halted kill switch covers."""

    schema_version: Literal[1] = 1
    kind: Literal["cancel_scope"] = "cancel_scope"
    account_id: str
    switch: KillSwitch
    at: UtcDatetime


class MatchResting(Frozen):
    """Try the account's resting simulated orders against the latest quotes."""

    schema_version: Literal[1] = 1
    kind: Literal["match_resting"] = "match_resting"
    account_id: str
    at: UtcDatetime


OrderCommand = Annotated[CancelOrder | CancelScope | MatchResting, Field(discriminator="kind")]


def covered_by(order: Order, switch: KillSwitch, venue: str) -> bool:
    match switch.scope:
        case KillSwitchScope.GLOBAL:
            return True
        case KillSwitchScope.VENUE:
            return switch.target == venue
        case KillSwitchScope.STRATEGY:
            return switch.target == order.strategy_id
        case KillSwitchScope.USER:
            return switch.target == order.owner.user_id


def cancel(order: Order, at: UtcDatetime, reason_code: str, detail: str) -> Order | None:
    """The order after a cancel request, or None when it is already done. A simulated order is cancelled at once;
    a live one goes to pending_cancel until the venue confirms."""
    if order.status not in CANCELLABLE:
        return None
    if order.effective_mode is ExecutionMode.LIVE and order.status is OrderStatus.PENDING_SUBMIT:
        return None  # its outcome at the venue is unknown: it may be held there; reconciliation resolves it
    target = OrderStatus.PENDING_CANCEL if order.effective_mode is ExecutionMode.LIVE else OrderStatus.CANCELLED
    if order.status in (OrderStatus.NEW, OrderStatus.PENDING_SUBMIT):
        target = OrderStatus.CANCELLED  # never reached the venue
    return order.transition(target, at, reason_code=reason_code, reason_detail=detail)
