"""OMS: turns each risk decision into an order (deterministic id, idempotent), routes it, emits its events."""

from __future__ import annotations

from datetime import UTC, datetime
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
    @kit.app.agent(kit.topic(ORDER_DECISIONS), name="oms")
    async def oms(stream: Any) -> None:
        async for event in stream.events():
            decision = await kit.decode(event, lambda raw: decode(RiskDecision, raw), "oms")
            if decision is None:
                continue
            intent = decision.intent
            with traced(intent.trace_id, order_id=intent.order_id, account_id=intent.account_id):
                existing_raw = orders.get(intent.order_id.encode())
                if existing_raw is not None:
                    existing = Order.model_validate_json(existing_raw)
                    same = existing.intent_fingerprint == intent.fingerprint
                    code = ReasonCode.DUPLICATE_SUBMISSION if same else ReasonCode.IDEMPOTENCY_CONFLICT
                    log.warning("order.duplicate_ignored", reason_code=code.value, status=existing.status.value)
                    continue
                now = datetime.now(UTC)
                order = new_order(intent, decision.reason_code.value, decision.reason_detail, now)
                states = [order]
                fills: list[Fill] = []
                if decision.approved:
                    result = await router.execute(order)
                    states += result.orders
                    fills = result.fills
                else:
                    states.append(order.transition(OrderStatus.REJECTED, now))
                final = states[-1]
                orders[final.order_id.encode()] = final.model_dump_json().encode()
                # One event with the order's state after this step; its version counts the transitions taken.
                await kit.send(ORDER_EVENTS, final.account_id, OrderUpdated(order=final), final.trace_id)
                for fill in fills:
                    await kit.send(ORDER_EVENTS, final.account_id, FillReported(fill=fill), final.trace_id)
                log.info("order.routed", status=final.status.value, effective_mode=final.effective_mode,
                         reason_code=final.reason_code, fills=len(fills))
