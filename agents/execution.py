"""The execution router driver: the one place where an order's effective mode is acted on.

The decision itself is `core.execution.route`; paper and shadow orders go to `core.execution.simulate` and never
reach a venue write call. A live order would reach a connector only after the live gate passed, immediately
before the call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from agents.kit import AgentKit
from core.execution import Execution, Route, route, simulate
from core.fill_model import FillModel
from core.modes import LiveGate
from core.orders import Order, OrderStatus
from core.reasons import ReasonCode
from core.types import ExecutionMode

GateSource = Callable[[Order], Awaitable[LiveGate | None]]


async def no_live_gate(order: Order) -> LiveGate | None:
    """Until a control plane enables live trading for a user and connector, no live gate is open."""
    return None


class ExecutionRouter:
    def __init__(self, kit: AgentKit, fill_model: FillModel, live_gate: GateSource = no_live_gate) -> None:
        self._kit = kit
        self._fill_model = fill_model
        self._live_gate = live_gate

    async def execute(self, order: Order) -> Execution:
        account = self._kit.accounts[order.account_id]
        gate = await self._live_gate(order) if order.requested_mode is ExecutionMode.LIVE else None
        now = datetime.now(UTC)
        routed = route(order, account, gate, now)
        if routed.route is Route.REJECTED:
            return Execution(routed.order)
        if routed.route is Route.VENUE:
            # Venue connectors plug in here; a worker without one for this venue refuses rather than guess.
            return Execution(routed.order.transition(OrderStatus.REJECTED, now,
                                                     reason_code=ReasonCode.CONNECTOR_UNAVAILABLE.value))
        instrument = self._kit.catalog.get(order.instrument_id)
        if instrument is None:  # the risk gate denies unknown instruments; reaching here is a wiring bug
            raise LookupError(f"approved order {order.order_id} for unknown instrument {order.instrument_id}")
        return simulate(routed.order, instrument, await self._kit.latest_quote(order.instrument_id),
                        self._fill_model, now)
