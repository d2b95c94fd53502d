from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from api.intake import build_intent
from api.schemas.orders import OrderCreate
from core.clock import ManualClock
from core.orders import IntentSource, order_id_for
from core.types import ExecutionMode
from tests.kit.builders import T0, account

ACCOUNT = account(ExecutionMode.PAPER)


def _body(**overrides: Any) -> OrderCreate:
    return OrderCreate.model_validate({"account_id": ACCOUNT.account_id, "instrument_id": "crypto_spot:BTC-USD",
                                       "side": "sell", "order_type": "limit", "quantity": "2",
                                       "limit_price": "101.5", **overrides})


def test_build_intent_when_no_mode_then_the_accounts_mode_and_owner() -> None:
    intent = build_intent(_body(), ACCOUNT, "key-1", ManualClock(T0))

    assert intent.requested_mode is ExecutionMode.PAPER
    assert intent.owner == ACCOUNT.owner
    assert intent.source is IntentSource.API
    assert intent.created_at == T0
    assert intent.order_id == order_id_for(ACCOUNT.account_id, "api", "key-1")
    assert (intent.quantity, intent.limit_price) == (Decimal(2), Decimal("101.5"))


def test_build_intent_when_mode_asked_then_kept_for_the_risk_gate_to_judge() -> None:
    intent = build_intent(_body(mode="live"), ACCOUNT, "key-1", ManualClock(T0))

    assert intent.requested_mode is ExecutionMode.LIVE


def test_build_intent_mints_a_fresh_trace_id_each_time() -> None:
    first, second = (build_intent(_body(), ACCOUNT, "key-1", ManualClock(T0)) for _ in range(2))

    assert first.trace_id != second.trace_id
    assert len(first.trace_id) == 32
    assert first.fingerprint == second.fingerprint


def test_build_intent_when_same_amount_spelled_differently_then_same_fingerprint() -> None:
    plain = build_intent(_body(quantity="2"), ACCOUNT, "k", ManualClock(T0))
    padded = build_intent(_body(quantity="2.000"), ACCOUNT, "k", ManualClock(T0))

    assert plain.fingerprint == padded.fingerprint


@pytest.mark.parametrize("overrides", [{"limit_price": None}, {"order_type": "market"}, {"quantity": "0"}])
def test_build_intent_when_body_breaks_an_order_rule_then_validation_error(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        build_intent(_body(**overrides), ACCOUNT, "key-1", ManualClock(T0))
