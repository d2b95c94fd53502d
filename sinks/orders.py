"""orders.events -> orders (upsert, the newest version wins) and fills (insert once per venue trade)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg
from psycopg.types.json import Jsonb

from core.fills import Fill
from core.orders import Order
from sinks.base import BatchSink, Message
from sinks.schema import FILLS, ORDERS, insert_statement, json_dumps, storable_problem
from streams.records import DeadLetter, FillReported, OrderUpdated, RecordError, decode_order_event
from streams.topics import ORDER_EVENTS, TopicSpec
from tradestream.logging import get_logger, traced

log = get_logger(__name__)

_VENUE_RESPONSE = ORDERS.column_names.index("venue_response")
_UPSERT_ORDER = insert_statement(ORDERS, (
    "ON CONFLICT (order_id) DO UPDATE SET "
    + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in ORDERS.column_names if c != "order_id")
    # Events of one account arrive in order, but a replay or a second producer may not: never go back.
    + " WHERE orders.version < EXCLUDED.version"))
_INSERT_FILL = insert_statement(FILLS, "ON CONFLICT (venue, venue_trade_id, ts) DO NOTHING")


def order_row(order: Order) -> tuple[Any, ...]:
    """The order as an orders row, in column order (venue_response still a plain JSON value)."""
    return (
        order.order_id, order.client_order_id, order.trace_id, order.account_id, order.owner.org_id,
        order.owner.user_id, order.strategy_id, order.idempotency_key, order.intent_fingerprint,
        order.instrument_id, order.side.value, order.order_type.value, order.quantity, order.limit_price,
        order.time_in_force.value, order.status.value, order.filled_quantity, order.average_fill_price,
        order.requested_mode.value, None if order.effective_mode is None else order.effective_mode.value,
        order.reason_code, order.reason_detail, order.venue_response, order.created_at, order.updated_at,
        order.version,
    )


def fill_row(fill: Fill) -> tuple[Any, ...]:
    return (
        fill.ts, fill.venue, fill.venue_trade_id, fill.order_id, fill.trace_id, fill.account_id, fill.owner.org_id,
        fill.owner.user_id, fill.strategy_id, fill.instrument_id, fill.side.value, fill.quantity, fill.price,
        fill.fee, fill.liquidity.value, fill.mode.value,
    )


@dataclass
class OrderBatch:
    orders: dict[str, Order] = field(default_factory=dict)
    """The highest version of each order seen in the batch."""
    fills: list[Fill] = field(default_factory=list)


class OrderEventSink(BatchSink[OrderBatch]):
    name = "order_events"
    topics: ClassVar[tuple[TopicSpec, ...]] = (ORDER_EVENTS,)

    def decode(self, messages: list[Message]) -> tuple[OrderBatch, list[DeadLetter]]:
        batch = OrderBatch()
        dead = []
        for message in messages:
            try:
                event = decode_order_event(message.value())
            except RecordError as exc:
                dead.append(self.dead_letter(message, str(exc)))
                continue
            problem = self._storable_problem(event)
            if problem is not None:
                dead.append(self.dead_letter(message, problem))
            elif isinstance(event, OrderUpdated):
                held = batch.orders.get(event.order.order_id)
                if held is None or event.order.version > held.version:
                    batch.orders[event.order.order_id] = event.order
            else:
                batch.fills.append(event.fill)
        return batch, dead

    @staticmethod
    def _storable_problem(event: OrderUpdated | FillReported) -> str | None:
        if isinstance(event, OrderUpdated):
            return storable_problem(ORDERS, order_row(event.order))
        return storable_problem(FILLS, fill_row(event.fill))

    def write(self, cur: psycopg.Cursor[Any], batch: OrderBatch) -> int:
        if batch.orders:
            rows = []
            for order in batch.orders.values():
                row = list(order_row(order))
                if row[_VENUE_RESPONSE] is not None:
                    row[_VENUE_RESPONSE] = Jsonb(row[_VENUE_RESPONSE], dumps=json_dumps)
                rows.append(row)
            cur.executemany(_UPSERT_ORDER, rows)
        if batch.fills:
            cur.executemany(_INSERT_FILL, [fill_row(fill) for fill in batch.fills])
        return len(batch.orders) + len(batch.fills)

    def after_commit(self, batch: OrderBatch) -> None:
        for order in batch.orders.values():
            with traced(order.trace_id):
                log.debug("order_written", order_id=order.order_id, status=order.status.value,
                          version=order.version, reason_code=order.reason_code)
        for fill in batch.fills:
            with traced(fill.trace_id):
                log.debug("fill_written", order_id=fill.order_id, venue=fill.venue,
                          venue_trade_id=fill.venue_trade_id, quantity=str(fill.quantity), price=str(fill.price))
