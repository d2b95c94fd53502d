"""Strategy runner: feeds every quote to the configured strategy and publishes the intents it asks for."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from agents.kit import AgentKit
from core.clock import WallClock
from core.market import Quote
from core.strategy import STRATEGIES, StrategyContext
from streams.records import decode
from streams.topics import MD_QUOTES, ORDER_INTENTS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)


def register(kit: AgentKit) -> None:
    settings = kit.settings.strategy
    strategy_cls = STRATEGIES.get(settings.name)
    if strategy_cls is None:
        raise ValueError(f"strategy.name: unknown strategy {settings.name!r}; known: {sorted(STRATEGIES)}")
    account = kit.accounts[settings.account_id]
    strategy = strategy_cls(settings.strategy_id, settings.params)
    ctx = StrategyContext(settings.strategy_id, account, WallClock(), new_trace_id=lambda: uuid.uuid4().hex)
    strategy.on_start(ctx)

    async def on_quote(quote: Quote, event: Any) -> None:
        strategy.on_quote(quote, ctx)
        for intent in ctx.drain():
            with traced(intent.trace_id, order_id=intent.order_id):
                log.info("intent.created", strategy_id=intent.strategy_id, instrument_id=intent.instrument_id,
                         side=intent.side.value, quantity=str(intent.quantity))
                await kit.send(ORDER_INTENTS, intent.account_id, intent, intent.trace_id)

    @kit.app.agent(kit.topic(MD_QUOTES), name="strategy_runner")
    async def strategy_runner(stream: Any) -> None:
        await kit.consume(stream, partial(decode, Quote), "strategy_runner", on_quote)
