from decimal import Decimal

import pytest
from pydantic import BaseModel

from core.fill_model import FillModel
from core.fills import Fill
from core.ledger import Ledger
from core.orders import Order, OrderStatus, new_order
from core.trusted import builder, evolve
from core.types import ExecutionMode
from tests.kit.builders import OWNER, T0, btc, intent, quote


def test_trusted_order_equals_the_validated_one_and_serialises_the_same() -> None:
    order = new_order(intent(), "APPROVED", "", T0)
    validated = Order(**dict(order))
    assert order == validated
    assert order.model_dump_json() == validated.model_dump_json()


def test_trusted_fill_from_the_fill_model_equals_the_validated_one() -> None:
    order = new_order(intent(), "APPROVED", "", T0).transition(OrderStatus.PENDING_SUBMIT, T0)
    fill = FillModel().match(order, btc(), quote(), ExecutionMode.PAPER, T0)
    assert fill is not None
    assert fill == Fill(**dict(fill)) and fill.model_dump_json() == Fill(**dict(fill)).model_dump_json()


def test_a_builder_fills_defaults_and_default_factories() -> None:
    build = builder(Ledger)
    ledger = build(account_id="a", owner=OWNER, mode=ExecutionMode.PAPER, cash=Decimal(5))
    assert ledger == Ledger(account_id="a", owner=OWNER, mode=ExecutionMode.PAPER, cash=Decimal(5))
    other = build(account_id="b", owner=OWNER, mode=ExecutionMode.PAPER, cash=Decimal(5))
    assert ledger.positions is not other.positions  # a fresh dict each time, as the factory gives


def test_evolve_equals_model_copy_and_keeps_the_original() -> None:
    order = new_order(intent(), "APPROVED", "", T0)
    changed = evolve(order, status=OrderStatus.REJECTED, version=1)
    assert changed == order.model_copy(update={"status": OrderStatus.REJECTED, "version": 1})
    assert order.status is OrderStatus.NEW
    assert changed.model_copy(update={"version": 2}).version == 2  # pydantic's own copy still works on it


def test_unknown_or_missing_fields_raise() -> None:
    build = builder(Ledger)
    with pytest.raises(TypeError, match="missing 3 required keyword-only arguments"):
        build(account_id="a")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        build(account_id="a", owner=OWNER, mode=ExecutionMode.PAPER, cash=Decimal(5), colour="red")
    with pytest.raises(TypeError, match="unknown fields"):
        evolve(new_order(intent(), "APPROVED", "", T0), colour="red")


def test_only_frozen_records_are_built_without_validation() -> None:
    class Mutable(BaseModel):
        x: int

    with pytest.raises(TypeError, match="frozen records only"):
        builder(Mutable)


def test_a_builder_keeps_the_field_order_validation_gives() -> None:
    ledger = builder(Ledger)(account_id="a", owner=OWNER, mode=ExecutionMode.PAPER, cash=Decimal(5))
    assert list(ledger.__dict__) == list(Ledger.model_fields)
    assert ledger.model_dump_json() == Ledger(account_id="a", owner=OWNER, mode=ExecutionMode.PAPER,
                                              cash=Decimal(5)).model_dump_json()


def test_a_transition_refuses_to_be_handed_the_fields_it_sets_itself() -> None:
    order = new_order(intent(), "APPROVED", "", T0)
    with pytest.raises(TypeError, match="sets status, updated_at and version itself"):
        order.transition(OrderStatus.PENDING_SUBMIT, T0, version=7)
    assert order.transition(OrderStatus.PENDING_SUBMIT, T0, reason_code="X").version == 1
