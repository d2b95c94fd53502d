from datetime import timedelta
from decimal import Decimal

import pytest

from core.control import TradingState
from core.instruments import AssetClass
from core.reasons import ReasonCode
from core.risk import OrderRateWindow, RiskPolicy, drawdown_state, evaluate, freshest
from core.seal import is_sealed, seal
from core.types import Side
from tests.kit.builders import T0, btc, es_future, intent, policy, quote, risk_context

ctx = risk_context


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
    decision = evaluate(order, ctx(with_quote=False, instrument=es), policy(max_notional="299999"), T0)
    assert decision.reason_code is ReasonCode.MAX_ORDER_NOTIONAL_EXCEEDED


def test_market_order_without_a_quote_is_denied() -> None:
    assert evaluate(intent(), ctx(with_quote=False), policy(), T0).reason_code is ReasonCode.NO_MARKET_PRICE


def test_position_limit_blocks_growth_but_not_reduction() -> None:
    grow = evaluate(intent(quantity="2", side=Side.BUY), ctx(position="9"), policy(max_position="10"), T0)
    assert grow.reason_code is ReasonCode.MAX_POSITION_EXCEEDED
    assert grow.reason_detail == "position_after=11 limit=10"
    reduce = evaluate(intent(quantity="2", side=Side.SELL), ctx(position="12"), policy(max_position="10"), T0)
    assert reduce.approved


def test_unknown_instrument_is_denied() -> None:
    assert evaluate(intent(), ctx(instrument=None), policy(), T0).reason_code is ReasonCode.UNKNOWN_INSTRUMENT


def test_submit_when_instrument_not_tradeable_then_denied_with_the_venue_status() -> None:
    closed = btc(tradeable=False, status="trading_disabled")
    decision = evaluate(intent(), ctx(instrument=closed), policy(), T0)
    assert decision.reason_code is ReasonCode.INSTRUMENT_NOT_TRADEABLE
    assert decision.reason_detail == "instrument=crypto_spot:BTC-USD status=trading_disabled"


def test_submit_at_or_after_expiry_then_denied_as_not_tradeable_and_before_it_approved() -> None:
    expiring = btc(expiry=T0 + timedelta(minutes=1))
    assert evaluate(intent(), ctx(instrument=expiring), policy(), T0).approved
    late = evaluate(intent(), ctx(instrument=expiring), policy(), T0 + timedelta(minutes=1))
    assert late.reason_code is ReasonCode.INSTRUMENT_NOT_TRADEABLE
    assert late.reason_detail == "instrument=crypto_spot:BTC-USD status=expired expiry=2026-01-05T14:31:00+00:00"


def test_off_lot_quantity_and_off_tick_price_are_denied() -> None:
    assert evaluate(intent(quantity="0.00001"), ctx(), policy(), T0).reason_code is ReasonCode.QUANTITY_OFF_LOT
    off_tick = intent(quantity="1", limit_price="100.001")
    assert evaluate(off_tick, ctx(), policy(), T0).reason_code is ReasonCode.PRICE_OFF_TICK


def test_fat_finger_limit_price_outside_the_band_is_denied() -> None:
    wide = policy().model_copy(update={"price_band_bps": Decimal(100)})
    inside = evaluate(intent(limit_price="100.95"), ctx(), wide, T0)
    assert inside.approved
    outside = evaluate(intent(limit_price="110.00"), ctx(), wide, T0)
    assert outside.reason_code is ReasonCode.PRICE_OUTSIDE_BAND
    assert "limit_bps=100" in outside.reason_detail


def test_stale_quote_is_denied() -> None:
    strict = policy().model_copy(update={"max_quote_age_s": Decimal(5)})
    assert evaluate(intent(), ctx(), strict, T0 + timedelta(seconds=5)).approved
    late = evaluate(intent(), ctx(), strict, T0 + timedelta(seconds=6))
    assert late.reason_code is ReasonCode.STALE_QUOTE


