"""The sink that files dead letters in Postgres, where dashboards and people can look at them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg

from sinks.base import BatchSink, Message
from sinks.schema import DEAD_LETTERS, insert_statement
from streams.records import DeadLetter, RecordError, decode
from streams.topics import DEAD_LETTER, TopicSpec


def dead_letter_row(letter: DeadLetter) -> tuple[Any, ...]:
    """The row for a dead letter; text Postgres would refuse (NUL, lone surrogates) is written escaped, since
    a dead letter must always be filable."""
    return (letter.at, _text(letter.source_topic), letter.partition, letter.offset,
            None if letter.key is None else _text(letter.key), _text(letter.error), _text(letter.consumer),
            letter.value_b64)


def _text(value: str) -> str:
    return value.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


@dataclass
class DeadLetterBatch:
    rows: list[tuple[Any, ...]]


_INSERT = insert_statement(DEAD_LETTERS, 'ON CONFLICT (consumer, source_topic, "partition", "offset") DO NOTHING')


class DeadLetterSink(BatchSink[DeadLetterBatch]):
    """deadletter -> dead_letters. A record here that does not decode is filed as a dead letter of this sink
    itself, straight into the table: sending it back to the dead-letter topic would loop."""

    name = "dead_letters"
    topics: ClassVar[tuple[TopicSpec, ...]] = (DEAD_LETTER,)

    def decode(self, messages: list[Message]) -> tuple[DeadLetterBatch, list[DeadLetter]]:
        rows = []
        for message in messages:
            try:
                letter = decode(DeadLetter, message.value())
            except RecordError as exc:
                letter = self.dead_letter(message, str(exc))
            rows.append(dead_letter_row(letter))
        return DeadLetterBatch(rows), []

    def write(self, cur: psycopg.Cursor[Any], batch: DeadLetterBatch) -> int:
        if batch.rows:
            cur.executemany(_INSERT, batch.rows)
        return len(batch.rows)
