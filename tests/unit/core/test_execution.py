from decimal import Decimal

import pytest

from core.accounts import Account
from core.execution import Duplicate, Route, Routed, accept, admit, placed, route, simulate
from core.fill_model import FillModel
from core.modes import LiveGate
from core.orders import Order, OrderStatus, new_order
from core.reasons import ReasonCode
from core.risk import RiskDecision, evaluate
from core.types import ExecutionMode
from core.venue import PlaceResult
from tests.kit.builders import T0, account, btc, intent, policy, quote, risk_context


def test_accept_creates_a_new_order_and_refuses_a_second_for_the_same_key() -> None:
    decision = evaluate(intent(key="k"), risk_context(), policy(), T0)
    order = accept(decision, None, T0)
    assert not isinstance(order, Duplicate) and order.status is OrderStatus.NEW
    assert accept(decision, order, T0) is Duplicate.SAME_BODY
    other = evaluate(intent(key="k", quantity="2"), risk_context(), policy(), T0)
    assert accept(other, order, T0) is Duplicate.OTHER_BODY


def test_a_denied_decision_becomes_a_rejected_order_with_the_reason() -> None:
    decision = evaluate(intent(quantity="1000"), risk_context(), policy(max_notional="10"), T0)
    order = accept(decision, None, T0)
    assert not isinstance(order, Duplicate)
    assert (order.status, order.reason_code) == (OrderStatus.REJECTED, "MAX_ORDER_NOTIONAL_EXCEEDED")
    assert order.effective_mode is None and order.requested_mode is ExecutionMode.PAPER


def test_paper_order_is_routed_to_the_simulator_and_filled_at_the_touch() -> None:
    decision = evaluate(intent(quantity="1"), risk_context(), policy(), T0)
    order = accept(decision, None, T0)
    assert not isinstance(order, Duplicate)
    routed = route(order, account(), None, T0)
    assert routed.route is Route.SIMULATE
    assert (routed.order.effective_mode, routed.order.reason_code) == (ExecutionMode.PAPER, "PAPER_SIMULATED")
    execution = simulate(routed.order, btc(), quote(ask="100.10"), FillModel(), T0)
    assert execution.order.status is OrderStatus.FILLED
    assert execution.fills[0].price == Decimal("100.10")
    assert execution.order.venue_response is not None and execution.order.venue_response["simulated"] is True


def test_live_request_on_a_paper_account_is_rejected_with_its_reason() -> None:
    decision = evaluate(intent(mode=ExecutionMode.LIVE, acct=account(ExecutionMode.PAPER)),
                        risk_context(), policy(), T0)
    order = accept(decision, None, T0)
    assert not isinstance(order, Duplicate)
    routed = route(order, account(ExecutionMode.PAPER), None, T0)
    assert routed.route is Route.REJECTED
    assert routed.order.reason_code == ReasonCode.MODE_ACCOUNT_MISMATCH.value


def test_live_account_without_gate_never_reaches_the_venue_route() -> None:
    live = account(ExecutionMode.LIVE)
    decision = evaluate(intent(mode=ExecutionMode.LIVE, acct=live),
                        risk_context(), policy(), T0)
    order = accept(decision, None, T0)
    assert not isinstance(order, Duplicate)
    routed = route(order, live, None, T0)
    assert routed.route is Route.REJECTED and routed.order.reason_code == "LIVE_NOT_ENABLED"


def test_unmarketable_limit_rests_open_until_a_quote_crosses() -> None:
    decision = evaluate(intent(limit_price="99.00"), risk_context(), policy(), T0)
    order = accept(decision, None, T0)
    assert not isinstance(order, Duplicate)
    resting = simulate(route(order, account(), None, T0).order, btc(), quote(ask="100.10"), FillModel(), T0)
    assert resting.order.status is OrderStatus.OPEN and not resting.fills
    assert simulate(resting.order, btc(), quote(ask="100.00"), FillModel(), T0).order.status is OrderStatus.OPEN
    crossed = simulate(resting.order, btc(), quote(bid="98.50", ask="98.90"), FillModel(), T0)
    assert crossed.order.status is OrderStatus.FILLED and crossed.fills[0].price == Decimal("98.90")


