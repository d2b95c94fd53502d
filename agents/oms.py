"""OMS: turns each risk decision into an order (deterministic id, idempotent), routes it, emits its events."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from agents.execution import ExecutionRouter
from agents.kit import AgentKit
from core.fills import Fill
from core.orders import Order, OrderStatus, new_order
from core.reasons import ReasonCode
from core.risk import RiskDecision
from streams.records import FillReported, OrderUpdated, decode
from streams.topics import ORDER_DECISIONS, ORDER_EVENTS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)


def register(kit: AgentKit, orders: Any, router: ExecutionRouter) -> None:
    async def on_decision(decision: RiskDecision, event: Any) -> None:
        intent = decision.intent
        with traced(intent.trace_id, order_id=intent.order_id, account_id=intent.account_id):
            existing: Order | None = orders.get(intent.order_id)
            if existing is not None:
                same = existing.intent_fingerprint == intent.fingerprint
                code = ReasonCode.DUPLICATE_SUBMISSION if same else ReasonCode.IDEMPOTENCY_CONFLICT
                log.warning("order.duplicate_ignored", reason_code=code.value, status=existing.status.value)
                return
            now = datetime.now(UTC)
            order = new_order(intent, decision.reason_code.value, decision.reason_detail, now)
            fills: list[Fill] = []
            if decision.approved:
                result = await router.execute(order)
                order, fills = result.orders[-1], result.fills
            else:
                order = order.transition(OrderStatus.REJECTED, now)
            orders[order.order_id] = order
            # One event with the order's state after this step; its version counts the transitions taken.
            await kit.send(ORDER_EVENTS, order.account_id, OrderUpdated(order=order), order.trace_id)
            for fill in fills:
                await kit.send(ORDER_EVENTS, order.account_id, FillReported(fill=fill), order.trace_id)
            log.info("order.routed", status=order.status.value, effective_mode=order.effective_mode,
                     reason_code=order.reason_code, fills=len(fills))

    @kit.app.agent(kit.topic(ORDER_DECISIONS), name="oms")
    async def oms(stream: Any) -> None:
        await kit.consume(stream, partial(decode, RiskDecision), "oms", on_decision)
