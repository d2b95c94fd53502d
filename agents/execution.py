"""The execution router: the one place where an order's effective mode is decided and acted on.

paper and shadow orders go to the fill simulator and never reach a venue write call; a live order reaches a
connector only after `core.modes.resolve_mode` passed the live gate, immediately before the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agents.kit import AgentKit
from core.fill_model import FillModel
from core.fills import Fill
from core.modes import LiveGate, resolve_mode
from core.orders import Order, OrderStatus
from core.reasons import ReasonCode
from core.types import ExecutionMode

GateSource = Callable[[Order], Awaitable[LiveGate | None]]


async def no_live_gate(order: Order) -> LiveGate | None:
    """Until a control plane enables live trading for a user and connector, no live gate is open."""
    return None


@dataclass
class ExecutionResult:
    orders: list[Order] = field(default_factory=list)
    """Every state the order went through, in order."""
    fills: list[Fill] = field(default_factory=list)


class ExecutionRouter:
    def __init__(self, kit: AgentKit, fill_model: FillModel, live_gate: GateSource = no_live_gate) -> None:
        self._kit = kit
        self._fill_model = fill_model
        self._live_gate = live_gate

    async def execute(self, order: Order) -> ExecutionResult:
        result = ExecutionResult()
        account = self._kit.accounts[order.account_id]
        gate = await self._live_gate(order) if order.requested_mode is ExecutionMode.LIVE else None
        mode = resolve_mode(order.requested_mode, account.mode, gate)
        now = datetime.now(UTC)
        if not mode.allowed or mode.effective_mode is None:
            result.orders.append(order.transition(OrderStatus.REJECTED, now, reason_code=mode.reason_code.value,
                                                  reason_detail=mode.reason_detail))
            return result
        submitted = order.transition(OrderStatus.PENDING_SUBMIT, now, effective_mode=mode.effective_mode,
                                     reason_code=mode.reason_code.value)
        result.orders.append(submitted)
        if mode.effective_mode is ExecutionMode.LIVE:
            # Venue connectors plug in here; a worker without one for this venue refuses rather than guess.
            result.orders.append(submitted.transition(OrderStatus.REJECTED, now,
                                                      reason_code=ReasonCode.CONNECTOR_UNAVAILABLE.value))
            return result
        await self._simulate(submitted, mode.effective_mode, now, result)
        return result

    async def _simulate(self, order: Order, mode: ExecutionMode, now: datetime, result: ExecutionResult) -> None:
        instrument = self._kit.catalog.get(order.instrument_id)
        if instrument is None:  # the risk gate denies unknown instruments; reaching here is a wiring bug
            raise LookupError(f"approved order {order.order_id} for unknown instrument {order.instrument_id}")
        quote = await self._kit.latest_quote(order.instrument_id)
        fill = self._fill_model.match(order, instrument, quote, mode, now) if quote else None
        if quote is None or fill is None:
            code = ReasonCode.NO_QUOTE_RESTING if quote is None else ReasonCode.NOT_MARKETABLE_RESTING
            result.orders.append(order.transition(OrderStatus.OPEN, now, venue_response={
                "simulated": True, "resting": True, "reason": code.value,
                "quote_seq": quote.seq if quote else None}))
            return
        result.fills.append(fill)
        filled = order.with_fill(fill.quantity, fill.price, now)
        result.orders.append(filled.model_copy(update={"venue_response": {
            "simulated": True, "venue": fill.venue, "venue_trade_id": fill.venue_trade_id,
            "fill_price": str(fill.price), "fill_quantity": str(fill.quantity), "fee": str(fill.fee),
            "quote_seq": quote.seq, "bid": str(quote.bid), "ask": str(quote.ask)}}))