def test_concentration_leverage_and_asset_class_caps() -> None:
    capped = policy().model_copy(update={"max_concentration": Decimal("0.1")})
    assert evaluate(intent(quantity="200"), ctx(equity=Decimal(100_000)), capped,
                    T0).reason_code is ReasonCode.CONCENTRATION_EXCEEDED
    levered = policy().model_copy(update={"max_gross_leverage": Decimal(2)})
    assert evaluate(intent(quantity="6"), ctx(equity=Decimal(1_000), gross_exposure=Decimal(1_500)), levered,
                    T0).reason_code is ReasonCode.MAX_LEVERAGE_EXCEEDED
    class_cap = policy().model_copy(update={"asset_class_caps": {AssetClass.CRYPTO_SPOT: Decimal(5_000)}})
    denied = evaluate(intent(quantity="10"), ctx(asset_class_exposure={AssetClass.CRYPTO_SPOT: Decimal(4_500)}),
                      class_cap, T0)
    assert denied.reason_code is ReasonCode.ASSET_CLASS_CAP_EXCEEDED


def test_reducing_orders_pass_portfolio_limits_even_without_equity() -> None:
    reduce = evaluate(intent(quantity="1", side=Side.SELL), ctx(position="5", equity=None), policy(), T0)
    assert reduce.approved
    grow = evaluate(intent(quantity="1"), ctx(equity=None), policy(), T0)
    assert grow.reason_code is ReasonCode.EQUITY_UNKNOWN


@pytest.mark.parametrize(("state", "side", "position", "code"), [
    (TradingState.HALTED, Side.SELL, "5", ReasonCode.KILL_SWITCH_HALTED),
    (TradingState.REDUCE_ONLY, Side.BUY, "5", ReasonCode.REDUCE_ONLY),
    (TradingState.REDUCE_ONLY, Side.SELL, "0", ReasonCode.REDUCE_ONLY),
    (TradingState.REDUCE_ONLY, Side.SELL, "5", ReasonCode.APPROVED),
])
def test_trading_state_gate(state: TradingState, side: Side, position: str, code: ReasonCode) -> None:
    decision = evaluate(intent(quantity="1", side=side), ctx(position=position, trading_state=state), policy(), T0)
    assert decision.reason_code is code


def test_order_rate_limit_uses_a_sliding_window() -> None:
    limited = policy().model_copy(update={"max_orders_per_window": 2, "order_rate_window_s": Decimal(1)})
    window = OrderRateWindow()
    for offset_ms in (0, 100):
        at = T0 + timedelta(milliseconds=offset_ms)
        assert evaluate(intent(), ctx(orders_in_window=window.count("a", at, Decimal(1))), limited, at).approved
        window.record("a", at)
    at = T0 + timedelta(milliseconds=500)
    third = evaluate(intent(), ctx(orders_in_window=window.count("a", at, Decimal(1))), limited, at)
    assert third.reason_code is ReasonCode.ORDER_RATE_EXCEEDED
    later = T0 + timedelta(milliseconds=1050)
    assert window.count("a", later, Decimal(1)) == 1


def test_daily_drawdown_moves_the_account_to_reduce_only() -> None:
    limits = policy().model_copy(update={"max_daily_drawdown": Decimal("0.05")})
    assert drawdown_state(Decimal(100_000), Decimal(96_000), limits)[0] is TradingState.ACTIVE
    state, reason = drawdown_state(Decimal(100_000), Decimal(94_000), limits)
    assert state is TradingState.REDUCE_ONLY and "daily_drawdown=0.0600" in reason


def test_policy_fractions_are_validated() -> None:
    with pytest.raises(ValueError, match="max_daily_drawdown"):
        RiskPolicy(policy_id="p", version=1, max_order_notional=Decimal(1), max_position_quantity=Decimal(1),
                   max_daily_drawdown=Decimal(1))


def test_the_freshest_of_the_view_and_the_signal_quote_prices_the_order() -> None:
    older, newer = quote(seq=1, ask="100.10"), quote(seq=2, ask="101.10")
    assert freshest(older, newer) is newer and freshest(newer, older) is newer
    assert freshest(None, older) is older and freshest(older, None) is older and freshest(None, None) is None


def test_an_approval_carries_the_market_it_was_judged_on_and_the_seal_covers_it() -> None:
    judged = quote(ask="100.20", seq=9)
    decision = seal(evaluate(intent(), risk_context(quote=judged), policy(), T0), b"k" * 32)
    assert decision.approved and decision.market == judged
    assert is_sealed(decision, b"k" * 32)
    assert not is_sealed(decision.model_copy(update={"market": quote(bid="89.90", ask="90.00")}), b"k" * 32)
