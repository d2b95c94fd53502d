from decimal import Decimal

import pytest
from pydantic import ValidationError

from core.orders import IllegalTransitionError, OrderStatus, new_order, order_id_for
from core.reasons import ReasonCode
from core.types import Side
from tests.kit.builders import T0, intent


def test_order_id_is_deterministic_in_account_strategy_and_key() -> None:
    assert order_id_for("a", "s", "k") == order_id_for("a", "s", "k")
    assert order_id_for("a", "s", "k") != order_id_for("a", "s", "k2")
    assert order_id_for("a", "s", "k") != order_id_for("b", "s", "k")
    # the separator keeps ("ab", "c") and ("a", "bc") apart
    assert order_id_for("ab", "c", "k") != order_id_for("a", "bc", "k")


def test_same_key_same_body_has_same_fingerprint_and_a_different_body_does_not() -> None:
    first = intent(quantity="1", key="k1")
    again = intent(quantity="1.0", key="k1")  # same amount, other spelling
    other = intent(quantity="2", key="k1")
    assert first.order_id == again.order_id == other.order_id
    assert first.fingerprint == again.fingerprint
    assert first.fingerprint != other.fingerprint


def test_float_quantity_is_refused() -> None:
    with pytest.raises(ValidationError, match="float is not accepted"):
        intent().model_copy(update={}).model_validate({**intent().model_dump(), "quantity": 1.5})


def test_limit_order_without_price_is_refused() -> None:
    data = intent(limit_price="100").model_dump()
    data["limit_price"] = None
    with pytest.raises(ValidationError, match="limit order needs limit_price"):
        type(intent()).model_validate(data)


def test_legal_lifecycle_to_filled() -> None:
    order = new_order(intent(quantity="3"), ReasonCode.APPROVED.value, "", T0)
    order = order.transition(OrderStatus.PENDING_SUBMIT, T0)
    order = order.transition(OrderStatus.OPEN, T0)
    order = order.with_fill(Decimal(1), Decimal(100), T0)
    assert order.status is OrderStatus.PARTIALLY_FILLED
    order = order.with_fill(Decimal(2), Decimal(103), T0)
    assert order.status is OrderStatus.FILLED
    assert order.average_fill_price == Decimal(102)
    assert order.version == 4


@pytest.mark.parametrize("terminal", [OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED,
                                      OrderStatus.EXPIRED])
def test_no_transition_leaves_a_terminal_state(terminal: OrderStatus) -> None:
    order = new_order(intent(), ReasonCode.APPROVED.value, "", T0).model_copy(update={"status": terminal})
    for status in OrderStatus:
        with pytest.raises(IllegalTransitionError):
            order.transition(status, T0)


def test_illegal_transition_is_refused_and_order_unchanged() -> None:
    order = new_order(intent(), ReasonCode.APPROVED.value, "", T0)
    with pytest.raises(IllegalTransitionError, match="new -> filled"):
        order.transition(OrderStatus.FILLED, T0)
    assert order.status is OrderStatus.NEW


def test_overfill_is_refused() -> None:
    order = new_order(intent(quantity="1", side=Side.SELL), ReasonCode.APPROVED.value, "", T0)
    order = order.transition(OrderStatus.PENDING_SUBMIT, T0)
    with pytest.raises(ValueError, match="exceeds remaining"):
        order.with_fill(Decimal(2), Decimal(1), T0)
