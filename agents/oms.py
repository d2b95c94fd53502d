"""OMS: turns each risk decision into an order (deterministic id, idempotent), routes it, emits its events."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from agents.execution import ExecutionRouter
from agents.kit import AgentKit
from core.execution import Duplicate, Execution, accept
from core.risk import RiskDecision
from streams.records import FillReported, OrderUpdated, decode
from streams.topics import ORDER_DECISIONS, ORDER_EVENTS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)


def register(kit: AgentKit, orders: Any, router: ExecutionRouter) -> None:
    async def on_decision(decision: RiskDecision, event: Any) -> None:
        intent = decision.intent
        with traced(intent.trace_id, order_id=intent.order_id, account_id=intent.account_id):
            accepted = accept(decision, orders.get(intent.order_id), datetime.now(UTC))
            if isinstance(accepted, Duplicate):
                log.warning("order.duplicate_ignored", reason_code=accepted.value)
                return
            execution = await router.execute(accepted) if decision.approved else Execution(accepted)
            order = execution.order
            orders[order.order_id] = order
            # One event with the order's state after this step; its version counts the transitions taken.
            await kit.send(ORDER_EVENTS, order.account_id, OrderUpdated(order=order), order.trace_id)
            for fill in execution.fills:
                await kit.send(ORDER_EVENTS, order.account_id, FillReported(fill=fill), order.trace_id)
            log.info("order.routed", status=order.status.value, effective_mode=order.effective_mode,
                     reason_code=order.reason_code, fills=len(execution.fills))

    @kit.app.agent(kit.topic(ORDER_DECISIONS), name="oms")
    async def oms(stream: Any) -> None:
        await kit.consume(stream, partial(decode, RiskDecision), "oms", on_decision)
