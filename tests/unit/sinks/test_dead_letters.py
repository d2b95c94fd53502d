"""Dead-letter records: where a refused message came from, its exact bytes, the reason and the consumer."""

from __future__ import annotations

from sinks.base import build_dead_letter
from sinks.dead_letters import dead_letter_row
from sinks.schema import DEAD_LETTERS
from streams.records import DeadLetter, decode, encode
from tests.kit.builders import T0


def test_dead_letter_keeps_the_source_coordinates_bytes_and_reason() -> None:
    letter = build_dead_letter(topic="t1.md.quotes", partition=3, offset=42, key=b"crypto_spot:BTC-USD",
                               value=b"\x00not json\xff", error="(value): Invalid JSON", consumer="sink:ticks", at=T0)
    assert (letter.source_topic, letter.partition, letter.offset) == ("t1.md.quotes", 3, 42)
    assert letter.key == "crypto_spot:BTC-USD"
    assert letter.raw_value == b"\x00not json\xff"
    assert (letter.error, letter.consumer, letter.at) == ("(value): Invalid JSON", "sink:ticks", T0)
    assert decode(DeadLetter, encode(letter)) == letter


def test_dead_letter_of_an_empty_message_with_a_binary_key() -> None:
    letter = build_dead_letter(topic="t", partition=0, offset=0, key=b"\xff\xfe", value=None,
                               error="empty message value", consumer="sink:ticks", at=T0)
    assert letter.key == "\\xff\\xfe"
    assert letter.raw_value == b""


def test_no_key_stays_none() -> None:
    letter = build_dead_letter(topic="t", partition=0, offset=7, key=None, value=b"x", error="e", consumer="c", at=T0)
    assert letter.key is None


def test_dead_letter_row_follows_the_table_columns() -> None:
    letter = build_dead_letter(topic="t", partition=1, offset=2, key=b"k", value=b"v", error="why", consumer="c",
                               at=T0)
    row = dict(zip(DEAD_LETTERS.column_names, dead_letter_row(letter), strict=True))
    assert row == {"at": T0, "source_topic": "t", "partition": 1, "offset": 2, "key": "k", "error": "why",
                   "consumer": "c", "value_b64": "dg=="}


def test_dead_letter_row_escapes_text_postgres_would_refuse() -> None:
    letter = build_dead_letter(topic="t", partition=0, offset=0, key=b"a\x00b", value=b"", error="bad \ud800 here",
                               consumer="c", at=T0)
    row = dict(zip(DEAD_LETTERS.column_names, dead_letter_row(letter), strict=True))
    assert row["key"] == "a\\x00b"
    assert row["error"] == "bad \\ud800 here"
