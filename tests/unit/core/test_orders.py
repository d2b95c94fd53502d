from datetime import timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.accounts import Account, Owner
from core.orders import (
    IllegalTransitionError,
    IntentSource,
    OrderIntent,
    OrderStatus,
    new_order,
    order_id_for,
    strategy_intent,
)
from core.reasons import ReasonCode
from core.types import ExecutionMode, OrderType, Side, TimeInForce
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


# --- strategy_intent: the unvalidated path returns exactly what validation would --------------------------------

_ANYTHING = st.one_of(st.none(), st.integers(-2, 2), st.floats(allow_nan=True), st.text(max_size=3), st.booleans())
_DECIMALS = st.one_of(st.decimals(allow_nan=True, allow_infinity=True, places=3),
                      st.sampled_from([Decimal("-0"), Decimal("sNaN"), Decimal("-1E+3")]))
_POSITIVE = st.one_of(st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**9), places=3),
                      st.sampled_from([Decimal("1.50"), Decimal("1E+3"), Decimal("0.0078125")]))
_VALID = {
    "trace_id": st.sampled_from(["0" * 32, "0123456789abcdef" * 2]),
    "strategy_id": st.sampled_from(["sma", "s.v-2", "X" * 64]),
    "idempotency_key": st.one_of(st.text(min_size=1, max_size=8), st.just("k" * 255)),
    "instrument_id": st.text(min_size=1, max_size=8),
    "side": st.sampled_from(list(Side)),
    "order_type": st.just(OrderType.MARKET),
    "quantity": _POSITIVE,
    "limit_price": st.none(),
    "time_in_force": st.sampled_from(list(TimeInForce)),
    "created_at": st.just(T0),
}
"""Arguments that validate unchanged (a limit order: `order_type` LIMIT with a positive `limit_price`, below)."""
_OTHER = {
    "trace_id": st.one_of(st.sampled_from(["A" * 32, "a" * 32 + "\n", "a" * 31]), _ANYTHING),
    "strategy_id": st.one_of(st.sampled_from(["-bad", "sma\n", "", "x" * 65]), _ANYTHING),
    "idempotency_key": st.one_of(st.sampled_from(["", "k" * 256, "k\n"]), _ANYTHING),
    "instrument_id": st.one_of(st.just(""), _ANYTHING),
    "side": st.one_of(st.sampled_from([member.value for member in Side]), _ANYTHING),
    "order_type": st.one_of(st.sampled_from([OrderType.LIMIT, "market"]), _ANYTHING),
    "quantity": st.one_of(_DECIMALS, _ANYTHING),
    "limit_price": st.one_of(_DECIMALS, _ANYTHING),
    "time_in_force": st.one_of(st.sampled_from([member.value for member in TimeInForce]), _ANYTHING),
    "created_at": st.sampled_from([T0.replace(tzinfo=None), T0.astimezone(timezone(timedelta(hours=2))),
                                   T0.replace(tzinfo=ZoneInfo("UTC"))]),
}
"""For each argument, values that validation refuses or converts."""


@st.composite
def _arguments(draw: st.DrawFn) -> dict[str, Any]:
    """Valid arguments, a limit order's, or valid ones with one replaced by a value validation refuses or converts."""
    arguments = {name: draw(values) for name, values in _VALID.items()}
    if draw(st.booleans()):
        arguments.update(order_type=OrderType.LIMIT, limit_price=draw(_POSITIVE))
    changed = draw(st.sampled_from([None, *_OTHER]))
    if changed is not None:
        arguments[changed] = draw(_OTHER[changed])
    return arguments


_BOUNDARIES = [
    ("trace_id", "A" * 32), ("trace_id", "a" * 32 + "\n"), ("trace_id", "a" * 31), ("trace_id", "a" * 33),
    ("strategy_id", "-bad"), ("strategy_id", "sma\n"), ("strategy_id", ""), ("strategy_id", "x" * 65),
    ("idempotency_key", ""), ("idempotency_key", "k" * 256), ("idempotency_key", "k" * 255),
    ("instrument_id", ""), ("side", "buy"), ("order_type", "market"), ("order_type", OrderType.LIMIT),
    ("quantity", Decimal(0)), ("quantity", Decimal("-0")), ("quantity", Decimal("NaN")), ("quantity", Decimal("sNaN")),
    ("quantity", Decimal("Infinity")), ("quantity", 1), ("quantity", 1.5), ("quantity", "1"),
    ("limit_price", Decimal(1)), ("time_in_force", "gtc"),
    ("created_at", T0.replace(tzinfo=None)), ("created_at", T0.astimezone(timezone(timedelta(hours=2)))),
    ("created_at", T0.replace(tzinfo=ZoneInfo("UTC"))),
]
"""Each a value just outside (or on) a constraint, put into otherwise valid market-order arguments."""


def _same_as_validation(arguments: dict[str, Any]) -> None:
    owner = Owner(org_id="org", user_id="u")
    account = Account(account_id="acct", owner=owner, mode=ExecutionMode.PAPER)
    try:
        validated: OrderIntent | None = OrderIntent.model_validate({
            **arguments, "account_id": "acct", "owner": owner, "requested_mode": ExecutionMode.PAPER,
            "source": IntentSource.STRATEGY})
    except ValidationError:
        validated = None
    try:
        made: OrderIntent | None = strategy_intent(account=account, **arguments)
    except ValidationError:
        made = None
    assert (made is None) == (validated is None)
    if made is not None and validated is not None:
        assert made == validated
        assert made.model_dump_json() == validated.model_dump_json()
        assert {name: type(value) for name, value in made} == {name: type(value) for name, value in validated}


@settings(max_examples=800, deadline=None)
@given(arguments=_arguments())
def test_strategy_intent_is_what_validation_makes_of_the_same_arguments(arguments: dict[str, Any]) -> None:
    _same_as_validation(arguments)


@pytest.mark.parametrize(("field", "value"), _BOUNDARIES)
def test_strategy_intent_at_each_constraints_edge(field: str, value: Any) -> None:
    _same_as_validation({"trace_id": "0" * 32, "strategy_id": "sma", "idempotency_key": "k", "instrument_id": "SIM:X",
                         "side": Side.BUY, "order_type": OrderType.MARKET, "quantity": Decimal(1), "limit_price": None,
                         "time_in_force": TimeInForce.GTC, "created_at": T0, field: value})


def test_strategy_intent_assembles_plain_arguments_without_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(OrderIntent, "model_validate", classmethod(lambda cls, values: calls.append(values)))
    made = strategy_intent(trace_id="f" * 32, account=Account(account_id="acct", owner=Owner(org_id="o", user_id="u"),
                                                             mode=ExecutionMode.PAPER),
                           strategy_id="sma", idempotency_key="k", instrument_id="SIM:X", side=Side.BUY,
                           order_type=OrderType.MARKET, quantity=Decimal(1), limit_price=None,
                           time_in_force=TimeInForce.GTC, created_at=T0)
    assert calls == [] and made.quantity == Decimal(1) and made.requested_mode is ExecutionMode.PAPER
