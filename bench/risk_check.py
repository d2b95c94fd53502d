"""Time of one pre-trade check in process: `core.risk.evaluate` with every rule running (the approved path,
which runs all of them). Prints median and p99 in microseconds; target median <= 20 us."""

from __future__ import annotations

import gc
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from core.accounts import Owner
from core.control import TradingState
from core.instruments import AssetClass, Instrument, Venue
from core.market import Quote
from core.orders import IntentSource, OrderIntent
from core.risk import RiskContext, RiskPolicy, evaluate
from core.types import ExecutionMode, OrderType, Side

ITERATIONS = 200_000


def main() -> None:
    now = datetime.now(UTC)
    instrument = Instrument(instrument_id="equity:AAPL", asset_class=AssetClass.EQUITY, venue=Venue.IBKR,
                            quote_currency="USD", tick_size=Decimal("0.01"), lot_size=Decimal(1))
    quote = Quote(instrument_id="equity:AAPL", bid=Decimal("229.98"), ask=Decimal("230.02"), bid_size=Decimal(300),
                  ask_size=Decimal(200), ts=now - timedelta(milliseconds=5), seq=1)
    policy = RiskPolicy(policy_id="bench", version=1, max_order_notional=Decimal(1_000_000),
                        max_position_quantity=Decimal(10_000), asset_class_caps={AssetClass.EQUITY: Decimal(10**7)})
    intents = [OrderIntent(trace_id=uuid.uuid4().hex, account_id="a", owner=Owner(org_id="o", user_id="u"),
                           strategy_id="s", idempotency_key=str(i), instrument_id="equity:AAPL",
                           side=Side.BUY if i % 2 else Side.SELL, order_type=OrderType.LIMIT, quantity=Decimal(10),
                           limit_price=Decimal("230.00"), requested_mode=ExecutionMode.PAPER,
                           source=IntentSource.STRATEGY, created_at=now) for i in range(1000)]
    ctx = RiskContext(instrument=instrument, position_quantity=Decimal(100), quote=quote, equity=Decimal(1_000_000),
                      gross_exposure=Decimal(23_000), asset_class_exposure={AssetClass.EQUITY: Decimal(23_000)},
                      trading_state=TradingState.ACTIVE, orders_in_window=3)
    for intent in intents:  # warm-up
        assert evaluate(intent, ctx, policy, now).approved
    samples = []
    gc.disable()
    for i in range(ITERATIONS):
        intent = intents[i % 1000]
        start = time.perf_counter_ns()
        evaluate(intent, ctx, policy, now)
        samples.append(time.perf_counter_ns() - start)
    gc.enable()
    samples.sort()
    print(f"pre-trade check (all rules, approved path), {ITERATIONS} runs: "
          f"median={statistics.median(samples) / 1000:.2f} us p99={samples[int(len(samples) * 0.99)] / 1000:.2f} us")


if __name__ == "__main__":
    main()
