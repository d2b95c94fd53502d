"""portfolio.positions -> positions (upsert, the newest wins) and portfolio.pnl -> pnl_snapshots (append)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg

from core.ledger import PnlSnapshot
from sinks.base import BatchSink, Message, trace_id_of
from sinks.schema import PNL_SNAPSHOTS, POSITIONS, insert_statement
from streams.records import DeadLetter, PositionUpdated, decode
from streams.topics import PNL, TopicSpec, topic_name
from streams.topics import POSITIONS as POSITIONS_TOPIC
from tradestream.config import Settings
from tradestream.logging import get_logger, traced

log = get_logger(__name__)

_UPSERT_POSITION = insert_statement(POSITIONS, (
    "ON CONFLICT (account_id, instrument_id) DO UPDATE SET "
    + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in POSITIONS.column_names
                if c not in ("account_id", "instrument_id"))
    # `<=`: two updates stamped with the same instant keep log order, which is the order they were made in.
    + " WHERE positions.updated_at <= EXCLUDED.updated_at"))
_INSERT_PNL = insert_statement(PNL_SNAPSHOTS)


def position_row(update: PositionUpdated) -> tuple[Any, ...]:
    p = update.position
    return (update.account_id, p.instrument_id, update.owner_org_id, update.owner_user_id, update.mode, p.quantity,
            p.average_price, p.multiplier, p.realized_pnl, p.fees_paid, p.last_trace_id, update.ts)


def _pnl_row(message: Message) -> tuple[Any, ...]:
    snapshot = decode(PnlSnapshot, message.value())
    return pnl_row(snapshot, snapshot.trace_id or trace_id_of(message))


def pnl_row(snapshot: PnlSnapshot, trace_id: str | None) -> tuple[Any, ...]:
    return (snapshot.ts, snapshot.account_id, snapshot.owner.org_id, snapshot.owner.user_id, snapshot.mode.value,
            snapshot.cash, snapshot.realized_pnl, snapshot.unrealized_pnl, snapshot.fees, snapshot.equity,
            list(snapshot.unmarked_instruments), trace_id)


@dataclass
class PortfolioBatch:
    positions: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    """The newest row per (account, instrument) in the batch."""
    snapshots: list[tuple[Any, ...]] = field(default_factory=list)


class PortfolioSink(BatchSink[PortfolioBatch]):
    name = "portfolio"
    topics: ClassVar[tuple[TopicSpec, ...]] = (POSITIONS_TOPIC, PNL)

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(settings, **options)
        self._positions_topic = topic_name(POSITIONS_TOPIC, settings.topic_prefix)

    def decode(self, messages: list[Message]) -> tuple[PortfolioBatch, list[DeadLetter]]:
        batch = PortfolioBatch()
        dead: list[DeadLetter] = []
        for message in messages:
            if message.topic() == self._positions_topic:
                row = self.storable_row(message, POSITIONS,
                                        lambda m: position_row(decode(PositionUpdated, m.value())), dead)
                if row is not None:
                    held = batch.positions.get((row[0], row[1]))
                    if held is None or row[-1] >= held[-1]:
                        batch.positions[(row[0], row[1])] = row
            else:
                row = self.storable_row(message, PNL_SNAPSHOTS, _pnl_row, dead)
                if row is not None:
                    batch.snapshots.append(row)
        return batch, dead

    def write(self, cur: psycopg.Cursor[Any], batch: PortfolioBatch) -> int:
        if batch.positions:
            cur.executemany(_UPSERT_POSITION, list(batch.positions.values()))
        if batch.snapshots:
            cur.executemany(_INSERT_PNL, batch.snapshots)
        return len(batch.positions) + len(batch.snapshots)

    def after_commit(self, batch: PortfolioBatch) -> None:
        for account_id, instrument_id, *_rest, trace_id, updated_at in batch.positions.values():
            with traced(trace_id):
                log.debug("position_written", account_id=account_id, instrument_id=instrument_id,
                          updated_at=updated_at.isoformat())
