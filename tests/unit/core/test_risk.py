from decimal import Decimal

from core.reasons import ReasonCode
from core.risk import RiskContext, evaluate
from core.types import Side
from tests.kit.builders import T0, btc, es_future, intent, policy, quote


def ctx(position: str = "0", with_quote: bool = True, instrument: object = None) -> RiskContext:
    return RiskContext(instrument=instrument or btc(), position_quantity=Decimal(position),
                       quote=quote() if with_quote else None)


def test_within_limits_is_approved() -> None:
    decision = evaluate(intent(quantity="1"), ctx(), policy(), T0)
    assert decision.approved
    assert decision.reason_code is ReasonCode.APPROVED
    assert decision.policy_version == 1


def test_market_order_notional_uses_the_touch() -> None:
    decision = evaluate(intent(quantity="10"), ctx(), policy(max_notional="1000"), T0)
    assert not decision.approved
    assert decision.reason_code is ReasonCode.MAX_ORDER_NOTIONAL_EXCEEDED
    assert decision.reason_detail == "notional=1001.00 limit=1000"


def test_notional_counts_the_contract_multiplier() -> None:
    es = es_future()
    order = intent(quantity="1", instrument_id=es.instrument_id, limit_price="6000.00")
    decision = evaluate(order, RiskContext(instrument=es, position_quantity=Decimal(0), quote=None),
                        policy(max_notional="299999"), T0)
    assert decision.reason_code is ReasonCode.MAX_ORDER_NOTIONAL_EXCEEDED


def test_market_order_without_a_quote_is_denied() -> None:
    decision = evaluate(intent(), ctx(with_quote=False), policy(), T0)
    assert decision.reason_code is ReasonCode.NO_MARKET_PRICE


def test_position_limit_blocks_growth_but_not_reduction() -> None:
    grow = evaluate(intent(quantity="2", side=Side.BUY), ctx(position="9"), policy(max_position="10"), T0)
    assert grow.reason_code is ReasonCode.MAX_POSITION_EXCEEDED
    assert grow.reason_detail == "position_after=11 limit=10"
    reduce = evaluate(intent(quantity="2", side=Side.SELL), ctx(position="12"), policy(max_position="10"), T0)
    assert reduce.approved


def test_unknown_instrument_is_denied() -> None:
    decision = evaluate(intent(), RiskContext(instrument=None, position_quantity=Decimal(0), quote=None),
                        policy(), T0)
    assert decision.reason_code is ReasonCode.UNKNOWN_INSTRUMENT


def test_off_lot_quantity_and_off_tick_price_are_denied() -> None:
    assert evaluate(intent(quantity="0.00001"), ctx(), policy(), T0).reason_code is ReasonCode.QUANTITY_OFF_LOT
    off_tick = intent(quantity="1", limit_price="100.001")
    assert evaluate(off_tick, ctx(), policy(), T0).reason_code is ReasonCode.PRICE_OFF_TICK
