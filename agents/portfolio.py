"""Portfolio: applies each fill once to its account's ledger, and each settlement of a settled instrument to the
positions held in it; publishes positions and PnL snapshots.

Settlements are decided on a timer from this process's ledgers and the instrument catalog
(`core.ledger.settlements_due`) and sent keyed by account, so the agent that owns the account's ledger applies
them: confirmed against the catalog (a message alone moves no cash), audited, then `Ledger.settle`. A settlement
for a position already flat changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from agents.kit import AgentKit, trace_of
from core.audit import AuditAction, AuditEvent
from core.ledger import Ledger, Settlement, settlements_due
from core.risk import drawdown_state
from streams.records import FillReported, OrderUpdated, PositionUpdated, decode, decode_order_event
from streams.topics import ORDER_EVENTS, PNL, POSITIONS, SETTLEMENTS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)

SETTLEMENT_CHECK_S = 1.0
SETTLEMENT_RESEND_S = 30.0
"""A settlement sent but not applied yet (its account's ledger still holds the position) is sent again after this."""


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

    sent: dict[tuple[str, str], float] = {}

    @kit.timer(SETTLEMENT_CHECK_S, "settlements")
    async def request_settlements() -> None:
        now = asyncio.get_running_loop().time()
        due = settlements_due((ledger for ledger in ledgers.values() if ledger is not None), kit.catalog)
        keys = {(s.account_id, s.instrument_id) for s in due}
        for key in set(sent) - keys:
            del sent[key]
        for settlement in due:
            key = (settlement.account_id, settlement.instrument_id)
            if now < sent.get(key, float("-inf")) + SETTLEMENT_RESEND_S:
                continue
            sent[key] = now
            await kit.send(SETTLEMENTS, settlement.account_id, settlement, uuid.uuid4().hex)

    async def on_settlement(settlement: Settlement, event: Any) -> None:
        trace_id = trace_of(event) or uuid.uuid4().hex
        with traced(trace_id, account_id=settlement.account_id, instrument_id=settlement.instrument_id):
            # The catalog is the authority on a settlement, not the message: one it does not confirm (forged, or
            # ahead of this worker's catalog) moves no cash; a genuine one is sent again by the timer.
            problem = settlement.unconfirmed(kit.catalog)
            if problem is not None:
                await kit.dead_letter(event, problem, "settlements")
                return
            account = kit.accounts.get(settlement.account_id)
            ledger: Ledger | None = ledgers.get(settlement.account_id)
            if account is None or ledger is None or ledger.quantity(settlement.instrument_id) == 0:
                log.info("settlement.nothing_to_settle")
                return
            now = datetime.now(UTC)
            # Audited first: a settlement that cannot be audited is not applied (the timer sends it again).
            await asyncio.to_thread(kit.control_plane.audit, AuditEvent(
                action=AuditAction.SETTLEMENT, actor="settlement", subject=f"account:{account.account_id}",
                at=now, trace_id=trace_id, before={"position": ledger.positions[settlement.instrument_id].model_dump(
                    mode="json"), "cash": str(ledger.cash)},
                after={"instrument_id": settlement.instrument_id,
                       "settlement_price": str(settlement.settlement_price)}))
            # Read again: the portfolio agent may have applied a fill to this ledger while the audit was written.
            # From here to the write nothing awaits, so nothing else changes it in between.
            current: Ledger = ledgers[settlement.account_id]
            settled = current.settle(settlement.instrument_id, settlement.settlement_price, trace_id)
            ledgers[settlement.account_id] = settled
            position = settled.positions[settlement.instrument_id]
            await kit.send(POSITIONS, account.account_id, PositionUpdated.of(account, position, now), trace_id)
            log.info("settlement.applied", quantity=str(current.quantity(settlement.instrument_id)),
                     settlement_price=str(settlement.settlement_price), cash=str(settled.cash))

    @kit.app.agent(kit.topic(SETTLEMENTS), name="settlements")
    async def settlements(stream: Any) -> None:
        await kit.consume(stream, partial(decode, Settlement), "settlements", on_settlement)

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
