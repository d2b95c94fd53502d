from datetime import timedelta
from decimal import Decimal

import pytest

from core.clock import ManualClock
from core.fills import Fill
from core.orders import OrderIntent, OrderStatus, new_order
from core.strategies import EventMeanReversion
from core.strategy import STRATEGIES, SmaCrossover, StrategyContext
from core.types import ExecutionMode, Liquidity, OrderType, Side
from tests.kit.builders import T0, account, quote


def run(mids: list[str]) -> list[tuple[Side, Decimal, str]]:
    clock = ManualClock(T0)
    ctx = StrategyContext("sma", account(), clock, new_trace_id=lambda: "f" * 32)
    strategy = SmaCrossover("sma", {"fast": 2, "slow": 4, "quantity": {"crypto_spot:BTC-USD": "3"}})
    out = []
    for seq, mid in enumerate(mids, start=1):
        clock.set(T0 + timedelta(seconds=seq))
        price = Decimal(mid)
        strategy.on_quote(quote(bid=str(price - Decimal("0.5")), ask=str(price + Decimal("0.5")), seq=seq), ctx)
        out += [(i.side, i.quantity, i.idempotency_key) for i in ctx.drain()]
    return out


def test_goes_long_when_fast_crosses_above_slow_and_flat_when_below() -> None:
    trades = run(["10", "10", "10", "10", "12", "14", "14", "8", "6", "6"])
    at = T0.isoformat()  # the builder's quotes are all stamped T0; their seq tells them apart
    assert trades == [(Side.BUY, Decimal(3), f"crypto_spot:BTC-USD:{at}:5"),
                      (Side.SELL, Decimal(3), f"crypto_spot:BTC-USD:{at}:8")]


def test_replaying_the_same_quotes_gives_the_same_keys() -> None:
    mids = ["10", "11", "9", "12", "15", "7", "6", "9", "14", "15"]
    assert run(mids) == run(mids)


def test_windows_are_validated() -> None:
    with pytest.raises(ValueError, match="0 < fast < slow"):
        SmaCrossover("s", {"fast": 5, "slow": 5})


def context(clock: ManualClock | None = None) -> StrategyContext:
    return StrategyContext("s", account(), clock or ManualClock(T0), new_trace_id=lambda: "f" * 32)


def fill_of(intent: OrderIntent, quantity: str | None = None) -> Fill:
    return Fill(venue="v", venue_trade_id=intent.idempotency_key, order_id=intent.order_id, trace_id=intent.trace_id,
                account_id=intent.account_id, owner=intent.owner, strategy_id="s", instrument_id=intent.instrument_id,
                side=intent.side, quantity=Decimal(quantity) if quantity else intent.quantity, price=Decimal(100),
                fee=Decimal(0), liquidity=Liquidity.TAKER, mode=ExecutionMode.PAPER, ts=T0)


def test_buy_and_sell_make_market_or_limit_intents_with_clock_derived_keys() -> None:
    ctx = context()
    market = ctx.buy("crypto_spot:BTC-USD", Decimal(2))
    limit = ctx.sell("crypto_spot:BTC-USD", Decimal(1), limit_price=Decimal("101.5"), key="mine")
    assert (market.side, market.order_type, market.limit_price) == (Side.BUY, OrderType.MARKET, None)
    assert (limit.side, limit.order_type, limit.limit_price) == (Side.SELL, OrderType.LIMIT, Decimal("101.5"))
    assert market.idempotency_key == f"{T0.isoformat()}#1" and limit.idempotency_key == "mine"
    assert ctx.drain() == [market, limit] and ctx.drain() == []


def test_an_intent_from_a_strategy_is_validated() -> None:
    with pytest.raises(ValueError, match=r"greater than 0|must be > 0"):
        context().buy("crypto_spot:BTC-USD", Decimal(0))


def test_arguments_validation_converts_count_as_converted() -> None:
    ctx = context()
    intent = ctx.submit("crypto_spot:BTC-USD", "sell", "2", "k")  # type: ignore[arg-type]  # a loosely typed strategy
    assert (intent.side, intent.quantity) == (Side.SELL, Decimal(2))
    assert ctx.working("crypto_spot:BTC-USD") == Decimal(-2)


def test_target_position_orders_the_difference_from_position_and_working_orders() -> None:
    ctx = context()
    first = ctx.target_position("crypto_spot:BTC-USD", Decimal(5))
    assert first is not None and (first.side, first.quantity) == (Side.BUY, Decimal(5))
    assert ctx.target_position("crypto_spot:BTC-USD", Decimal(5)) is None  # already working
    ctx.record_fill(fill_of(first, "3"))
    assert (ctx.position("crypto_spot:BTC-USD"), ctx.working("crypto_spot:BTC-USD")) == (Decimal(3), Decimal(2))
    flat = ctx.target_position("crypto_spot:BTC-USD", Decimal(0))
    assert flat is not None and (flat.side, flat.quantity) == (Side.SELL, Decimal(5))


def test_an_ended_order_no_longer_counts_as_working() -> None:
    ctx = context()
    intent = ctx.buy("crypto_spot:BTC-USD", Decimal(5))
    rejected = new_order(intent, "MAX_POSITION_EXCEEDED", "", T0).transition(OrderStatus.REJECTED, T0)
    ctx.record_order(rejected)
    assert ctx.working("crypto_spot:BTC-USD") == 0
    retry = ctx.target_position("crypto_spot:BTC-USD", Decimal(5))
    assert retry is not None and retry.quantity == Decimal(5)


def test_timers_fire_in_time_order_repeat_without_drift_and_can_be_cancelled() -> None:
    clock = ManualClock(T0)
    ctx = context(clock)
    ctx.set_timer("every-2m", timedelta(minutes=2))
    ctx.set_alarm("once", T0 + timedelta(minutes=3))
    ctx.set_timer("cancelled", timedelta(minutes=1))
    ctx.cancel_timer("cancelled")
    fired = []
    while (timer := ctx.pop_due_timer(T0 + timedelta(minutes=7))) is not None:
        fired.append((timer.name, timer.at - T0))
    assert fired == [("every-2m", timedelta(minutes=2)), ("once", timedelta(minutes=3)),
                     ("every-2m", timedelta(minutes=4)), ("every-2m", timedelta(minutes=6))]
    assert ctx.next_timer_at == T0 + timedelta(minutes=8)


def test_replacing_a_timer_keeps_only_the_new_schedule() -> None:
    ctx = context()
    ctx.set_timer("t", timedelta(minutes=1))
    ctx.set_timer("t", timedelta(minutes=5))
    assert ctx.next_timer_at == T0 + timedelta(minutes=5)
    with pytest.raises(ValueError, match="interval must be positive"):
        ctx.set_timer("t", timedelta(0))


def test_parameters_are_validated_into_the_strategy_params_model() -> None:
    strategy = SmaCrossover("s", {"fast": "3", "slow": 7, "quantity": "2"})
    assert (strategy.params.fast, strategy.params.slow, strategy.params.size("any:X")) == (3, 7, Decimal(2))
    with pytest.raises(ValueError, match="extra"):
        SmaCrossover("s", {"fast": 3, "slow": 7, "speed": 1})
    with pytest.raises(ValueError, match="float"):
        SmaCrossover("s", {"quantity": 0.1})


def test_the_registry_is_reachable_from_the_strategy_module() -> None:
    assert STRATEGIES["sma_crossover"] is SmaCrossover
    assert STRATEGIES["event_mean_reversion"] is EventMeanReversion
