"""Risk gate: the only writer of orders.decisions. Every intent, from a strategy or the API, passes here."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
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

    async def on_intent(intent: OrderIntent, event: Any) -> None:
        with traced(intent.trace_id, order_id=intent.order_id, account_id=intent.account_id):
            now = datetime.now(UTC)
            if intent.account_id not in kit.accounts:
                decision = deny(intent, Denial(code=ReasonCode.UNKNOWN_ACCOUNT, detail=f"account={intent.account_id}"),
                                policy, now)
            else:
                ledger: Ledger | None = ledgers.get(intent.account_id)
                ctx = RiskContext(instrument=kit.catalog.get(intent.instrument_id),
                                  position_quantity=ledger.quantity(intent.instrument_id) if ledger else ZERO,
                                  quote=await kit.latest_quote(intent.instrument_id))
                decision = evaluate(intent, ctx, policy, now)
            log.info("risk.decided", approved=decision.approved, reason_code=decision.reason_code.value,
                     reason_detail=decision.reason_detail)
            await kit.send(ORDER_DECISIONS, intent.account_id, decision, intent.trace_id)

    @kit.app.agent(kit.topic(ORDER_INTENTS), name="risk_gate")
    async def risk_gate(stream: Any) -> None:
        await kit.consume(stream, partial(decode, OrderIntent), "risk_gate", on_intent)