def _accept_then_route(decision: RiskDecision, existing: Order | None, acct: Account,
                       gate: LiveGate | None) -> Routed | Duplicate:
    accepted = accept(decision, existing, T0)
    if isinstance(accepted, Duplicate):
        return accepted
    if accepted.status is OrderStatus.REJECTED:
        return Routed(accepted, Route.REJECTED)
    return route(accepted, acct, gate, T0)


_HEALTHY_GATE = LiveGate(live_enabled=True, risk_policy_loaded=True, kill_switch_healthy=True)


@pytest.mark.parametrize(("mode", "acct_mode", "gate", "quantity", "max_notional"), [
    (ExecutionMode.PAPER, ExecutionMode.PAPER, None, "1", "1000000"),  # approved, simulated
    (ExecutionMode.SHADOW, ExecutionMode.SHADOW, None, "1", "1000000"),  # approved, shadow-simulated
    (ExecutionMode.PAPER, ExecutionMode.PAPER, None, "1000", "10"),  # denied by the risk gate
    (ExecutionMode.LIVE, ExecutionMode.PAPER, None, "1", "1000000"),  # mode mismatch
    (ExecutionMode.LIVE, ExecutionMode.LIVE, None, "1", "1000000"),  # live without its gate
    (ExecutionMode.LIVE, ExecutionMode.LIVE, _HEALTHY_GATE, "1", "1000000"),  # live through the gate
])
def test_admit_gives_exactly_what_accept_then_route_give(mode: ExecutionMode, acct_mode: ExecutionMode,
                                                         gate: LiveGate | None, quantity: str,
                                                         max_notional: str) -> None:
    acct = account(acct_mode)
    decision = evaluate(intent(mode=mode, acct=acct, quantity=quantity), risk_context(),
                        policy(max_notional=max_notional), T0)
    admitted = admit(decision, None, acct, gate, T0)
    expected = _accept_then_route(decision, None, acct, gate)
    assert isinstance(admitted, Routed) and isinstance(expected, Routed)
    assert admitted.route is expected.route
    assert admitted.order == expected.order
    assert admitted.order.model_dump_json() == expected.order.model_dump_json()


def test_admit_answers_a_duplicate_as_accept_does() -> None:
    decision = evaluate(intent(key="k"), risk_context(), policy(), T0)
    first = accept(decision, None, T0)
    assert not isinstance(first, Duplicate)
    assert admit(decision, first, account(), None, T0) is Duplicate.SAME_BODY
    other = evaluate(intent(key="k", quantity="2"), risk_context(), policy(), T0)
    assert admit(other, first, account(), None, T0) is Duplicate.OTHER_BODY


@pytest.mark.parametrize(("venue_status", "status"), [
    (OrderStatus.OPEN, OrderStatus.OPEN), (OrderStatus.PENDING_SUBMIT, OrderStatus.OPEN),
    (OrderStatus.PARTIALLY_FILLED, OrderStatus.OPEN), (OrderStatus.FILLED, OrderStatus.FILLED),
    (OrderStatus.CANCELLED, OrderStatus.CANCELLED), (OrderStatus.EXPIRED, OrderStatus.EXPIRED),
    (OrderStatus.REJECTED, OrderStatus.REJECTED),
])
def test_a_venue_answer_places_the_order_in_the_matching_state(venue_status: OrderStatus,
                                                                status: OrderStatus) -> None:
    live = account(ExecutionMode.LIVE, account_id="live-1")
    order = new_order(intent(quantity="2", limit_price="100.00", mode=ExecutionMode.LIVE, acct=live),
                      "APPROVED", "", T0).transition(OrderStatus.PENDING_SUBMIT, T0, effective_mode=ExecutionMode.LIVE)
    result = PlaceResult(venue_order_id="v-1", client_order_id=order.client_order_id, status=venue_status,
                         recovered=True, venue_response={"order_id": "v-1"})
    after = placed(order, result, "coinbase", T0)
    assert after.status is status
    assert after.venue_response == {"connector": "coinbase", "venue_order_id": "v-1",
                                    "venue_status": venue_status.value, "recovered": True,
                                    "answer": {"order_id": "v-1"}}
    # Quantities come from fills only; a venue that says filled at once filled all of it.
    assert after.filled_quantity == (order.quantity if status is OrderStatus.FILLED else 0)
    assert after.reason_code == ("VENUE_REJECTED" if status is OrderStatus.REJECTED else "APPROVED")
