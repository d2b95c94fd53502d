"""Portfolio: applies each fill once to its account's ledger; publishes positions and PnL snapshots."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from agents.kit import AgentKit
from core.ledger import Ledger
from core.risk import drawdown_state
from streams.records import FillReported, OrderUpdated, PositionUpdated, decode_order_event
from streams.topics import ORDER_EVENTS, PNL, POSITIONS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)


def register(kit: AgentKit, ledgers: Any, seen_fills: Any) -> None:
    async def on_order_event(record: OrderUpdated | FillReported, event: Any) -> None:
        if not isinstance(record, FillReported):
            return
        fill = record.fill
        with traced(fill.trace_id, order_id=fill.order_id, account_id=fill.account_id):
            if seen_fills.get(fill.dedup_key) is not None:
                log.info("fill.duplicate_ignored", venue=fill.venue, venue_trade_id=fill.venue_trade_id)
                return
            account = kit.accounts.get(fill.account_id)
            instrument = kit.catalog.get(fill.instrument_id)
            if account is None or instrument is None:
                await kit.dead_letter(event, f"fill for unknown account {fill.account_id!r} or instrument "
                                             f"{fill.instrument_id!r}", "portfolio")
                return
            ledger: Ledger = ledgers.get(fill.account_id) or Ledger.open(account)
            ledger = ledger.apply_fill(fill, instrument.multiplier)
            ledgers[fill.account_id] = ledger
            seen_fills[fill.dedup_key] = b"1"
            position = ledger.positions[fill.instrument_id]
            await kit.send(POSITIONS, fill.account_id, PositionUpdated.of(account, position, datetime.now(UTC)),
                           fill.trace_id)
            log.info("fill.applied", instrument_id=fill.instrument_id, position=str(position.quantity),
                     cash=str(ledger.cash))

    @kit.app.agent(kit.topic(ORDER_EVENTS), name="portfolio")
    async def portfolio(stream: Any) -> None:
        await kit.consume(stream, decode_order_event, "portfolio", on_order_event)

    async def start_of_day_equity(account_id: str, equity: Decimal, now: datetime) -> Decimal:
        """The first equity seen on this UTC day, kept in Redis so every worker and restart agrees."""
        key = f"{kit.settings.topic_prefix}sod_equity:{account_id}:{now.date().isoformat()}"
        await kit.redis.set(key, str(equity), nx=True, ex=3 * 24 * 3600)
        stored = await kit.redis.get(key)
        if stored is None:
            return equity
        return Decimal(stored.decode() if isinstance(stored, bytes) else stored)

    @kit.timer(kit.settings.pnl_interval_s, "pnl_marks")
    async def mark_to_market() -> None:
        marks = {iid: q.mid for iid, q in (await kit.latest_quotes()).items()}
        now = datetime.now(UTC)
        for account_id, ledger in list(ledgers.items()):
            if ledger is None:
                continue
            snapshot = ledger.snapshot(marks, now)
            await kit.send(PNL, account_id, snapshot, None)
            account = kit.accounts.get(account_id)
            if account is None or snapshot.unmarked_instruments:
                continue  # equity is not known for sure: never act on a guess
            policy = (await kit.control.read(account, [], "")).policy
            if policy is None:
                continue
            sod = await start_of_day_equity(account_id, snapshot.equity, now)
            state, reason = drawdown_state(sod, snapshot.equity, policy)
            await asyncio.to_thread(kit.control_plane.set_trading_state, account_id, state, reason, "risk:drawdown")
