"""What every reader shares: the records, where a row sits in its file, why a row is bad, strict field parsers.

Numbers become Decimal from their text (or from a Parquet decimal or integer); a float is refused wherever it
appears, since it has already lost precision. Times become UTC-aware datetimes; a time without a UTC offset is
refused rather than guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeAlias, TypeVar

from core.instruments import Venue
from core.types import Frozen, Side

INTEGER_DIGITS = 20
SCALE = 18
"""Every number must fit numeric(38, 18), the decimal type of the Parquet files (decimal128(38, 18))."""
QUANTUM = Decimal(1).scaleb(-SCALE)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INSTRUMENT_ID = re.compile(r"[a-z_]+:[A-Za-z0-9._\-]+")
"""The shape `core.instruments.Instrument` requires of an instrument id."""
INSTRUMENT_ID_MAX = 128
JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})

_DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_UNIX_SECONDS = re.compile(r"\d{1,11}")


class FileFormatError(ValueError):
    """The file as a whole cannot be read in the requested format: nothing of it is imported."""


class FieldError(ValueError):
    """A field of one row is missing or invalid: the row is reported as bad, the import goes on."""


class BadRow(Frozen):
    file: str
    line: int | None
    """1-based line where the row starts (CSV) or where its page is (JSON Lines); None for Parquet and for a
    single JSON document."""
    row: int | None
    """0-based index of the data row (CSV, Parquet) or of the record in its page's array (JSON); None when a
    whole JSON Lines line is unreadable."""
    reason: str

    def __str__(self) -> str:
        where = [self.file]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.row is not None:
            where.append(f"row {self.row}")
        return f"{', '.join(where)}: {self.reason}"


# Records are plain frozen dataclasses, not pydantic models: an import makes millions of them and the readers
# have validated every field already.
@dataclass(frozen=True, slots=True)
class Bar:
    instrument_id: str
    ts: datetime
    """Start of the bar, UTC."""
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    venue: str
    trade_id: str
    instrument_id: str
    ts: datetime
    price: Decimal
    size: Decimal
    taker_side: Side | None
    """The aggressor's side, None when the source does not say."""


R = TypeVar("R", Bar, Trade)


@dataclass(frozen=True, slots=True)
class Row(Generic[R]):
    record: R
    line: int | None
    row: int


Parsed: TypeAlias = Row[R] | BadRow


def make_bar(instrument_id: str, ts: datetime, open_: Decimal, high: Decimal, low: Decimal, close: Decimal,
             volume: Decimal) -> Bar:
    if low < 0:
        raise FieldError(f"low {low} is negative")
    if low > high:
        raise FieldError(f"low {low} is above high {high}")
    for name, price in (("open", open_), ("close", close)):
        if not low <= price <= high:
            raise FieldError(f"{name} {price} is outside [low {low}, high {high}]")
    if volume < 0:
        raise FieldError(f"volume {volume} is negative")
    return Bar(instrument_id, ts, open_, high, low, close, volume)


def make_trade(venue: str, trade_id: str, instrument_id: str, ts: datetime, price: Decimal, size: Decimal,
               taker_side: Side | None) -> Trade:
    if price < 0:
        raise FieldError(f"price {price} is negative")
    if size <= 0:
        raise FieldError(f"size {size} is not positive")
    return Trade(venue, trade_id, instrument_id, ts, price, size, taker_side)


# --- Fields ---------------------------------------------------------------------------------------------------


class JsonNumber(str):
    """A number of a JSON document, kept as its text so that a field the venue sends as a string can refuse it."""

    __slots__ = ()


def load_json(text: str) -> Any:
    return json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=JsonNumber)


def text_field(name: str, value: Any) -> str:
    if value is None:
        raise FieldError(f"{name} is missing")
    if isinstance(value, JsonNumber):
        raise FieldError(f"{name} is the JSON number {value}; the venue sends a string")
    if not isinstance(value, str):
        raise FieldError(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise FieldError(f"{name} is empty")
    return value


def decimal_field(name: str, value: Any, *, max_places: int | None = None) -> Decimal:
    """A decimal from a plain decimal string (no exponent, no NaN), a Decimal or an int; never from a float.

    `max_places` limits the digits a string may have after the point (a venue's fixed-point format).
    """
    if type(value) is str:  # CSV cells and JSON strings, the bulk of every import: checked first
        number = _decimal_text(name, value, max_places)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, JsonNumber):
        raise FieldError(f"{name} is the JSON number {value}; the venue sends a decimal string")
    elif isinstance(value, float):
        raise FieldError(f"{name} is the float {value!r}; floats are refused for prices and sizes")
    else:
        number = _decimal_text(name, text_field(name, value), max_places)
    return _storable(name, number)


def _decimal_text(name: str, text: str, max_places: int | None) -> Decimal:
    if not _DECIMAL.fullmatch(text):
        raise FieldError(f"{name} is empty" if not text else f"{name} is not a plain decimal: {text!r}")
    if max_places is not None and len(text.partition(".")[2]) > max_places:
        raise FieldError(f"{name} has more than {max_places} decimal places: {text!r}")
    return Decimal(text)


