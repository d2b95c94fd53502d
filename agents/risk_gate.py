"""Risk gate: the only writer of orders.decisions. Every intent, from a strategy or the API, passes here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.kit import AgentKit
from core.ledger import Ledger
from core.orders import OrderIntent
from core.reasons import ReasonCode
from core.risk import Denial, RiskContext, deny, evaluate
from core.types import ZERO
from streams.records import decode
from streams.topics import ORDER_DECISIONS, ORDER_INTENTS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)


def register(kit: AgentKit, ledgers: Any) -> None:
    policy = kit.settings.risk

    @kit.app.agent(kit.topic(ORDER_INTENTS), name="risk_gate")
    async def risk_gate(stream: Any) -> None:
        async for event in stream.events():
            intent = await kit.decode(event, lambda raw: decode(OrderIntent, raw), "risk_gate")
            if intent is None:
                continue
            with traced(intent.trace_id, order_id=intent.order_id, account_id=intent.account_id):
                now = datetime.now(UTC)
                if intent.account_id not in kit.accounts:
                    decision = deny(intent, Denial(code=ReasonCode.UNKNOWN_ACCOUNT,
                                                   detail=f"account={intent.account_id}"), policy, now)
                else:
                    raw_ledger = ledgers.get(intent.account_id.encode())
                    position = Ledger.model_validate_json(raw_ledger).quantity(intent.instrument_id) \
                        if raw_ledger else ZERO
                    ctx = RiskContext(instrument=kit.catalog.get(intent.instrument_id), position_quantity=position,
                                      quote=await kit.latest_quote(intent.instrument_id))
                    decision = evaluate(intent, ctx, policy, now)
                log.info("risk.decided", approved=decision.approved, reason_code=decision.reason_code.value,
                         reason_detail=decision.reason_detail)
                await kit.send(ORDER_DECISIONS, intent.account_id, decision, intent.trace_id)
