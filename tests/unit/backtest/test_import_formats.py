"""The readers: every format parsed, bad rows reported with their line or row and reason, floats refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backtest.formats import coinbase, kalshi, tabular
from backtest.formats.common import (
    BadRow,
    Bar,
    FieldError,
    FileFormatError,
    Parsed,
    R,
    Row,
    Trade,
    decimal_field,
    time_field,
)
from core.types import Side

HISTORY = Path(__file__).resolve().parents[2] / "resources" / "history"
BTC = "crypto_spot:BTC-USD"
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def split(items: list[Parsed[R]]) -> tuple[list[Row[R]], list[BadRow]]:
    return [i for i in items if isinstance(i, Row)], [i for i in items if isinstance(i, BadRow)]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- CSV ------------------------------------------------------------------------------------------------------


def test_bars_csv_parses_decimals_from_text_and_times_in_utc() -> None:
    rows, _ = split(list(tabular.read_csv(HISTORY / "bars.csv", tabular.BAR_COLUMNS, BTC)))

    assert rows[0] == Row(Bar(BTC, T0, Decimal("100.00"), Decimal("101.50"), Decimal("99.75"), Decimal("101.00"),
                              Decimal("12.5")), line=2, row=0)
    assert rows[2].record.ts == datetime(2026, 1, 5, 14, 32, tzinfo=UTC)
    assert rows[2].record.ts.tzinfo is UTC
    # Repeats stay rows here: duplicates and conflicts are decided against the database.
    assert [(r.line, r.row) for r in rows] == [(2, 0), (3, 1), (4, 2), (10, 7), (11, 8)]


def test_bars_csv_reports_each_bad_row_with_its_line_and_reason() -> None:
    _, bad = split(list(tabular.read_csv(HISTORY / "bars.csv", tabular.BAR_COLUMNS, BTC)))

    assert [(b.line, b.row) for b in bad] == [(5, 3), (6, 4), (7, 5), (8, 6), (12, 9)]
    reasons = [b.reason for b in bad]
    assert "ts is not an ISO 8601 time with a UTC offset" in reasons[0]
    assert reasons[1] == "low is not a plain decimal: '1.2e2'"
    assert reasons[2] == "low 101.80 is above high 101.00"
    assert reasons[3] == "expected 6 fields, got 5"
    assert reasons[4] == "volume is not a plain decimal: 'NaN'"
    assert all(b.file == str(HISTORY / "bars.csv") for b in bad)
    assert str(bad[0]).startswith(f"{HISTORY / 'bars.csv'}, line 5, row 3: ts is not")


def test_trades_csv_reads_optional_taker_side_and_checks_venue_and_instrument() -> None:
    rows, bad = split(list(tabular.read_csv(HISTORY / "trades.csv", tabular.TRADE_COLUMNS, None)))

    assert rows[0].record == Trade("coinbase", "cb-1", BTC, datetime(2026, 1, 5, 14, 30, 0, 250_000, tzinfo=UTC),
                                   Decimal("93250.12"), Decimal("0.015"), Side.BUY)
    assert rows[1].record.taker_side is Side.SELL
    assert rows[2].record.taker_side is None
    assert [(b.line, b.reason) for b in bad] == [
        (5, "size 0 is not positive"),
        (6, "venue 'binance' is not a known venue (kalshi, coinbase, ibkr, simulated)"),
        (7, "taker_side must be buy or sell, got 'hold'"),
        (8, "instrument_id is not an instrument id like crypto_spot:BTC-USD: 'BTC-USD'"),
    ]


def test_a_row_on_another_instrument_than_requested_is_bad() -> None:
    _, bad = split(list(tabular.read_csv(HISTORY / "trades.csv", tabular.TRADE_COLUMNS, BTC)))

    assert (4, "instrument_id crypto_spot:ETH-USD is not the requested crypto_spot:BTC-USD") in [
        (b.line, b.reason) for b in bad]


def test_unreadable_csv_row_is_bad_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv", "ts,open,high,low,close,volume\n"
                                       '2026-01-05T14:30:00Z,"100"x,101,99,100,1\n'
                                       "2026-01-05T14:31:00Z,100,101,99,100,1\n")

    rows, bad = split(list(tabular.read_csv(path, tabular.BAR_COLUMNS, BTC)))

    assert [(b.line, b.row) for b in bad] == [(2, 0)]
    assert bad[0].reason.startswith("unreadable CSV row")
    assert [(r.line, r.row) for r in rows] == [(3, 1)]


def test_csv_with_spaces_blank_lines_and_an_instrument_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv", " instrument_id , ts ,open,high,low,close,volume\n\n"
                                       f"{BTC}, 2026-01-05T14:30:00Z ,1,2,1,2,0\n")

    rows, bad = split(list(tabular.read_csv(path, tabular.BAR_COLUMNS, None)))

    assert bad == []
    assert [(r.record.instrument_id, r.line, r.row) for r in rows] == [(BTC, 3, 0)]


@pytest.mark.parametrize(("header", "instrument_id", "problem"), [
    ("ts,open,high,low,close", BTC, "missing columns ['volume']"),
    ("ts,open,high,low,close,volume,vwap", BTC, "unknown columns ['vwap']"),
    ("ts,open,open,high,low,close,volume", BTC, "repeated columns ['open']"),
    ("ts,open,high,low,close,volume", None, "no instrument_id column: pass instrument_id"),
])
def test_csv_header_problems_refuse_the_file(tmp_path: Path, header: str, instrument_id: str | None,
                                             problem: str) -> None:
    path = write(tmp_path, "bars.csv", header + "\n")

    with pytest.raises(FileFormatError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        list(tabular.read_csv(path, tabular.BAR_COLUMNS, instrument_id))


def test_empty_csv_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="no header"):
        list(tabular.read_csv(write(tmp_path, "bars.csv", ""), tabular.BAR_COLUMNS, BTC))


# --- Parquet --------------------------------------------------------------------------------------------------

DECIMAL = pa.decimal128(38, 18)


def parquet(tmp_path: Path, columns: dict[str, Any], types: dict[str, Any]) -> Path:
    path = tmp_path / "input.parquet"
    pq.write_table(pa.table({name: pa.array(values, type=types[name]) for name, values in columns.items()}), path)
    return path


BAR_TYPES = {"instrument_id": pa.string(), "ts": pa.timestamp("us", tz="UTC"), "open": DECIMAL, "high": DECIMAL,
             "low": DECIMAL, "close": pa.string(), "volume": pa.int64()}


def bar_columns(**overrides: list[Any]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {
        "instrument_id": [BTC, BTC], "ts": [T0, datetime(2026, 1, 5, 14, 31, tzinfo=UTC)],
        "open": [Decimal("100.5"), Decimal(101)], "high": [Decimal(102), Decimal(103)],
        "low": [Decimal(100), Decimal(100)], "close": ["101.25", "102"], "volume": [7, 0],
    }
    return {**columns, **overrides}


def test_parquet_bars_accept_decimal_string_and_integer_columns(tmp_path: Path) -> None:
    path = parquet(tmp_path, bar_columns(), BAR_TYPES)

    rows, bad = split(list(tabular.read_parquet(path, tabular.BAR_COLUMNS, None)))

    assert bad == []
    assert rows[0] == Row(Bar(BTC, T0, Decimal("100.5"), Decimal(102), Decimal(100), Decimal("101.25"), Decimal(7)),
                          line=None, row=0)
    assert rows[1].record.ts == datetime(2026, 1, 5, 14, 31, tzinfo=UTC)


def test_parquet_nanosecond_times_convert_exactly_and_refuse_sub_microseconds(tmp_path: Path) -> None:
    t0_ns = int(T0.timestamp()) * 1_000_000_000
    types = {**BAR_TYPES, "ts": pa.timestamp("ns", tz="America/New_York")}
    path = parquet(tmp_path, bar_columns(ts=[t0_ns + 5_000, t0_ns + 60_000_000_001]), types)

    rows, bad = split(list(tabular.read_parquet(path, tabular.BAR_COLUMNS, None)))

    assert [r.record.ts for r in rows] == [T0.replace(microsecond=5)]
    assert [(b.line, b.row) for b in bad] == [(None, 1)]
    assert "sub-microsecond" in bad[0].reason


def test_parquet_nulls_are_bad_rows(tmp_path: Path) -> None:
    path = parquet(tmp_path, bar_columns(close=["101", None]), BAR_TYPES)

    _, bad = split(list(tabular.read_parquet(path, tabular.BAR_COLUMNS, None)))

    assert [(b.row, b.reason) for b in bad] == [(1, "close is missing")]


@pytest.mark.parametrize(("column", "arrow_type", "values", "problem"), [
    ("close", pa.float64(), [101.25, 102.0], "column close is double: floats are refused"),
    ("ts", pa.timestamp("us"), [datetime(2026, 1, 5), datetime(2026, 1, 6)],  # noqa: DTZ001
     "column ts is timestamp\\[us\\], expected a timestamp with a time zone"),
    ("instrument_id", pa.int32(), [1, 2], "column instrument_id is int32, expected string"),
])
def test_parquet_column_of_the_wrong_type_refuses_the_file(tmp_path: Path, column: str, arrow_type: Any,
                                                            values: list[Any], problem: str) -> None:
    path = parquet(tmp_path, bar_columns(**{column: values}), {**BAR_TYPES, column: arrow_type})

    with pytest.raises(FileFormatError, match=problem):
        list(tabular.read_parquet(path, tabular.BAR_COLUMNS, None))


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="not a readable Parquet file"):
        list(tabular.read_parquet(HISTORY / "bars.csv", tabular.BAR_COLUMNS, BTC))


# --- Coinbase candles -----------------------------------------------------------------------------------------


def test_coinbase_candles_parse_string_numbers_and_unix_second_starts() -> None:
    rows, _ = split(list(coinbase.read_candles(HISTORY / "coinbase_candles.json", BTC)))

    assert [r.row for r in rows] == [0, 4, 5]
    assert rows[2].record == Bar(BTC, T0, Decimal("93200.00"), Decimal("93411.12"), Decimal("93100.50"),
                                 Decimal("93350.01"), Decimal("12.50310000"))
    assert rows[0].record.ts == datetime(2026, 1, 5, 14, 35, tzinfo=UTC)


def test_coinbase_candles_refuse_json_numbers_as_bad_rows() -> None:
    _, bad = split(list(coinbase.read_candles(HISTORY / "coinbase_candles.json", BTC)))

    assert [(b.line, b.row, b.reason) for b in bad] == [
        (None, 1, "volume -1 is negative"),
        (None, 2, "start is the JSON number 1767623580; the venue sends a string"),
        (None, 3, "low is the JSON number 93210.5; the venue sends a decimal string"),
    ]


def test_coinbase_candles_need_an_instrument() -> None:
    with pytest.raises(FileFormatError, match="pass instrument_id"):
        coinbase.read_candles(HISTORY / "coinbase_candles.json", None)


@pytest.mark.parametrize("document", ['{"candles": {}}', '[{"start": "1"}]', '{"candles": [', ""])
def test_a_document_that_is_not_a_candles_page_is_refused(tmp_path: Path, document: str) -> None:
    with pytest.raises(FileFormatError):
        list(coinbase.read_candles(write(tmp_path, "candles.json", document), BTC))


def test_a_candle_that_is_not_an_object_is_a_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path, "candles.json", json.dumps({"candles": [["1767623400", "1", "2", "1", "2", "0"]]}))

    assert list(coinbase.read_candles(path, BTC)) == [
        BadRow(file=str(path), line=None, row=0, reason="candles[0] is not a JSON object")]


# --- Kalshi trades --------------------------------------------------------------------------------------------

KX = "event_contract:KXHIGHNY-26JAN05-T60"


def test_kalshi_trades_become_yes_contract_trades_with_the_taker_side() -> None:
    rows, _ = split(list(kalshi.read_trades(HISTORY / "kalshi_trades.json", None)))

    assert [r.row for r in rows] == [0, 1, 7]
    assert rows[0].record == Trade("kalshi", "6f1c9a52-0001", KX, T0.replace(microsecond=123_000), Decimal("0.5600"),
                                   Decimal("10.00"), Side.BUY)
    assert (rows[1].record.price, rows[1].record.taker_side) == (Decimal("0.5500"), Side.SELL)  # bought NO
    assert rows[2].record.ts == datetime(2026, 1, 5, 14, 30, 8, 500_000, tzinfo=UTC)


def test_kalshi_trades_report_floats_contradictions_and_malformed_values() -> None:
    _, bad = split(list(kalshi.read_trades(HISTORY / "kalshi_trades.json", None)))

    assert [(b.row, b.reason) for b in bad] == [
        (2, "yes_price_dollars is the JSON number 0.57; the venue sends a decimal string"),
        (3, "taker_outcome_side yes contradicts taker_book_side ask"),
        (4, "yes_price_dollars 0.6000 + no_price_dollars 0.4100 is not 1"),
        (5, "count_fp has more than 2 decimal places: '1.005'"),
        (6, "created_time is not an ISO 8601 time with a UTC offset and at most microseconds: "
            "'2026-01-05T14:30:07'"),
    ]


def test_kalshi_trade_on_another_market_than_requested_is_bad() -> None:
    items = list(kalshi.read_trades(HISTORY / "kalshi_trades.json", "event_contract:KXOTHER-1"))

    rows, bad = split(items)
    assert rows == []
    assert bad[0].reason == f"trade on {KX}, not the requested event_contract:KXOTHER-1"


def test_kalshi_json_lines_pages_locate_rows_by_line_and_report_an_unreadable_line() -> None:
    rows, bad = split(list(kalshi.read_trades(HISTORY / "kalshi_trades_pages.jsonl", None)))

    assert [(r.line, r.row, r.record.trade_id) for r in rows] == [(1, 0, "p1-a"), (1, 1, "p1-b"), (3, 0, "p1-b"),
                                                                  (3, 1, "p3-a")]
    assert [(b.line, b.row) for b in bad] == [(2, None)]
    assert bad[0].reason.startswith("not valid JSON at column")
    assert rows[0].record.taker_side is Side.SELL


def test_kalshi_unknown_side_values_are_bad(tmp_path: Path) -> None:
    trade = {"trade_id": "x", "ticker": "K-1", "count_fp": "1.00", "yes_price_dollars": "0.5",
             "no_price_dollars": "0.5", "taker_outcome_side": "maybe", "taker_book_side": "bid",
             "created_time": "2026-01-05T14:30:00Z"}
    path = write(tmp_path, "trades.json", json.dumps({"trades": [trade]}))

    (bad,) = list(kalshi.read_trades(path, None))

    assert isinstance(bad, BadRow)
    assert bad.reason == "unknown taker side: taker_outcome_side 'maybe', taker_book_side 'bid'"


# --- Fields ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "problem"), [
    (1.5, "is the float 1.5"), ("1e3", "not a plain decimal"), ("NaN", "not a plain decimal"),
    (" 1", "not a plain decimal"), ("", "is empty"), (None, "is missing"), (True, "must be a string"),
    ("0." + "1" * 19, "more than 18 significant decimal places"), ("1" + "0" * 20, "more than 20 integer digits"),
    (Decimal("Infinity"), "not finite"),
])
def test_decimal_field_refuses(value: Any, problem: str) -> None:
    with pytest.raises(FieldError, match=problem):
        decimal_field("price", value)


def test_decimal_field_keeps_the_text_scale_and_drops_only_zeros_beyond_the_storable_scale() -> None:
    assert str(decimal_field("price", "100.50")) == "100.50"
    assert decimal_field("price", "-0.000000000000000001") == Decimal("-1E-18")
    assert str(decimal_field("price", Decimal("1." + "0" * 30))) == "1." + "0" * 18
    assert decimal_field("size", 7) == Decimal(7)


@pytest.mark.parametrize("text", ["2026-01-05T14:30:00", "2026-01-05", "2026-01-05T14:30:00.1234567Z",
                                  "2026-13-05T14:30:00Z", "1767623400"])
def test_time_field_refuses_times_without_offset_or_beyond_microseconds(text: str) -> None:
    with pytest.raises(FieldError):
        time_field("ts", text)


def test_time_field_converts_offsets_to_utc() -> None:
    assert time_field("ts", "2026-01-05T09:30:00-05:00") == T0
    assert time_field("ts", "2026-01-05T09:30:00-05:00").tzinfo is UTC