def _storable(name: str, number: Decimal) -> Decimal:
    _, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):
        raise FieldError(f"{name} is not finite: {number}")
    if exponent < -SCALE:
        # Only trailing zeros may reach beyond the scale; dropping them lets the number fit decimal128(38, 18).
        if any(digits[exponent + SCALE:]):
            raise FieldError(f"{name} has more than {SCALE} significant decimal places: {number}")
        number = number.quantize(QUANTUM)
    if len(digits) + exponent > INTEGER_DIGITS and any(digits):
        raise FieldError(f"{name} has more than {INTEGER_DIGITS} integer digits: {number}")
    return number


def time_field(name: str, value: Any) -> datetime:
    """A UTC time from an aware datetime or an ISO 8601 string with an offset and at most microseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise FieldError(f"{name} has no time zone")
        return value.astimezone(UTC)
    text = text_field(name, value)
    if not _ISO_TIME.fullmatch(text):
        raise FieldError(f"{name} is not an ISO 8601 time with a UTC offset and at most microseconds: {text!r}")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:  # e.g. month 13
        raise FieldError(f"{name} is not a valid time: {text!r} ({exc})") from None


def unix_seconds_field(name: str, value: Any) -> datetime:
    text = text_field(name, value)
    if not _UNIX_SECONDS.fullmatch(text):
        raise FieldError(f"{name} is not a count of unix seconds: {text!r}")
    return EPOCH + timedelta(seconds=int(text))


def instrument_field(name: str, value: Any) -> str:
    text = text_field(name, value)
    if len(text) > INSTRUMENT_ID_MAX or not INSTRUMENT_ID.fullmatch(text):
        raise FieldError(f"{name} is not an instrument id like crypto_spot:BTC-USD: {text!r}")
    return text


def venue_field(name: str, value: Any) -> str:
    text = text_field(name, value)
    if text not in {v.value for v in Venue}:
        raise FieldError(f"{name} {text!r} is not a known venue ({', '.join(v.value for v in Venue)})")
    return text


def side_field(name: str, value: Any) -> Side | None:
    if value is None or value == "":
        return None
    text = text_field(name, value)
    try:
        return Side(text)
    except ValueError:
        raise FieldError(f"{name} must be buy or sell, got {text!r}") from None


def resolve_instrument(values: Mapping[str, Any], requested: str | None) -> str:
    """The row's instrument: its own `instrument_id` field, which must agree with `requested` when both exist."""
    if "instrument_id" not in values:
        if requested is None:
            raise FieldError("instrument_id is missing")
        return requested
    own = instrument_field("instrument_id", values["instrument_id"])
    if requested is not None and own != requested:
        raise FieldError(f"instrument_id {own} is not the requested {requested}")
    return own


def check_instrument_id(instrument_id: str | None) -> None:
    if instrument_id is not None:
        try:
            instrument_field("instrument_id", instrument_id)
        except FieldError as exc:
            raise ValueError(str(exc)) from None


# --- JSON pages -----------------------------------------------------------------------------------------------


def read_json_records(path: Path, array: str, parse: Callable[[Mapping[str, Any]], R]) -> Iterator[Parsed[R]]:
    """The records of `array` in a venue's response pages: one response document, or JSON Lines (.jsonl,
    .ndjson) with one response per line, as a paginated download writes them. A JSON Lines line that is not a
    page is one bad row; a single document that is not a page is a `FileFormatError`."""
    for line, page in _pages(path, array):
        if isinstance(page, BadRow):
            yield page
            continue
        for index, item in enumerate(page):
            try:
                if not isinstance(item, dict):
                    raise FieldError(f"{array}[{index}] is not a JSON object")
                yield Row(parse(item), line, index)
            except FieldError as exc:
                yield BadRow(file=str(path), line=line, row=index, reason=str(exc))


def _pages(path: Path, array: str) -> Iterator[tuple[int | None, list[Any] | BadRow]]:
    if path.suffix.lower() not in JSON_LINES_SUFFIXES:
        try:
            yield None, _page_items(load_json(path.read_text(encoding="utf-8")), array)
        except (ValueError, FieldError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise FileFormatError(f"{path}: {exc}") from None
        return
    with path.open(encoding="utf-8", errors="surrogateescape") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                yield number, _page_items(load_json(text), array)
            except json.JSONDecodeError as exc:
                # The decoder's own position counts lines inside the text; the column is what locates it here.
                reason = f"not valid JSON at column {exc.colno}: {exc.msg}"
                yield number, BadRow(file=str(path), line=number, row=None, reason=reason)
            except FieldError as exc:
                yield number, BadRow(file=str(path), line=number, row=None, reason=str(exc))


def _page_items(document: Any, array: str) -> list[Any]:
    if not isinstance(document, dict) or not isinstance(document.get(array), list):
        raise FieldError(f"not a response page: expected an object with a {array!r} array")
    items: list[Any] = document[array]
    return items
