"""reference.instruments -> instruments (upsert by instrument id, the newest record wins)."""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
from psycopg.types.json import Jsonb

from sinks.base import BatchSink, Message
from sinks.schema import INSTRUMENTS, insert_statement, json_dumps
from streams.records import DeadLetter, InstrumentListed, decode
from streams.topics import REFERENCE_INSTRUMENTS, TopicSpec

_VENUE_SYMBOLS = INSTRUMENTS.column_names.index("venue_symbols")
_UPSERT = insert_statement(INSTRUMENTS, (
    "ON CONFLICT (instrument_id) DO UPDATE SET "
    + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in INSTRUMENTS.column_names if c != "instrument_id")
    # A replay of the compacted topic, or an older worker publishing late, never takes a row back.
    + " WHERE instruments.updated_at <= EXCLUDED.updated_at"))


def instrument_row(record: InstrumentListed) -> tuple[Any, ...]:
    """The record as an instruments row, in column order (venue_symbols still a plain JSON value)."""
    i = record.instrument
    return (i.instrument_id, i.asset_class.value, i.venue.value, i.quote_currency, i.tick_size, i.lot_size,
            i.multiplier, i.expiry, {venue.value: symbol for venue, symbol in i.venue_symbols.items()}, i.tradeable,
            i.status, i.settlement_price, list(record.listed_by), record.updated_at)


class InstrumentSink(BatchSink[dict[str, tuple[Any, ...]]]):
    """Batches are the newest row per instrument id."""

    name = "instruments"
    topics: ClassVar[tuple[TopicSpec, ...]] = (REFERENCE_INSTRUMENTS,)

    def decode(self, messages: list[Message]) -> tuple[dict[str, tuple[Any, ...]], list[DeadLetter]]:
        rows: dict[str, tuple[Any, ...]] = {}
        dead: list[DeadLetter] = []
        for message in messages:
            row = self.storable_row(message, INSTRUMENTS,
                                    lambda m: instrument_row(decode(InstrumentListed, m.value())), dead)
            if row is None:
                continue
            held = rows.get(row[0])
            if held is None or row[-1] >= held[-1]:
                rows[row[0]] = row
        return rows, dead

    def write(self, cur: psycopg.Cursor[Any], batch: dict[str, tuple[Any, ...]]) -> int:
        if batch:
            rows = []
            for row in batch.values():
                values = list(row)
                values[_VENUE_SYMBOLS] = Jsonb(values[_VENUE_SYMBOLS], dumps=json_dumps)
                rows.append(values)
            cur.executemany(_UPSERT, rows)
        return len(batch)
