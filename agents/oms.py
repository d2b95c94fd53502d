"""OMS: turns each sealed risk decision into an order (deterministic id, idempotent), routes it, emits its
events; handles cancels (by request or by a halted kill switch, at the venue for live orders) and moves working
orders on: resting simulated ones against the quotes, live ones to what their venue shows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from typing import Any

from agents.execution import ExecutionRouter
from agents.kit import AgentKit
from core.audit import AuditAction, AuditEvent
from core.commands import CancelOrder, CancelScope, MatchResting, covered_by
from core.execution import Duplicate, Execution, accept
from core.orders import Order, OrderStatus
from core.reasons import ReasonCode
from core.risk import RiskDecision
from core.seal import is_sealed
from core.types import Frozen
from streams.records import FillReported, OrderUpdated, decode, decode_order_command
from streams.topics import ORDER_COMMANDS, ORDER_DECISIONS, ORDER_EVENTS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)

WORKING = frozenset({OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_SUBMIT,
                     OrderStatus.PENDING_CANCEL})
"""Pending statuses are published only for live orders whose venue outcome is not known yet: they stay working
until the execution router resolves them."""


class OpenOrders(Frozen):
    """The ids of an account's orders that are still working."""

    order_ids: tuple[str, ...] = ()


def register(kit: AgentKit, orders: Any, open_orders: Any, router: ExecutionRouter) -> None:
    async def publish(execution: Execution) -> None:
        order = execution.order
        orders[order.order_id] = order
        working = set((open_orders.get(order.account_id) or OpenOrders()).order_ids)
        changed = (working | {order.order_id}) if order.status in WORKING else (working - {order.order_id})
        if changed != working:
            open_orders[order.account_id] = OpenOrders(order_ids=tuple(sorted(changed)))
        # One event with the order's state after this step; its version counts the transitions taken.
        await kit.send(ORDER_EVENTS, order.account_id, OrderUpdated(order=order), order.trace_id)
        for fill in execution.fills:
            await kit.send(ORDER_EVENTS, order.account_id, FillReported(fill=fill), order.trace_id)

    async def refuse_forgery(decision: RiskDecision, event: Any) -> None:
        log.error("decision.forged_refused", approved=decision.approved)
        await asyncio.to_thread(kit.control_plane.audit, AuditEvent(
            action=AuditAction.FORGED_DECISION_REFUSED, actor="oms", subject=decision.intent.order_id,
            at=datetime.now(UTC), after={"approved": decision.approved, "reason_code": decision.reason_code.value},
            trace_id=decision.intent.trace_id))
        await kit.dead_letter(event, f"{ReasonCode.UNSEALED_DECISION.value}: the decision does not carry the "
                                     "risk gate's seal", "oms")

    async def on_decision(decision: RiskDecision, event: Any) -> None:
        intent = decision.intent
        with traced(intent.trace_id, order_id=intent.order_id, account_id=intent.account_id):
            if not is_sealed(decision, kit.seal_key):
                await refuse_forgery(decision, event)
                return
            accepted = accept(decision, orders.get(intent.order_id), datetime.now(UTC))
            if isinstance(accepted, Duplicate):
                log.warning("order.duplicate_ignored", reason_code=accepted.value)
                return
            execution = (await router.execute(accepted, decision.market, decision.decided_at) if decision.approved
                         else Execution(accepted))
            await publish(execution)
            log.info("order.routed", status=execution.order.status.value,
                     effective_mode=execution.order.effective_mode, reason_code=execution.order.reason_code,
                     fills=len(execution.fills))

    async def cancel_one(order: Order, code: ReasonCode, detail: str) -> None:
        with traced(order.trace_id, order_id=order.order_id, account_id=order.account_id):
            cancelled = await router.cancel(order, code, detail)
            if cancelled is None:
                return
            await publish(cancelled)
            log.info("order.cancelled", reason_code=code.value, detail=detail, status=cancelled.order.status.value)

    def working(account_id: str) -> list[Order]:
        ids = (open_orders.get(account_id) or OpenOrders()).order_ids
        return [o for o in (orders.get(i) for i in ids) if o is not None]

    async def on_command(command: CancelOrder | CancelScope | MatchResting, event: Any) -> None:
        match command:
            case CancelOrder():
                order = orders.get(command.order_id)
                if order is None or order.account_id != command.account_id:
                    await kit.dead_letter(event, f"cancel for unknown order {command.order_id} of account "
                                                 f"{command.account_id}", "oms_commands")
                    return
                await cancel_one(order, ReasonCode.CANCELLED_BY_USER, f"actor={command.actor} {command.reason}")
            case CancelScope():
                for order in working(command.account_id):
                    instrument = kit.catalog.get(order.instrument_id)
                    venue = instrument.venue.value if instrument else ""
                    if covered_by(order, command.switch, venue):
                        await cancel_one(order, ReasonCode.CANCELLED_BY_KILL_SWITCH,
                                         f"kill_switch={command.switch.key} actor={command.switch.actor}")
            case MatchResting():
                for order in working(command.account_id):
                    with traced(order.trace_id, order_id=order.order_id, account_id=order.account_id):
                        execution = await router.match_resting(order)
                        if execution.order is not order:
                            await publish(execution)
                            log.info("order.resting_matched", status=execution.order.status.value,
                                     fills=len(execution.fills))

    @kit.app.agent(kit.topic(ORDER_DECISIONS), name="oms")
    async def oms(stream: Any) -> None:
        await kit.consume(stream, partial(decode, RiskDecision), "oms", on_decision)

    @kit.app.agent(kit.topic(ORDER_COMMANDS), name="oms_commands")
    async def oms_commands(stream: Any) -> None:
        await kit.consume(stream, decode_order_command, "oms_commands", on_command)

    @kit.timer(0.5, "match_resting")
    async def match_resting_orders() -> None:
        now = datetime.now(UTC)
        for account_id, working_ids in list(open_orders.items()):
            if working_ids is not None and working_ids.order_ids:
                await kit.send(ORDER_COMMANDS, account_id, MatchResting(account_id=account_id, at=now), None)


