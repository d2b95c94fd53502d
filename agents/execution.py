"""The execution router driver: the one place where an order's effective mode is acted on.

The decision itself is `core.execution.route`, made with the live gate as read immediately before: paper orders go
to `core.execution.simulate`; shadow orders too, walking the venue's live book, and never reach a venue write call;
a live order reaches its connector only when live_enabled, an explicit risk policy and a healthy kill switch are all
in place. The router is the only issuer of `LiveWriteAuthorization`.

A live write whose outcome is not known (every retry failed, or an answer nobody can read) leaves the order
pending_submit with VENUE_OUTCOME_UNKNOWN: it is never sent again under another id and never called rejected on a
guess. `match_resting` resolves it later from what the venue shows (its open orders, the fills the fill poller
found), and applies those fills to live orders.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from agents.kit import AgentKit
from agents.venues import LiveOrderRef, VenueState
from connectors.errors import DuplicateClientOrderIdError, UnsupportedError, VenueClientError
from connectors.registry import Binding, ConnectorRegistry
from core.commands import cancel
from core.control import TradingState
from core.execution import Execution, Route, placed, route, simulate
from core.fill_model import FillModel
from core.instruments import Instrument
from core.market import Quote
from core.modes import LiveGate
from core.orders import Order, OrderStatus
from core.reasons import ReasonCode
from core.risk import freshest
from core.types import ExecutionMode
from core.venue import LiveWriteAuthorization, OrderBook
from tradestream.logging import get_logger

log = get_logger(__name__)

SHADOW_BOOK_DEPTH = 50
MARKET_REUSE_WINDOW = timedelta(milliseconds=250)


class ExecutionRouter:
    def __init__(self, kit: AgentKit, fill_model: FillModel, registry: ConnectorRegistry | None = None,
                 venues: VenueState | None = None) -> None:
        self._kit = kit
        self._fill_model = fill_model
        self._registry = registry or ConnectorRegistry(())
        self._venues = venues or VenueState(kit.redis, kit.settings.topic_prefix)
        self._look_interval = kit.settings.connectors.poll_interval_s
        self._next_look: dict[str, float] = {}
        """Live order id -> loop time before which the venue is not asked about it again."""

    async def live_gate(self, order: Order, venue: str) -> LiveGate:
        account = self._kit.accounts[order.account_id]
        view = await self._kit.control.read(account, [], venue)
        state, _ = view.trading_state(venue, order.strategy_id, account.owner.user_id)
        return LiveGate(live_enabled=bool(view.live_enabled and view.live_enabled.enabled),
                        risk_policy_loaded=view.policy is not None and view.policy.explicit,
                        kill_switch_healthy=state is TradingState.ACTIVE)

    async def execute(self, order: Order, market: Quote | None = None, judged_at: datetime | None = None) -> Execution:
        """Route and execute a new order; `market` is the quote the risk gate judged it against at `judged_at`. A
        simulated order executes against it, as in a backtest, unless the decision waited longer than
        MARKET_REUSE_WINDOW (a backlog, say after a restart): then against the freshest of it and the market view."""
        account = self._kit.accounts[order.account_id]
        instrument = self._instrument(order)
        gate = await self.live_gate(order, instrument.venue.value) \
            if order.requested_mode is ExecutionMode.LIVE else None
        now = datetime.now(UTC)
        routed = route(order, account, gate, now)
        if routed.route is Route.REJECTED:
            return Execution(routed.order)
        order = routed.order
        if market is None or judged_at is None or now - judged_at > MARKET_REUSE_WINDOW:
            market = freshest(await self._kit.latest_quote(order.instrument_id), market)
        if order.effective_mode is ExecutionMode.PAPER:
            return simulate(order, instrument, market, self._fill_model, now)
        binding = self._registry.binding_for(order.account_id, instrument.venue)
        if binding is None:  # a worker without this venue's connector refuses rather than guess
            return Execution(order.transition(OrderStatus.REJECTED, now,
                                              reason_code=ReasonCode.CONNECTOR_UNAVAILABLE.value))
        if order.effective_mode is ExecutionMode.LIVE:
            return Execution(await self._place(order, binding, now))
        if not await self._venues.seeded(order.account_id):
            return Execution(order.transition(OrderStatus.REJECTED, now,
                                              reason_code=ReasonCode.SHADOW_NOT_SEEDED.value))
        return simulate(order, instrument, market, self._fill_model, now,
                        book=await self._book(binding, order.instrument_id))

    async def match_resting(self, order: Order) -> Execution:
        """Move a working order on: a simulated one against the latest quote, a live one to what its venue shows."""
        if order.effective_mode is ExecutionMode.LIVE:
            return Execution(await self._look_at_venue(order))
        # A resting shadow order meets the venue's own quotes (published to the market view), not a book read per
        # order every half second, which would spend the venue's rate limit on simulations.
        return simulate(order, self._instrument(order), await self._kit.latest_quote(order.instrument_id),
                        self._fill_model, datetime.now(UTC))

    async def cancel(self, order: Order, code: ReasonCode, detail: str) -> Execution | None:
        """The order after a cancel request, or None when there is nothing to cancel. A simulated order is
        cancelled at once; a live one is cancelled at its venue, and stays pending_cancel while the venue's answer
        is unknown."""
        now = datetime.now(UTC)
        if order.effective_mode is ExecutionMode.LIVE and order.status is OrderStatus.PENDING_SUBMIT:
            # The venue may hold it, under an id we do not know yet: calling it cancelled would be a guess.
            log.warning("order.cancel_deferred", order_id=order.order_id, reason=ReasonCode.VENUE_OUTCOME_UNKNOWN)
            return None
        cancelled = cancel(order, now, code.value, detail)
        if cancelled is None:
            return None
        if cancelled.status is OrderStatus.PENDING_CANCEL:
            cancelled = await self._cancel_at_venue(cancelled)
            if cancelled.status.is_terminal:
                self._next_look.pop(order.order_id, None)
        return Execution(cancelled)

    # --- live -----------------------------------------------------------------------------------------------

    async def _place(self, order: Order, binding: Binding, now: datetime) -> Order:
        await self._venues.remember(binding.name, LiveOrderRef.of(order))  # before the write: fills may come first
        authorization = LiveWriteAuthorization(order_id=order.order_id, client_order_id=order.client_order_id,
                                               effective_mode=ExecutionMode.LIVE, issued_at=now)
        try:
            result = await binding.connector.place_order(order, authorization)
        except UnsupportedError as exc:
            return _rejected(order, ReasonCode.VENUE_UNSUPPORTED, exc)
        except DuplicateClientOrderIdError as exc:  # the id is taken but its order was not found: unknown
            return _unknown(order, exc)
        except VenueClientError as exc:  # refused outright (funds, price, credentials): nothing was placed
            return _rejected(order, ReasonCode.VENUE_REJECTED, exc)
        except Exception as exc:  # retries exhausted, an unreadable answer, a crash: the order may exist
            return _unknown(order, exc)
        await self._venues.remember(binding.name, LiveOrderRef.of(order, result.venue_order_id))
        log.info("order.placed", connector=binding.name, venue_order_id=result.venue_order_id,
                 venue_status=result.status.value, recovered=result.recovered)
        return placed(order, result, binding.name, datetime.now(UTC))

    async def _look_at_venue(self, order: Order) -> Order:
        loop = asyncio.get_running_loop()
        if loop.time() < self._next_look.get(order.order_id, 0.0):
            return order
        self._next_look[order.order_id] = loop.time() + self._look_interval
        binding = self._registry.binding_for(order.account_id, self._instrument(order).venue)
        if binding is None:
            return order
        order = await self._apply_venue_fills(order)
        if order.status is OrderStatus.PENDING_SUBMIT:
            order = await self._find_at_venue(order, binding)
        elif order.status is OrderStatus.PENDING_CANCEL:
            order = await self._cancel_at_venue(order)
        if order.status.is_terminal:
            self._next_look.pop(order.order_id, None)
        return order

    async def _apply_venue_fills(self, order: Order) -> Order:
        """The fills the poller found for this order and the order has not counted yet, by venue trade id."""
        response = dict(order.venue_response or {})
        counted = set(response.get("trade_ids", ()))
        for fill in await self._venues.fills_of(order.order_id):
            if fill.venue_trade_id in counted:
                continue
            if order.status.is_terminal or fill.quantity > order.remaining_quantity:
                log.error("order.venue_fill_not_applicable", order_id=order.order_id, status=order.status.value,
                          venue_trade_id=fill.venue_trade_id, quantity=str(fill.quantity))
                break
            counted.add(fill.venue_trade_id)
            response["trade_ids"] = sorted(counted)
            order = order.with_fill(fill.quantity, fill.price, datetime.now(UTC), venue_response=dict(response))
        return order

    async def _find_at_venue(self, order: Order, binding: Binding) -> Order:
        """An order whose placement outcome is unknown: working at the venue under its client order id?"""
        try:
            found = next((o for o in await binding.connector.open_orders()
                          if o.client_order_id == order.client_order_id), None)
        except Exception as exc:  # a failed read says nothing about the order
            log.warning("order.venue_lookup_failed", order_id=order.order_id, error=f"{type(exc).__name__}: {exc}")
            return order
        if found is None:
            return order
        await self._venues.remember(binding.name, LiveOrderRef.of(order, found.venue_order_id))
        return order.transition(OrderStatus.OPEN, datetime.now(UTC),
                                reason_code=ReasonCode.VENUE_OUTCOME_RESOLVED.value,
                                reason_detail=f"found at the venue as {found.venue_order_id} ({found.venue_status})",
                                venue_response={**(order.venue_response or {}), "connector": binding.name,
                                                "venue_order_id": found.venue_order_id,
                                                "venue_status": found.status.value})

    async def _cancel_at_venue(self, order: Order) -> Order:
        """A pending_cancel live order after asking its venue to cancel it (again, if the last answer was lost:
        a cancel by venue order id is safe to repeat)."""
        binding = self._registry.binding_for(order.account_id, self._instrument(order).venue)
        venue_order_id = (order.venue_response or {}).get("venue_order_id")
        if binding is None or not isinstance(venue_order_id, str):
            log.error("order.cancel_not_sent", order_id=order.order_id, connector=bool(binding),
                      venue_order_id=venue_order_id)
            return order
        authorization = LiveWriteAuthorization(order_id=order.order_id, client_order_id=order.client_order_id,
                                               effective_mode=ExecutionMode.LIVE, issued_at=datetime.now(UTC))
        try:
            await binding.connector.cancel_order(order, venue_order_id, authorization)
        except VenueClientError as exc:
            working = OrderStatus.PARTIALLY_FILLED if order.filled_quantity else OrderStatus.OPEN
            return order.transition(working, datetime.now(UTC), reason_code=ReasonCode.VENUE_CANCEL_REJECTED.value,
                                    reason_detail=_described(exc))
        except Exception as exc:  # unknown: stays pending_cancel and is asked again on the next look
            log.warning("order.cancel_outcome_unknown", order_id=order.order_id, error=_described(exc))
            return order
        return order.transition(OrderStatus.CANCELLED, datetime.now(UTC))

    # --- helpers --------------------------------------------------------------------------------------------

    def _instrument(self, order: Order) -> Instrument:
        instrument = self._kit.catalog.get(order.instrument_id)
        if instrument is None:  # the risk gate denies unknown instruments; reaching here is a wiring bug
            raise LookupError(f"order {order.order_id} for unknown instrument {order.instrument_id}")
        return instrument

    async def _book(self, binding: Binding, instrument_id: str) -> OrderBook | None:
        """The venue's book for a shadow order; without it the order is simulated at the quote's touch."""
        try:
            return await binding.connector.order_book(instrument_id, SHADOW_BOOK_DEPTH)
        except Exception as exc:
            log.warning("shadow.book_unavailable", connector=binding.name, instrument_id=instrument_id,
                        error=_described(exc))
            return None


def _described(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _rejected(order: Order, code: ReasonCode, exc: BaseException) -> Order:
    log.warning("order.venue_refused", reason_code=code.value, error=_described(exc))
    return order.transition(OrderStatus.REJECTED, datetime.now(UTC), reason_code=code.value,
                            reason_detail=_described(exc))


def _unknown(order: Order, exc: BaseException) -> Order:
    """Still pending_submit (the status the venue may have it in); only the reason records what happened."""
    log.error("order.venue_outcome_unknown", error=_described(exc))
    return order.model_copy(update={"reason_code": ReasonCode.VENUE_OUTCOME_UNKNOWN.value,
                                    "reason_detail": _described(exc), "updated_at": datetime.now(UTC)})
