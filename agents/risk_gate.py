"""Risk gate: the only writer of orders.decisions. Every intent, from a strategy or the API, passes here, and
every decision leaves sealed so the OMS can tell it from a forgery."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Any

from agents.kit import AgentKit
from core.ledger import Ledger
from core.orders import OrderIntent
from core.reasons import ReasonCode
from core.risk import Denial, OrderRateWindow, RiskContext, RiskDecision, context_for, deny, evaluate, freshest
from core.seal import seal
from core.types import ZERO
from streams.records import decode
from streams.topics import ORDER_DECISIONS, ORDER_INTENTS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)


def register(kit: AgentKit, ledgers: Any) -> None:
    rate_window = OrderRateWindow()

    async def decide(intent: OrderIntent, now: datetime) -> RiskDecision:
        account = kit.accounts.get(intent.account_id)
        if account is None:
            return deny(intent, Denial(code=ReasonCode.UNKNOWN_ACCOUNT, detail=f"account={intent.account_id}"),
                        None, now)
        instrument = kit.catalog.get(intent.instrument_id)
        ledger: Ledger = ledgers.get(intent.account_id) or Ledger.open(account)
        held = [i for i, p in ledger.positions.items() if p.quantity != 0]
        venue = instrument.venue.value if instrument else "unknown"
        view = await kit.control.read(account, [intent.instrument_id, *held], venue)
        if view.policy is None:
            return deny(intent, Denial(code=ReasonCode.NO_RISK_POLICY, detail=f"account={account.account_id}"),
                        None, now)
        exposure = ledger.exposure({i: q.mid for i, q in view.quotes.items()}, kit.catalog)
        state, state_reason = view.trading_state(venue, intent.strategy_id, account.owner.user_id)
        if instrument is None:
            ctx = RiskContext(instrument=None, position_quantity=ZERO, quote=None)
        else:
            ctx = context_for(intent.instrument_id, instrument, ledger, exposure,
                              freshest(view.quotes.get(intent.instrument_id), intent.market), state, state_reason,
                              rate_window.count(account.account_id, now, view.policy.order_rate_window_s))
        decision = evaluate(intent, ctx, view.policy, now)
        if decision.approved:
            rate_window.record(account.account_id, now)
        return decision

    async def on_intent(intent: OrderIntent, event: Any) -> None:
        with traced(intent.trace_id, order_id=intent.order_id, account_id=intent.account_id):
            decision = seal(await decide(intent, datetime.now(UTC)), kit.seal_key)
            log.info("risk.decided", approved=decision.approved, reason_code=decision.reason_code.value,
                     reason_detail=decision.reason_detail)
            await kit.send(ORDER_DECISIONS, intent.account_id, decision, intent.trace_id)

    @kit.app.agent(kit.topic(ORDER_INTENTS), name="risk_gate")
    async def risk_gate(stream: Any) -> None:
        await kit.consume(stream, partial(decode, OrderIntent), "risk_gate", on_intent)
