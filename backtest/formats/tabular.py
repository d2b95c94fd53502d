"""Bars and trades from CSV and Parquet files with named columns.

Bars    ts, open, high, low, close, volume; instrument_id unless the import names the instrument.
Trades  venue, trade_id, ts, price, size, optionally taker_side (buy, sell or empty); instrument_id unless the
        import names the instrument. venue is one of `core.instruments.Venue`.

CSV: a header line, comma separated, UTF-8; ts in ISO 8601 with a UTC offset (2026-01-05T14:30:00Z); numbers as
plain decimals; spaces around a field are trimmed; empty lines are skipped. Parquet: ts a timestamp column with
a time zone (any unit; a sub-microsecond value is refused), numbers decimal, integer or string columns (a float
column is refused), other columns strings. An unknown or missing column refuses the whole file.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic

import pyarrow as pa
import pyarrow.parquet as pq

from backtest.formats.common import (
    EPOCH,
    BadRow,
    Bar,
    FieldError,
    FileFormatError,
    Parsed,
    R,
    Row,
    Trade,
    decimal_field,
    make_bar,
    make_trade,
    resolve_instrument,
    side_field,
    text_field,
    time_field,
    venue_field,
)

BATCH_ROWS = 65_536
_MICROS_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}


@dataclass(frozen=True)
class Columns(Generic[R]):
    required: frozenset[str]
    optional: frozenset[str]
    numeric: frozenset[str]
    make: Callable[[Mapping[str, Any], str | None], R]

    def check(self, path: Path, names: Sequence[str], instrument_id: str | None) -> None:
        problems = []
        if len(set(names)) != len(names):
            problems.append(f"repeated columns {sorted({n for n in names if names.count(n) > 1})}")
        if missing := self.required - set(names):
            problems.append(f"missing columns {sorted(missing)}")
        if unknown := set(names) - self.required - self.optional:
            problems.append(f"unknown columns {sorted(unknown)}")
        if "instrument_id" not in names and instrument_id is None:
            problems.append("no instrument_id column: pass instrument_id")
        if problems:
            raise FileFormatError(f"{path}: {'; '.join(problems)}")


def _bar(values: Mapping[str, Any], instrument_id: str | None) -> Bar:
    return make_bar(resolve_instrument(values, instrument_id), time_field("ts", values["ts"]),
                    *(decimal_field(name, values[name]) for name in ("open", "high", "low", "close", "volume")))


def _trade(values: Mapping[str, Any], instrument_id: str | None) -> Trade:
    return make_trade(venue_field("venue", values["venue"]), text_field("trade_id", values["trade_id"]),
                      resolve_instrument(values, instrument_id), time_field("ts", values["ts"]),
                      decimal_field("price", values["price"]), decimal_field("size", values["size"]),
                      side_field("taker_side", values.get("taker_side")))


BAR_COLUMNS = Columns(required=frozenset({"ts", "open", "high", "low", "close", "volume"}),
                      optional=frozenset({"instrument_id"}),
                      numeric=frozenset({"open", "high", "low", "close", "volume"}), make=_bar)
TRADE_COLUMNS = Columns(required=frozenset({"venue", "trade_id", "ts", "price", "size"}),
                        optional=frozenset({"instrument_id", "taker_side"}),
                        numeric=frozenset({"price", "size"}), make=_trade)


def read_csv(path: Path, columns: Columns[R], instrument_id: str | None) -> Iterator[Parsed[R]]:
    # surrogateescape: a byte that is not UTF-8 makes its row bad (it fails its field's check) instead of
    # aborting the file.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader)
        except StopIteration:
            raise FileFormatError(f"{path}: empty file, no header line") from None
        except csv.Error as exc:
            raise FileFormatError(f"{path}: unreadable header line ({exc})") from None
        names = [name.strip() for name in header]
        columns.check(path, names, instrument_id)
        index = 0
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield BadRow(file=str(path), line=start, row=index, reason=f"unreadable CSV row: {exc}")
                index += 1
                continue
            if not cells:
                continue
            try:
                if len(cells) != len(names):
                    raise FieldError(f"expected {len(names)} fields, got {len(cells)}")
                values = dict(zip(names, (cell.strip() for cell in cells), strict=True))
                yield Row(columns.make(values, instrument_id), start, index)
            except FieldError as exc:
                yield BadRow(file=str(path), line=start, row=index, reason=str(exc))
            index += 1


def read_parquet(path: Path, columns: Columns[R], instrument_id: str | None) -> Iterator[Parsed[R]]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileFormatError(f"{path}: not a readable Parquet file ({exc})") from None
    schema = parquet.schema_arrow
    columns.check(path, schema.names, instrument_id)
    problems = [p for p in (_type_problem(field, columns) for field in schema) if p is not None]
    if problems:
        raise FileFormatError(f"{path}: {'; '.join(problems)}")
    unit: str = schema.field("ts").type.unit
    index = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
        # Times as raw integers: pyarrow would hand nanoseconds over as pandas objects or truncate them.
        times = batch.column("ts").cast(pa.int64()).to_pylist()
        rows = batch.drop_columns(["ts"]).to_pylist()
        for values, raw in zip(rows, times, strict=True):
            try:
                values["ts"] = _arrow_time(raw, unit)
                yield Row(columns.make(values, instrument_id), None, index)
            except FieldError as exc:
                yield BadRow(file=str(path), line=None, row=index, reason=str(exc))
            index += 1


def _type_problem(field: Any, columns: Columns[Any]) -> str | None:
    kind = field.type
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    if field.name == "ts":
        ok = pa.types.is_timestamp(kind) and kind.tz is not None
        expected = "a timestamp with a time zone"
    elif field.name in columns.numeric:
        if pa.types.is_floating(kind):
            return f"column {field.name} is {kind}: floats are refused for prices and sizes (write decimal or string)"
        ok = pa.types.is_decimal(kind) or pa.types.is_integer(kind) or text
        expected = "decimal, integer or string"
    else:
        ok, expected = text, "string"
    return None if ok else f"column {field.name} is {kind}, expected {expected}"


def _arrow_time(raw: int | None, unit: str) -> datetime:
    """A timestamp column's integer (a UTC instant in `unit`, whatever the column's zone) as a datetime."""
    if raw is None:
        raise FieldError("ts is missing")
    if unit == "ns":
        micros, rest = divmod(raw, 1_000)
        if rest:
            raise FieldError(f"ts has sub-microsecond precision ({raw} ns); times are stored in microseconds")
    else:
        micros = raw * _MICROS_PER_UNIT[unit]
    try:
        return EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        raise FieldError(f"ts {raw} {unit} is outside the supported range of times") from None
