import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from api.schemas.orders import OrderCreate
from api.schemas.quotes import QuotePublic
from core.types import ExecutionMode

BODY: dict[str, Any] = {"account_id": "acct-1", "instrument_id": "crypto_spot:BTC-USD", "side": "buy",
                        "order_type": "market", "quantity": "0.5"}


@pytest.mark.parametrize("text", ["0.5", "100", "0.000000000000000001", "12345678901234567890.5"])
def test_order_create_when_quantity_is_a_decimal_string_then_exact_decimal(text: str) -> None:
    assert OrderCreate.model_validate({**BODY, "quantity": text}).quantity == Decimal(text)


@pytest.mark.parametrize("value", [0.5, 1, True, "1e3", "NaN", "Infinity", "-1", "", " 1", "1.", ".5", "1,5"])
def test_order_create_when_quantity_is_not_a_plain_decimal_string_then_refused(value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        OrderCreate.model_validate({**BODY, "quantity": value})

    assert [e["loc"] for e in raised.value.errors()] == [("quantity",)]


def test_order_create_when_float_then_reason_says_send_a_string() -> None:
    with pytest.raises(ValidationError, match=re.escape('must be a decimal string such as "0.5", not a JSON float')):
        OrderCreate.model_validate_json('{"account_id": "acct-1", "instrument_id": "i", "side": "buy", '
                                        '"order_type": "market", "quantity": 0.5}')


def test_order_create_when_unknown_field_then_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        OrderCreate.model_validate({**BODY, "price": "1"})


def test_order_create_defaults_to_the_api_strategy_and_no_mode() -> None:
    body = OrderCreate.model_validate(BODY)

    assert body.strategy_id == "api"
    assert body.mode is None
    assert OrderCreate.model_validate({**BODY, "mode": "shadow"}).mode is ExecutionMode.SHADOW


def test_public_decimals_serialize_as_strings_never_floats() -> None:
    quote = QuotePublic(instrument_id="i", bid=Decimal("100.10"), ask=Decimal("100.20"), bid_size=Decimal("0.5"),
                        ask_size=Decimal(3), ts=datetime(2026, 1, 5, tzinfo=UTC), seq=1)

    dumped = quote.model_dump(mode="json")

    assert (dumped["bid"], dumped["ask"], dumped["bid_size"], dumped["ask_size"]) == ("100.10", "100.20", "0.5", "3")
