"""The execution router driver: the one place where an order's effective mode is acted on.

The decision itself is `core.execution.route`, made with the live gate as read immediately before: paper and
shadow orders go to `core.execution.simulate` and never reach a venue write call; a live order reaches a
connector only when live_enabled, an explicit risk policy and a healthy kill switch are all in place.
"""

from __future__ import annotations

from datetime import UTC, datetime

from agents.kit import AgentKit
from core.control import TradingState
from core.execution import Execution, Route, route, simulate
from core.fill_model import FillModel
from core.modes import LiveGate
from core.orders import Order, OrderStatus
from core.reasons import ReasonCode
from core.types import ExecutionMode


class ExecutionRouter:
    def __init__(self, kit: AgentKit, fill_model: FillModel) -> None:
        self._kit = kit
        self._fill_model = fill_model

    async def live_gate(self, order: Order, venue: str) -> LiveGate:
        account = self._kit.accounts[order.account_id]
        view = await self._kit.control.read(account, [], venue)
        state, _ = view.trading_state(venue, order.strategy_id, account.owner.user_id)
        return LiveGate(live_enabled=bool(view.live_enabled and view.live_enabled.enabled),
                        risk_policy_loaded=view.policy is not None and view.policy.explicit,
                        kill_switch_healthy=state is TradingState.ACTIVE)

    async def execute(self, order: Order) -> Execution:
        account = self._kit.accounts[order.account_id]
        instrument = self._kit.catalog.get(order.instrument_id)
        if instrument is None:  # the risk gate denies unknown instruments; reaching here is a wiring bug
            raise LookupError(f"approved order {order.order_id} for unknown instrument {order.instrument_id}")
        gate = await self.live_gate(order, instrument.venue.value) \
            if order.requested_mode is ExecutionMode.LIVE else None
        now = datetime.now(UTC)
        routed = route(order, account, gate, now)
        if routed.route is Route.REJECTED:
            return Execution(routed.order)
        if routed.route is Route.VENUE:
            # Venue connectors plug in here; a worker without one for this venue refuses rather than guess.
            return Execution(routed.order.transition(OrderStatus.REJECTED, now,
                                                     reason_code=ReasonCode.CONNECTOR_UNAVAILABLE.value))
        return simulate(routed.order, instrument, await self._kit.latest_quote(order.instrument_id),
                        self._fill_model, now)

    async def match_resting(self, order: Order) -> Execution:
        """Try a resting simulated order against the latest quote."""
        instrument = self._kit.catalog.get(order.instrument_id)
        if instrument is None:
            raise LookupError(f"resting order {order.order_id} for unknown instrument {order.instrument_id}")
        return simulate(order, instrument, await self._kit.latest_quote(order.instrument_id), self._fill_model,
                        datetime.now(UTC))
