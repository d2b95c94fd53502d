"""Strategy runner: feeds every quote, its own order updates and fills, and its timers to the configured strategy,
and publishes the intents it asks for. The strategy object is in-process state: one worker runs it."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from agents.kit import AgentKit
from core.clock import WallClock
from core.market import Quote
from core.strategy import STRATEGIES, StrategyContext
from streams.records import FillReported, OrderUpdated, decode, decode_order_event
from streams.topics import MD_QUOTES, ORDER_EVENTS, ORDER_INTENTS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)

TIMER_RESOLUTION_S = 0.1
"""How late a strategy timer may fire in the pipeline (the backtest fires them exactly)."""


def register(kit: AgentKit) -> None:
    settings = kit.settings.strategy
    strategy_cls = STRATEGIES.get(settings.name)
    if strategy_cls is None:
        raise ValueError(f"strategy.name: unknown strategy {settings.name!r}; known: {sorted(STRATEGIES)}")
    account = kit.accounts[settings.account_id]
    strategy = strategy_cls(settings.strategy_id, settings.params)
    ctx = StrategyContext(settings.strategy_id, account, WallClock(), new_trace_id=lambda: uuid.uuid4().hex)
    strategy.on_start(ctx)

    async def publish_intents(market: Quote | None = None) -> None:
        for drained in ctx.drain():
            intent = drained.model_copy(update={"market": market}) \
                if market is not None and drained.instrument_id == market.instrument_id else drained
            with traced(intent.trace_id, order_id=intent.order_id):
                log.info("intent.created", strategy_id=intent.strategy_id, instrument_id=intent.instrument_id,
                         side=intent.side.value, quantity=str(intent.quantity))
                await kit.send(ORDER_INTENTS, intent.account_id, intent, intent.trace_id)

    async def on_quote(quote: Quote, event: Any) -> None:
        strategy.on_quote(quote, ctx)
        await publish_intents(quote)

    async def on_order_event(record: OrderUpdated | FillReported, event: Any) -> None:
        """The strategy hears of its own orders and fills, as in the backtest engine."""
        if isinstance(record, FillReported):
            if record.fill.strategy_id == ctx.strategy_id and record.fill.account_id == account.account_id:
                ctx.record_fill(record.fill)
                strategy.on_fill(record.fill, ctx)
                await publish_intents()
        elif record.order.strategy_id == ctx.strategy_id and record.order.account_id == account.account_id:
            ctx.record_order(record.order)

    @kit.app.agent(kit.topic(MD_QUOTES), name="strategy_runner")
    async def strategy_runner(stream: Any) -> None:
        await kit.consume(stream, partial(decode, Quote), "strategy_runner", on_quote)

    @kit.app.agent(kit.topic(ORDER_EVENTS), name="strategy_orders")
    async def strategy_orders(stream: Any) -> None:
        await kit.consume(stream, decode_order_event, "strategy_orders", on_order_event)

    @kit.timer(TIMER_RESOLUTION_S, "strategy_timers")
    async def strategy_timers() -> None:
        now = ctx.now()
        while (timer := ctx.pop_due_timer(now)) is not None:
            strategy.on_timer(timer, ctx)
        await publish_intents()
