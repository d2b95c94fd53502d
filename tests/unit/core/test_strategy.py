from datetime import timedelta
from decimal import Decimal

import pytest

from core.clock import ManualClock
from core.strategy import SmaCrossover, StrategyContext
from core.types import Side
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
    assert trades == [(Side.BUY, Decimal(3), "crypto_spot:BTC-USD:5"),
                      (Side.SELL, Decimal(3), "crypto_spot:BTC-USD:8")]


def test_replaying_the_same_quotes_gives_the_same_keys() -> None:
    mids = ["10", "11", "9", "12", "15", "7", "6", "9", "14", "15"]
    assert run(mids) == run(mids)


def test_windows_are_validated() -> None:
    with pytest.raises(ValueError, match="0 < fast < slow"):
        SmaCrossover("s", {"fast": 5, "slow": 5})
