"""The audit sequencer: audit.events and orders.events -> audit_log, one hash chain in one order.

Every process may emit audit events; this sink alone numbers them and chains each to the previous entry
(core.audit.chain), under a table lock so two sink processes can never fork the chain. Orders and fills are
audited from orders.events, so nothing that changed an order can skip the trail.
"""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg

from core.audit import AuditAction, AuditEntry, AuditEvent, chain
from sinks.base import BatchSink, Message
from sinks.schema import AUDIT_LOG, insert_statement
from streams.records import DeadLetter, FillReported, RecordError, decode, decode_order_event
from streams.topics import AUDIT, ORDER_EVENTS, TopicSpec, topic_name
from tradestream.config import Settings

_INSERT = insert_statement(AUDIT_LOG)


def order_event_audit(event: Any) -> AuditEvent:
    """What an order event puts in the trail: the state it reached, or the fill."""
    if isinstance(event, FillReported):
        fill = event.fill
        return AuditEvent(action=AuditAction.FILL, actor=fill.venue, subject=fill.order_id, at=fill.ts,
                          after={"venue_trade_id": fill.venue_trade_id, "side": fill.side.value,
                                 "quantity": str(fill.quantity), "price": str(fill.price), "fee": str(fill.fee),
                                 "mode": fill.mode.value, "account_id": fill.account_id},
                          trace_id=fill.trace_id)
    order = event.order
    return AuditEvent(action=AuditAction.ORDER_CHANGED, actor="oms", subject=order.order_id, at=order.updated_at,
                      after={"status": order.status.value, "version": order.version,
                             "requested_mode": order.requested_mode.value,
                             "effective_mode": order.effective_mode.value if order.effective_mode else None,
                             "reason_code": order.reason_code, "reason_detail": order.reason_detail,
                             "filled_quantity": str(order.filled_quantity), "account_id": order.account_id},
                      trace_id=order.trace_id)


def entry_row(entry: AuditEntry) -> tuple[Any, ...]:
    e = entry.event
    return (entry.seq, e.at, e.action.value, e.actor, e.subject, e.trace_id, e.model_dump_json(), entry.prev_hash,
            entry.hash)


def load_chain(cur: psycopg.Cursor[Any]) -> list[AuditEntry]:
    rows = cur.execute("SELECT seq, event_json, prev_hash, hash FROM audit_log ORDER BY seq").fetchall()
    return [AuditEntry(seq=seq, event=AuditEvent.model_validate_json(event_json), prev_hash=prev, hash=digest)
            for seq, event_json, prev, digest in rows]


class AuditSink(BatchSink[list[AuditEvent]]):
    name = "audit"
    topics: ClassVar[tuple[TopicSpec, ...]] = (AUDIT, ORDER_EVENTS)

    def __init__(self, settings: Settings, **options: Any) -> None:
        super().__init__(settings, **options)
        self._audit_topic = topic_name(AUDIT, settings.topic_prefix)

    def decode(self, messages: list[Message]) -> tuple[list[AuditEvent], list[DeadLetter]]:
        events: list[AuditEvent] = []
        dead: list[DeadLetter] = []
        for message in messages:
            try:
                if message.topic() == self._audit_topic:
                    events.append(decode(AuditEvent, message.value()))
                else:
                    events.append(order_event_audit(decode_order_event(message.value())))
            except RecordError as exc:
                dead.append(self.dead_letter(message, str(exc)))
        return events, dead

    def write(self, cur: psycopg.Cursor[Any], batch: list[AuditEvent]) -> int:
        if not batch:
            return 0
        cur.execute("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")  # one chain, whoever writes
        row = cur.execute("SELECT seq, event_json, prev_hash, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
                          ).fetchone()
        previous = None if row is None else AuditEntry(
            seq=row[0], event=AuditEvent.model_validate_json(row[1]), prev_hash=row[2], hash=row[3])
        rows = []
        for event in batch:
            previous = chain(event, previous)
            rows.append(entry_row(previous))
        cur.executemany(_INSERT, rows)
        return len(rows)
