"""Order intake and routing, as pure functions: the OMS and execution-router agents and the backtester call
these, so every mode and the backtest run the same rules.

`accept` turns a risk decision into a new order (or says why not); `route` decides the effective mode once,
through `core.modes.resolve_mode`; `simulate` executes a paper or shadow order against a quote; `placed` is a live
order after its venue's answer. `admit` is `accept`
then `route` in one step, for a driver that shows nobody the new order in between (the backtest engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.accounts import Account
from core.fill_model import RESTING, FillModel
from core.fills import Fill
from core.instruments import Instrument
from core.market import Bar, Quote
from core.modes import LiveGate, resolve_mode
from core.orders import Order, OrderIntent, OrderStatus, new_order
from core.reasons import ReasonCode
from core.risk import RiskDecision
from core.types import ZERO, ExecutionMode, UtcDatetime
from core.venue import OrderBook, PlaceResult


class Duplicate(StrEnum):
    SAME_BODY = ReasonCode.DUPLICATE_SUBMISSION.value
    OTHER_BODY = ReasonCode.IDEMPOTENCY_CONFLICT.value


def accept(decision: RiskDecision, existing: Order | None, at: UtcDatetime) -> Order | Duplicate:
    """A new order for the decision (rejected when the gate denied it), or why none is created: an order with
    this deterministic id exists, with the same body or with another (never answered with the first)."""
    intent = decision.intent
    if existing is not None:
        return _duplicate(existing, intent)
    order = new_order(intent, decision.reason_code.value, decision.reason_detail, at)
    return order if decision.approved else order.transition(OrderStatus.REJECTED, at)


def _duplicate(existing: Order, intent: OrderIntent) -> Duplicate:
    return Duplicate.SAME_BODY if existing.intent_fingerprint == intent.fingerprint else Duplicate.OTHER_BODY


class Route(StrEnum):
    REJECTED = "rejected"
    SIMULATE = "simulate"
    VENUE = "venue"


@dataclass(frozen=True)
class Routed:
    order: Order
    """The order after the mode decision: rejected, or pending_submit with its effective mode."""
    route: Route


def route(order: Order, account: Account, gate: LiveGate | None, at: UtcDatetime) -> Routed:
    mode = resolve_mode(order.requested_mode, account.mode, gate)
    if not mode.allowed or mode.effective_mode is None:
        rejected = order.transition(OrderStatus.REJECTED, at, reason_code=mode.reason_code.value,
                                    reason_detail=mode.reason_detail)
        return Routed(rejected, Route.REJECTED)
    submitted = order.transition(OrderStatus.PENDING_SUBMIT, at, effective_mode=mode.effective_mode,
                                 reason_code=mode.reason_code.value)
    return Routed(submitted, Route.VENUE if mode.effective_mode is ExecutionMode.LIVE else Route.SIMULATE)


def admit(decision: RiskDecision, existing: Order | None, account: Account, gate: LiveGate | None,
          at: UtcDatetime) -> Routed | Duplicate:
    """`route(accept(decision, existing, at), account, gate, at)`, or `accept`'s rejected order as a REJECTED route
    when the gate denied, or the `Duplicate` `accept` answers: the same records, in one step. An approved order
    is built in the state `route` gives it (its first transition folded in: same status, version, mode and reason)
    rather than built new and then copied; a driver that publishes the new order calls `accept` and `route`."""
    intent = decision.intent
    if existing is not None:
        return _duplicate(existing, intent)
    if not decision.approved:
        order = new_order(intent, decision.reason_code.value, decision.reason_detail, at)
        return Routed(order.transition(OrderStatus.REJECTED, at), Route.REJECTED)
    mode = resolve_mode(intent.requested_mode, account.mode, gate)
    if not mode.allowed or mode.effective_mode is None:
        return route(new_order(intent, decision.reason_code.value, decision.reason_detail, at), account, gate, at)
    # What `route` makes of the new order: NEW -> PENDING_SUBMIT, its first transition (so version 1).
    submitted = new_order(intent, mode.reason_code.value, decision.reason_detail, at,
                          status=OrderStatus.PENDING_SUBMIT, version=1, effective_mode=mode.effective_mode)
    return Routed(submitted, Route.VENUE if mode.effective_mode is ExecutionMode.LIVE else Route.SIMULATE)


@dataclass(frozen=True)
class Execution:
    order: Order
    fills: tuple[Fill, ...] = field(default=())


def simulate(order: Order, instrument: Instrument, quote: Quote | None, model: FillModel, at: UtcDatetime, *,
             bar: Bar | None = None, book: OrderBook | None = None) -> Execution:
    """Execute a paper or shadow order against the quote: fill at the touch, or rest (open) until one crosses.
    With `bar` (the quote stands at its close) a resting limit is matched against the bar's range; with `book`
    the order walks its levels (see `FillModel.fills`)."""
    if order.effective_mode is None or order.effective_mode is ExecutionMode.LIVE:
        raise ValueError(f"order {order.order_id} is not a simulated order (mode {order.effective_mode})")
    fills = model.fills(order, instrument, quote, order.effective_mode, at, bar=bar, book=book) if quote else ()
    if not fills:
        if order.status in RESTING:
            return Execution(order)
        code = ReasonCode.NO_QUOTE_RESTING if quote is None else ReasonCode.NOT_MARKETABLE_RESTING
        return Execution(order.transition(OrderStatus.OPEN, at, venue_response={
            "simulated": True, "resting": True, "reason": code.value, "quote_seq": quote.seq if quote else None}))
    assert quote is not None
    for fill in fills[:-1]:
        order = order.with_fill(fill.quantity, fill.price, at)
    last = fills[-1]
    return Execution(order.with_fill(last.quantity, last.price, at, venue_response=_venue_response(fills, quote)),
                     fills)


def _venue_response(fills: tuple[Fill, ...], quote: Quote) -> dict[str, Any]:
    last = fills[-1]
    if len(fills) == 1:  # the common case, once per simulated order: one dict display, no summary to merge
        return {"simulated": True, "venue": last.venue, "venue_trade_id": last.venue_trade_id,
                "fill_price": str(last.price), "fill_quantity": str(last.quantity), "fee": str(last.fee),
                "quote_seq": quote.seq, "bid": str(quote.bid), "ask": str(quote.ask)}
    quantity = sum((f.quantity for f in fills), ZERO)
    average = sum((f.quantity * f.price for f in fills), ZERO) / quantity
    return {"simulated": True, "venue": last.venue, "venue_trade_ids": [f.venue_trade_id for f in fills],
            "fill_price": str(average), "fill_quantity": str(quantity), "fee": str(sum((f.fee for f in fills), ZERO)),
            "quote_seq": quote.seq, "bid": str(quote.bid), "ask": str(quote.ask)}



_PLACED_STATUS = {OrderStatus.FILLED: OrderStatus.FILLED, OrderStatus.CANCELLED: OrderStatus.CANCELLED,
                  OrderStatus.EXPIRED: OrderStatus.EXPIRED, OrderStatus.REJECTED: OrderStatus.REJECTED}


def placed(order: Order, result: PlaceResult, connector: str, at: UtcDatetime) -> Order:
    """The pending live order after the venue's answer. Whatever is working at the venue (new, pending, open,
    part-filled) is open here: quantities come only from fills (the fill poller), never from a status word.
    The answer is recorded as the connector returned it: `Connector.place_order` removed its secrets."""
    venue_response = {"connector": connector, "venue_order_id": result.venue_order_id,
                      "venue_status": result.status.value, "recovered": result.recovered,
                      "answer": result.venue_response}
    status = _PLACED_STATUS.get(result.status, OrderStatus.OPEN)
    if status is OrderStatus.FILLED:
        return order.transition(status, at, filled_quantity=order.quantity, venue_response=venue_response)
    if status is OrderStatus.REJECTED:
        return order.transition(status, at, reason_code=ReasonCode.VENUE_REJECTED.value,
                                reason_detail=f"venue status {result.status.value}", venue_response=venue_response)
    return order.transition(status, at, venue_response=venue_response)
