"""Portfolio: applies each fill once to its account's ledger; publishes positions and PnL snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agents.kit import AgentKit
from core.ledger import Ledger
from streams.records import FillReported, PositionUpdated, decode_order_event
from streams.topics import ORDER_EVENTS, PNL, POSITIONS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)


def register(kit: AgentKit, ledgers: Any, seen_fills: Any) -> None:
    @kit.app.agent(kit.topic(ORDER_EVENTS), name="portfolio")
    async def portfolio(stream: Any) -> None:
        async for event in stream.events():
            record = await kit.decode(event, decode_order_event, "portfolio")
            if not isinstance(record, FillReported):
                continue
            fill = record.fill
            with traced(fill.trace_id, order_id=fill.order_id, account_id=fill.account_id):
                dedup_key = fill.dedup_key.encode()
                if seen_fills.get(dedup_key) is not None:
                    log.info("fill.duplicate_ignored", venue=fill.venue, venue_trade_id=fill.venue_trade_id)
                    continue
                account = kit.accounts.get(fill.account_id)
                instrument = kit.catalog.get(fill.instrument_id)
                if account is None or instrument is None:
                    await kit.dead_letter(event, f"fill for unknown account {fill.account_id!r} or instrument "
                                                 f"{fill.instrument_id!r}", "portfolio")
                    continue
                raw = ledgers.get(fill.account_id.encode())
                ledger = Ledger.model_validate_json(raw) if raw else Ledger.open(account)
                ledger = ledger.apply_fill(fill, instrument.multiplier)
                ledgers[fill.account_id.encode()] = ledger.model_dump_json().encode()
                seen_fills[dedup_key] = b"1"
                now = datetime.now(UTC)
                position = ledger.positions[fill.instrument_id]
                await kit.send(POSITIONS, fill.account_id, PositionUpdated(
                    account_id=fill.account_id, owner_org_id=account.owner.org_id,
                    owner_user_id=account.owner.user_id, mode=account.mode.value, position=position, ts=now,
                ), fill.trace_id)
                marks = {iid: q.mid for iid, q in (await kit.latest_quotes()).items()}
                await kit.send(PNL, fill.account_id, ledger.snapshot(marks, now, trace_id=fill.trace_id),
                               fill.trace_id)
                log.info("fill.applied", instrument_id=fill.instrument_id, position=str(position.quantity),
                         cash=str(ledger.cash))

    @kit.app.timer(interval=kit.settings.pnl_interval_s, name="pnl_marks")
    async def mark_to_market() -> None:
        marks = {iid: q.mid for iid, q in (await kit.latest_quotes()).items()}
        now = datetime.now(UTC)
        for key, raw in list(ledgers.items()):
            if raw is None:
                continue
            ledger = Ledger.model_validate_json(raw)
            await kit.send(PNL, key.decode(), ledger.snapshot(marks, now), None)
