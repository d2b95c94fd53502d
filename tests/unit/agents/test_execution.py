"""The execution router with a recording connector: who may write, what one write looks like, and what happens
when the venue refuses, cannot, or does not answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from agents.execution import MARKET_REUSE_WINDOW, ExecutionRouter
from connectors.errors import (
    DuplicateClientOrderIdError,
    MalformedResponseError,
    OrderRejectedError,
    UnsupportedError,
    VenueServerError,
    VenueUnavailableError,
)
from connectors.registry import ConnectorRegistry
from core.accounts import Account
from core.fill_model import FillModel
from core.orders import Order, OrderStatus, new_order
from core.reasons import ReasonCode
from core.types import ExecutionMode, Liquidity, Side
from core.venue import VenueFill, VenueOrder
from tests.kit.builders import T0, intent, quote
from tests.unit.agents.fakes import LIVE, PAPER, SHADOW, FakeConnector, FakeKit, MemoryVenueState, registry_with

VENUE = FakeConnector.venue


def new(acct: Account, quantity: str = "1", limit_price: str | None = "100.00") -> Order:
    return new_order(intent(quantity=quantity, limit_price=limit_price, mode=acct.mode, acct=acct), "APPROVED", "",
                     T0)


def router(connector: FakeConnector | None = None, *, live_enabled: bool = True,
           state: MemoryVenueState | None = None) -> ExecutionRouter:
    registry = registry_with(connector) if connector else ConnectorRegistry(())
    return ExecutionRouter(FakeKit(live_enabled=live_enabled).as_kit(), FillModel(), registry,
                           state or MemoryVenueState())


async def test_live_order_when_the_gate_passes_then_one_authorized_write_and_open() -> None:
    connector, state = FakeConnector(), MemoryVenueState()
    order = new(LIVE)
    execution = await router(connector, state=state).execute(order)
    assert len(connector.placed) == 1
    _, authorization = connector.placed[0]
    assert (authorization.order_id, authorization.client_order_id, authorization.effective_mode) == \
        (order.order_id, order.client_order_id, ExecutionMode.LIVE)
    placed = execution.order
    assert (placed.status, placed.effective_mode, placed.reason_code) == \
        (OrderStatus.OPEN, ExecutionMode.LIVE, ReasonCode.LIVE_GATE_PASSED.value)
    assert placed.venue_response is not None and placed.venue_response["venue_order_id"] == f"v-{order.order_id}"
    assert placed.venue_response["answer"] == {"token": "***", "ok": True}  # secrets never recorded
    assert execution.fills == ()  # live fills come from the venue, through the fill poller
    assert f"v:v-{order.order_id}" in state.refs["coinbase"]


async def test_live_order_when_the_gate_fails_then_rejected_and_nothing_sent() -> None:
    connector = FakeConnector()
    execution = await router(connector, live_enabled=False).execute(new(LIVE))
    assert (execution.order.status, execution.order.reason_code) == (OrderStatus.REJECTED, "LIVE_NOT_ENABLED")
    assert connector.placed == []


async def test_live_or_shadow_order_without_a_connector_then_connector_unavailable() -> None:
    for acct in (LIVE, SHADOW):
        execution = await router().execute(new(acct))
        assert (execution.order.status, execution.order.reason_code) == \
            (OrderStatus.REJECTED, ReasonCode.CONNECTOR_UNAVAILABLE.value)


@pytest.mark.parametrize(("error", "code"), [
    (OrderRejectedError(VENUE, "insufficient funds"), ReasonCode.VENUE_REJECTED),
    (UnsupportedError(VENUE, "time in force day"), ReasonCode.VENUE_UNSUPPORTED),
])
async def test_live_order_the_venue_refuses_then_rejected_with_its_reason(error: Exception, code: ReasonCode) -> None:
    connector = FakeConnector()
    connector.place_outcome = error
    order = (await router(connector).execute(new(LIVE))).order
    assert (order.status, order.reason_code) == (OrderStatus.REJECTED, code.value)
    assert str(error) in order.reason_detail


@pytest.mark.parametrize("error", [
    VenueServerError(VENUE, "HTTP 503 after every retry"),
    VenueUnavailableError(VENUE, "ReadTimeout"),
    DuplicateClientOrderIdError(VENUE, "id taken, order not found"),
    MalformedResponseError(VENUE, "not JSON", raw_body="<html>"),
])
async def test_live_order_without_an_answer_then_pending_with_outcome_unknown(error: Exception) -> None:
    connector = FakeConnector()
    connector.place_outcome = error
    order = (await router(connector).execute(new(LIVE))).order
    assert (order.status, order.reason_code) == (OrderStatus.PENDING_SUBMIT, ReasonCode.VENUE_OUTCOME_UNKNOWN.value)
    assert len(connector.placed) == 1  # never sent again, never called rejected


async def test_unknown_outcome_when_the_venue_lists_the_order_then_open_and_never_sent_twice() -> None:
    connector, state = FakeConnector(), MemoryVenueState()
    connector.place_outcome = VenueUnavailableError(VENUE, "ReadTimeout")
    live = router(connector, state=state)
    pending = (await live.execute(new(LIVE))).order
    assert (await live.match_resting(pending)).order is pending  # not listed yet: still unknown
    connector.listed = [VenueOrder(venue_order_id="v-9", client_order_id=pending.client_order_id,
                                   instrument_id=pending.instrument_id, side=pending.side, quantity=pending.quantity,
                                   filled_quantity=Decimal(0), limit_price=pending.limit_price,
                                   status=OrderStatus.OPEN, venue_status="OPEN")]
    resolved = (await live.match_resting(pending)).order
    assert (resolved.status, resolved.reason_code) == (OrderStatus.OPEN, ReasonCode.VENUE_OUTCOME_RESOLVED.value)
    assert resolved.venue_response is not None and resolved.venue_response["venue_order_id"] == "v-9"
    assert "v:v-9" in state.refs["coinbase"] and len(connector.placed) == 1


async def test_cancel_of_an_order_whose_outcome_is_unknown_is_deferred_not_guessed() -> None:
    connector = FakeConnector()
    connector.place_outcome = VenueServerError(VENUE, "503")
    live = router(connector)
    pending = (await live.execute(new(LIVE))).order
    assert await live.cancel(pending, ReasonCode.CANCELLED_BY_USER, "") is None
    assert connector.cancelled == []


def venue_fill(order: Order, trade_id: str, quantity: str, price: str = "99.00") -> VenueFill:
    return VenueFill(venue=VENUE, venue_trade_id=trade_id, venue_order_id=f"v-{order.order_id}",
                     client_order_id=None, instrument_id=order.instrument_id, side=Side.BUY,
                     quantity=Decimal(quantity), price=Decimal(price), fee=Decimal("0.01"),
                     liquidity=Liquidity.MAKER, ts=T0)


async def test_venue_fills_found_by_the_poller_move_a_live_order_once_each() -> None:
    connector, state = FakeConnector(), MemoryVenueState()
    live = router(connector, state=state)
    order = (await live.execute(new(LIVE, quantity="2"))).order
    await state.record_fill(order.order_id, venue_fill(order, "t1", "1"))
    part = (await live.match_resting(order)).order
    assert (part.status, part.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, Decimal(1))
    assert (await live.match_resting(part)).order is part  # the same trade is not counted twice
    await state.record_fill(order.order_id, venue_fill(order, "t2", "1", "98.00"))
    done = (await live.match_resting(part)).order
    assert (done.status, done.filled_quantity, done.average_fill_price) == \
        (OrderStatus.FILLED, Decimal(2), Decimal("98.50"))


async def test_live_cancel_is_an_authorized_venue_cancel() -> None:
    connector = FakeConnector()
    live = router(connector)
    order = (await live.execute(new(LIVE))).order
    execution = await live.cancel(order, ReasonCode.CANCELLED_BY_USER, "actor=ops")
    assert execution is not None and execution.order.status is OrderStatus.CANCELLED
    (_, venue_order_id, authorization), = connector.cancelled
    assert (venue_order_id, authorization.order_id, authorization.effective_mode) == \
        (f"v-{order.order_id}", order.order_id, ExecutionMode.LIVE)


async def test_live_cancel_refused_by_the_venue_leaves_the_order_working_with_the_reason() -> None:
    connector = FakeConnector()
    live = router(connector)
    order = (await live.execute(new(LIVE))).order
    connector.cancel_outcome = OrderRejectedError(VENUE, "order already filled")
    refused = await live.cancel(order, ReasonCode.CANCELLED_BY_USER, "")
    assert refused is not None
    assert (refused.order.status, refused.order.reason_code) == \
        (OrderStatus.OPEN, ReasonCode.VENUE_CANCEL_REJECTED.value)


async def test_live_cancel_without_an_answer_stays_pending_cancel_and_is_sent_again() -> None:
    connector = FakeConnector()
    live = router(connector)
    order = (await live.execute(new(LIVE))).order
    connector.cancel_outcome = VenueUnavailableError(VENUE, "ReadTimeout")
    pending = await live.cancel(order, ReasonCode.CANCELLED_BY_USER, "")
    assert pending is not None and pending.order.status is OrderStatus.PENDING_CANCEL
    connector.cancel_outcome = None
    assert (await live.match_resting(pending.order)).order.status is OrderStatus.CANCELLED
    assert len(connector.cancelled) == 2


async def test_shadow_order_before_its_ledger_is_seeded_then_refused() -> None:
    execution = await router(FakeConnector()).execute(new(SHADOW))
    assert (execution.order.status, execution.order.reason_code) == \
        (OrderStatus.REJECTED, ReasonCode.SHADOW_NOT_SEEDED.value)


async def test_shadow_order_walks_the_venues_book_and_never_writes() -> None:
    connector, state = FakeConnector(), MemoryVenueState()
    state.seeded_accounts.add(SHADOW.account_id)
    execution = await router(connector, state=state).execute(new(SHADOW, quantity="0.7", limit_price=None))
    assert (execution.order.status, execution.order.effective_mode) == (OrderStatus.FILLED, ExecutionMode.SHADOW)
    assert [(f.quantity, f.price) for f in execution.fills] == \
        [(Decimal("0.5"), Decimal("100.10")), (Decimal("0.2"), Decimal("100.11"))]
    assert connector.placed == [] and connector.cancelled == []


async def test_shadow_order_when_the_book_cannot_be_read_is_simulated_at_the_quote() -> None:
    connector, state = FakeConnector(), MemoryVenueState()
    connector.failing_reads.add("order_book")
    state.seeded_accounts.add(SHADOW.account_id)
    execution = await router(connector, state=state).execute(new(SHADOW, limit_price=None))
    assert [f.price for f in execution.fills] == [Decimal("100.10")]
    assert connector.placed == []


async def test_paper_order_never_reaches_a_connector() -> None:
    connector = FakeConnector()
    execution = await router(connector).execute(new(PAPER, limit_price=None))
    assert execution.order.status is OrderStatus.FILLED
    assert connector.placed == [] and connector.cancelled == []


async def test_paper_order_executes_against_the_market_the_gate_judged_it_on() -> None:
    judged = quote(bid="99.00", ask="99.05", seq=7, ts=datetime.now(UTC))
    execution = await router().execute(new(PAPER, limit_price=None), judged, datetime.now(UTC))
    assert [f.price for f in execution.fills] == [Decimal("99.05")]  # not the market view's 100.10
    assert execution.order.venue_response is not None and execution.order.venue_response["quote_seq"] == 7


async def test_a_decision_that_waited_executes_against_the_freshest_market() -> None:
    judged_at = datetime.now(UTC) - MARKET_REUSE_WINDOW - timedelta(milliseconds=1)
    old = quote(bid="99.00", ask="99.05", seq=7, ts=judged_at)
    kit = FakeKit(quote=quote(seq=8, ts=datetime.now(UTC)))
    waited = ExecutionRouter(kit.as_kit(), FillModel(), ConnectorRegistry(()), MemoryVenueState())
    execution = await waited.execute(new(PAPER, limit_price=None), old, judged_at)
    assert [f.price for f in execution.fills] == [Decimal("100.10")]
