"""Quote validation for the tick path, at several hundred thousand quotes per second, with the model's verdict.

Every message is validated in full. Most arrive in the exact form `encode(Quote)` produces; for those one
compiled regex proves the JSON shape (key order, string/number types) and the lexical form of each value, and
the checks that need values (bid <= ask, a real calendar date and time) run on Decimal and datetime: no dict,
no pydantic model, about 1.7 us per quote against about 4 us for `Quote.model_validate_json`.
Anything else (another key order, whitespace, numbers instead of strings, an invalid value) is decided by the
pydantic `Quote` model itself, so the fast path can only ever accept what the model accepts, and a rejection
always carries the model's reason. The hypothesis tests in tests/unit/sinks hold the two paths to that.

A quote the model accepts can still be one Postgres cannot store (a NUL in a text column, a seq beyond bigint,
a numeric beyond Postgres' range); `quote_row` rejects those too rather than failing the whole batch.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from core.market import Quote
from sinks.schema import TICKS, storable_problem
from streams.records import RecordError, decode, encode

# Non-negative and finite by construction, and well inside numeric's range; the exponent is how str(Decimal)
# writes small sizes (1E-8).
_DECIMAL = rb'"(\d{1,40}(?:\.\d{1,40})?(?:E[+-]?\d{1,4})?)"'
_TIMESTAMP = rb'"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d))"'
_CANONICAL = re.compile(
    rb'\{"schema_version":1,"instrument_id":"([^"\\\x00-\x1f]+)"'  # no escapes, no control chars: copy-safe
    rb',"bid":' + _DECIMAL + rb',"ask":' + _DECIMAL + rb',"bid_size":' + _DECIMAL + rb',"ask_size":' + _DECIMAL
    + rb',"ts":' + _TIMESTAMP + rb',"seq":(0|[1-9]\d{0,17})\}'  # 18 digits always fit a bigint
).fullmatch

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class QuoteRow(NamedTuple):
    """One validated quote, ready for the ticks table and the latest-quote hash (a tuple: cheap to build)."""

    instrument_id: str
    copy_line: bytes
    """The row in COPY text format (ts, instrument_id, bid, ask, bid_size, ask_size, seq), newline included."""
    quote_json: bytes


class UnstorableError(RecordError):
    """A valid quote that Postgres cannot hold as it is."""


def quote_row(raw: bytes | None) -> QuoteRow:
    """Validate one md.quotes message; raise RecordError (the model's reason) or UnstorableError."""
    row = _fast_row(raw) if raw is not None else None
    if row is not None:
        return row
    quote = decode(Quote, raw)
    return QuoteRow(quote.instrument_id, copy_line(quote), encode(quote))


def _fast_row(raw: bytes) -> QuoteRow | None:
    """The row when `raw` is a canonical and fully valid quote; None means "let the model decide"."""
    match = _CANONICAL(raw)
    if match is None:
        return None
    instrument_id, bid, ask, bid_size, ask_size, ts, seq = match.groups()
    try:
        if Decimal(bid.decode()) > Decimal(ask.decode()):
            return None
        datetime.fromisoformat(ts.decode())  # the regex checks the shape; this checks the calendar and clock
        name = instrument_id.decode()
    except ValueError:  # includes UnicodeDecodeError: not UTF-8
        return None
    return QuoteRow(name, b"\t".join((ts, instrument_id, bid, ask, bid_size, ask_size, seq)) + b"\n", raw)


def copy_line(quote: Quote) -> bytes:
    """A model-validated quote as a COPY text row, or UnstorableError when Postgres could not store it."""
    values = (quote.ts, quote.instrument_id, quote.bid, quote.ask, quote.bid_size, quote.ask_size, quote.seq)
    problem = storable_problem(TICKS, values)
    if problem is not None:
        raise UnstorableError(problem)
    text = (quote.ts.astimezone(UTC).isoformat(), quote.instrument_id.translate(_COPY_ESCAPES),
            *(str(v) for v in values[2:]))
    return "\t".join(text).encode() + b"\n"
