"""Market data for the engine: bars and quotes from files, validated once, merged into one timeline.

Bars are read by the importer's readers (`backtest.formats.tabular`: CSV or Parquet, columns `ts, instrument_id,
open, high, low, close, volume`, the same files `tradestream import` writes), where `ts` is the bar's start; a
bar covers [ts, ts + interval) and is delivered at its end. The interval is given, or inferred per instrument as
the smallest gap between its bars. Quotes are CSV with columns `ts, instrument_id, bid, ask, bid_size, ask_size`
and optionally `seq`. A backtest stops at the first bad row, naming the file, the row and the reason: it never
runs on part of its data.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

from pydantic import ValidationError

from backtest.formats import common, tabular
from core.market import Bar, Quote

QUOTE_COLUMNS = ("ts", "instrument_id", "bid", "ask", "bid_size", "ask_size")
_ONE = Decimal(1)


class DataError(ValueError):
    """The data cannot be used: the file, the row and what is wrong."""


@dataclass(frozen=True)
class MarketData:
    """Bars and quotes in delivery order: a bar at its end, a quote at its time; at equal times bars come first."""

    events: list[Bar | Quote]
    quoted: frozenset[str]
    """Instruments with quotes: their touch comes from the quotes, not from bar closes."""
    bar_count: int
    quote_count: int


def market_data(bars: Sequence[Bar] = (), quotes: Sequence[Quote] = ()) -> MarketData:
    """Merge bars and quotes into one timeline; the sort is stable, so equal times keep their input order."""
    events: list[Bar | Quote] = sorted([*bars, *quotes], key=lambda e: (delivered_at(e), isinstance(e, Quote)))
    return MarketData(events, frozenset(q.instrument_id for q in quotes), len(bars), len(quotes))


def delivered_at(event: Bar | Quote) -> datetime:
    return event.ts_end if isinstance(event, Bar) else event.ts


def load_bars(paths: Sequence[Path], interval: timedelta | None = None) -> list[Bar]:
    """Bars from CSV or Parquet files; (instrument, start) must be unique across them."""
    if interval is not None and interval <= timedelta(0):
        raise DataError(f"bar interval must be positive, got {interval}")
    records: list[common.Bar] = []
    for path in paths:
        records.extend(_bar_records(path))
    starts: dict[str, list[datetime]] = {}
    for record in records:
        starts.setdefault(record.instrument_id, []).append(record.ts)
    for instrument_id, times in starts.items():
        if len(set(times)) != len(times):
            raise DataError(f"{instrument_id}: more than one bar for the same start time")
    length = interval or _smallest_gap(starts)
    try:
        return [Bar.parse(r.instrument_id, _plain(r.open), _plain(r.high), _plain(r.low), _plain(r.close),
                          _plain(r.volume), r.ts, r.ts + length) for r in records]
    except ValueError as exc:
        raise DataError(str(exc)) from None


def _plain(value: Decimal) -> Decimal:
    """The number without trailing zeros, never in exponent form. Parquet decimals carry 18 places (231.5 comes
    back as 231.500000000000000000), which would eat into the 28 digits of every sum and product of money."""
    whole = value.to_integral_value()
    return whole.quantize(_ONE) if value == whole else value.normalize()


def load_quotes(paths: Sequence[Path]) -> list[Quote]:
    return [quote for path in paths for quote in _quotes(path)]


def _bar_records(path: Path) -> list[common.Bar]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    read = tabular.read_parquet if path.suffix.lower() == ".parquet" else tabular.read_csv
    records = []
    try:
        for parsed in read(path, tabular.BAR_COLUMNS, None):
            if isinstance(parsed, common.BadRow):
                raise DataError(str(parsed))
            records.append(parsed.record)
    except common.FileFormatError as exc:
        raise DataError(str(exc)) from None
    return records


def _quotes(path: Path) -> list[Quote]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    quotes = []
    seqs: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in QUOTE_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise DataError(f"{path}: missing columns {', '.join(missing)}")
        for row in reader:
            where = f"{path} line {reader.line_num}"
            try:
                instrument_id = common.instrument_field("instrument_id", row["instrument_id"])
                seq = row.get("seq")
                seqs[instrument_id] = int(seq) if seq else seqs.get(instrument_id, -1) + 1
                quotes.append(Quote(
                    instrument_id=instrument_id, ts=common.time_field("ts", row["ts"]), seq=seqs[instrument_id],
                    **{c: common.decimal_field(c, row[c]) for c in ("bid", "ask", "bid_size", "ask_size")}))
            except common.FieldError as exc:
                raise DataError(f"{where}: {exc}") from None
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
                raise DataError(f"{where}: {problems}") from None
            except ValueError as exc:  # a seq that is not an integer
                raise DataError(f"{where}: {exc}") from None
    return quotes


def _smallest_gap(starts: dict[str, list[datetime]]) -> timedelta:
    gaps = [b - a for times in starts.values() for a, b in pairwise(sorted(times))]
    if not gaps:
        raise DataError("cannot infer the bar interval from fewer than two bars of an instrument; give it")
    return min(gaps)
