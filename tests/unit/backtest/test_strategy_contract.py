"""The same strategy class runs unchanged in the backtest engine and in the stream worker's strategy runner.

The runner (`agents/strategy_runner.py`) builds the strategy from the registry, gives it a
`core.strategy.StrategyContext`, calls `on_start` and then `on_quote` per quote, and publishes what `drain`
returns. Here it runs for real against a stand-in for its `AgentKit` (no Kafka needed), and its intents are
compared with the engine's on the same quotes.
"""

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from agents import strategy_runner
from backtest.data import market_data
from backtest.engine import Backtest, BacktestConfig
from core.instruments import AssetClass, Instrument, InstrumentCatalog, Venue
from core.market import Quote
from core.orders import OrderIntent
from core.strategy import STRATEGIES, Strategy, StrategyContext
from streams.topics import ORDER_INTENTS, TopicSpec
from tests.kit.builders import T0, btc, policy, quote
from tradestream.config import Settings, StrategySettings

CONTRACT = Instrument(instrument_id="event_contract:KX-T", asset_class=AssetClass.EVENT_CONTRACT, venue=Venue.KALSHI,
                      quote_currency="USD", tick_size=Decimal("0.01"), lot_size=Decimal(1))
CASES: dict[str, tuple[dict[str, Any], Instrument, list[str]]] = {
    "sma_crossover": ({"fast": 2, "slow": 4, "quantity": "1"}, btc(),
                      ["100", "100", "100", "100", "103", "106", "104", "99", "95", "96", "101", "107", "108", "100"]),
    "event_mean_reversion": ({"window": 3, "entry": "0.05", "exit": "0.01", "quantity": "5"}, CONTRACT,
                             ["0.50", "0.50", "0.50", "0.60", "0.55", "0.51", "0.40", "0.42", "0.44", "0.47"]),
}


class StandInKit:
    """What the runner uses of `AgentKit`: settings, accounts, the app's agent decorator, consume and send."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.accounts = {a.account_id: a for a in settings.accounts}
        self.app = self
        self.agents: list[Callable[[Any], Coroutine[Any, Any, None]]] = []
        self.sent: list[tuple[TopicSpec, OrderIntent]] = []
        self.quotes: list[Quote] = []
        self.timers: list[Callable[[], Coroutine[Any, Any, None]]] = []

    def agent(self, topic: Any, name: str) -> Callable[[Callable[[Any], Coroutine[Any, Any, None]]], Any]:
        def register(fn: Callable[[Any], Coroutine[Any, Any, None]]) -> Any:
            self.agents.append(fn)
            return fn
        return register

    def topic(self, spec: TopicSpec) -> TopicSpec:
        return spec

    def timer(self, interval: float, name: str) -> Callable[[Callable[[], Coroutine[Any, Any, None]]], Any]:
        def register(fn: Callable[[], Coroutine[Any, Any, None]]) -> Any:
            self.timers.append(fn)
            return fn
        return register

    async def consume(self, stream: Any, parse: Any, consumer: str,
                      handle: Callable[[Quote, Any], Awaitable[None]]) -> None:
        for q in self.quotes:
            await handle(q, None)

    async def send(self, spec: TopicSpec, key: str, record: BaseModel, trace_id: str | None) -> None:
        assert isinstance(record, OrderIntent)
        self.sent.append((spec, record))


def quotes(name: str) -> list[Quote]:
    _, instrument, mids = CASES[name]
    return [quote(instrument.instrument_id, bid=str(Decimal(m) - Decimal("0.01")),
                  ask=str(Decimal(m) + Decimal("0.01")), seq=n, ts=T0 + timedelta(seconds=n))
            for n, m in enumerate(mids, start=1)]


def through_the_runner(name: str) -> list[OrderIntent]:
    settings = Settings(strategy=StrategySettings(name=name, strategy_id="s-1", account_id="paper-main",
                                                  params=CASES[name][0]))
    kit = StandInKit(settings)
    kit.quotes = quotes(name)
    strategy_runner.register(kit)  # type: ignore[arg-type]  # the stand-in has what the runner uses
    quotes_agent = kit.agents[0]  # the first agent the runner registers reads md.quotes
    asyncio.run(quotes_agent(None))
    assert {spec for spec, _ in kit.sent} <= {ORDER_INTENTS}
    return [intent for _, intent in kit.sent]


def through_the_engine(name: str) -> tuple[list[OrderIntent], Backtest]:
    params, instrument, _ = CASES[name]
    strategy = STRATEGIES[name]("s-1", params)
    config = BacktestConfig(account=Settings().accounts[0], policy=policy())
    engine = Backtest(strategy, config, InstrumentCatalog([instrument]), market_data((), quotes(name)))
    seen: list[OrderIntent] = []
    drain = engine.context.drain

    def recording_drain() -> list[OrderIntent]:
        intents = drain()
        seen.extend(intents)
        return intents

    engine.context.drain = recording_drain  # type: ignore[method-assign]  # observe what the engine drains
    engine.run()
    return seen, engine


def asked(intents: list[OrderIntent]) -> list[tuple[Any, ...]]:
    return [(i.instrument_id, i.side, i.quantity, i.order_type, i.limit_price, i.idempotency_key, i.strategy_id,
             i.account_id, i.requested_mode) for i in intents]


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_strategy_asks_for_the_same_orders_in_the_runner_and_in_the_engine(name: str) -> None:
    in_runner = through_the_runner(name)
    in_engine, _ = through_the_engine(name)
    assert asked(in_runner) == asked(in_engine)
    assert len(in_engine) >= 3  # the quotes above give signals both ways


def test_the_engine_drives_the_core_context_itself() -> None:
    _, engine = through_the_engine("sma_crossover")
    assert type(engine.context) is StrategyContext


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_built_in_strategies_use_only_the_strategy_api(name: str) -> None:
    """No engine-only hooks: every public method a strategy defines is one of `Strategy`'s hooks."""
    cls = STRATEGIES[name]
    hooks = {n for n in vars(Strategy) if n.startswith("on_")}
    own = {n for klass in cls.__mro__[:cls.__mro__.index(Strategy)] for n, v in vars(klass).items()
           if callable(v) and not isinstance(v, type) and not n.startswith("_")}
    assert own <= hooks, f"{cls.__name__} defines {sorted(own - hooks)} beyond the Strategy API"
