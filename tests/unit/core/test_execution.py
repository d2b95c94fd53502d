from decimal import Decimal

from core.execution import Duplicate, Route, accept, route, simulate
from core.fill_model import FillModel
from core.orders import OrderStatus
from core.reasons import ReasonCode
from core.risk import evaluate
from core.types import ExecutionMode
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
