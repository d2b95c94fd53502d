"""Historical import into the real Postgres: every format, re-import adds nothing, bad rows listed while good rows
land, conflicts never overwrite, Parquet output round-trips."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backtest.formats.common import FileFormatError
from backtest.importer import HistorySchemaError, ImportSummary, ensure_history_schema, import_file
from infra.services import Endpoints
from tradestream.config import Settings

pytestmark = pytest.mark.integration

HISTORY = Path(__file__).resolve().parents[1] / "resources" / "history"
T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


def query(settings: Settings, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(sql, params).fetchall()


def counts(summary: ImportSummary) -> tuple[int, int, int, int]:
    return summary.rows_read, summary.imported, summary.duplicates, summary.bad


def bars_of(settings: Settings, instrument_id: str) -> list[tuple[Any, ...]]:
    return query(settings, "SELECT ts, open, high, low, close, volume FROM bars WHERE instrument_id = %s ORDER BY ts",
                 (instrument_id,))


def test_history_schema_is_partitioned_like_the_read_model_and_idempotent(settings: Settings) -> None:
    with psycopg.connect(settings.dsn) as conn:
        ensure_history_schema(conn)
        ensure_history_schema(conn)

    assert query(settings, "SELECT relname, relkind::text FROM pg_class WHERE relname IN ('bars', 'trades_history') "
                           "ORDER BY relname") == [("bars", "p"), ("trades_history", "p")]
    managed = {r[0] for r in query(settings, "SELECT parent_table FROM partman.part_config")}
    assert {"public.bars", "public.trades_history"} <= managed
    assert query(settings, "SELECT count(*) FROM pg_class WHERE relname IN ('bars_default', 'trades_history_default')"
                 ) == [(2,)]


def test_bars_csv_imports_good_rows_lists_bad_ones_and_reimport_adds_nothing(settings: Settings) -> None:
    instrument = "crypto_spot:BTC-USD"

    first = import_file(HISTORY / "bars.csv", "bars-csv", settings.dsn, instrument_id=instrument)
    again = import_file(HISTORY / "bars.csv", "bars-csv", settings.dsn, instrument_id=instrument)

    assert counts(first) == (10, 3, 1, 6)
    assert [(b.line, b.row) for b in first.bad_rows] == [(5, 3), (6, 4), (7, 5), (8, 6), (11, 8), (12, 9)]
    assert first.bad_rows[4].reason == ("key instrument_id=crypto_spot:BTC-USD, ts=2026-01-05 14:30:00+00 is in row 0 "
                                        "(line 2) of this file with different values")
    assert counts(again) == (10, 0, 4, 6)
    assert again.bad_rows[4].reason == ("key instrument_id=crypto_spot:BTC-USD, ts=2026-01-05 14:30:00+00 is stored "
                                        "with different values")
    assert bars_of(settings, instrument) == [
        (T0, Decimal("100.00"), Decimal("101.50"), Decimal("99.75"), Decimal("101.00"), Decimal("12.5")),
        (T0 + timedelta(minutes=1), Decimal("101.00"), Decimal("101.25"), Decimal("100.50"), Decimal("100.75"),
         Decimal("8.25")),
        (T0 + timedelta(minutes=2), Decimal("100.75"), Decimal("102.00"), Decimal("100.75"), Decimal("101.90"),
         Decimal("20")),
    ]


def test_trades_csv_import(settings: Settings) -> None:
    summary = import_file(HISTORY / "trades.csv", "trades-csv", settings.dsn)

    assert counts(summary) == (8, 3, 1, 4)
    assert summary.table == "trades_history"
    assert query(settings, "SELECT trade_id, instrument_id, price, size, taker_side FROM trades_history "
                           "WHERE venue = 'coinbase' ORDER BY trade_id") == [
        ("cb-1", "crypto_spot:BTC-USD", Decimal("93250.12"), Decimal("0.015"), "buy"),
        ("cb-2", "crypto_spot:BTC-USD", Decimal("93251.00"), Decimal("0.5"), "sell"),
        ("cb-3", "crypto_spot:ETH-USD", Decimal("3310.5"), Decimal("1.25"), None),
    ]
    assert counts(import_file(HISTORY / "trades.csv", "trades-csv", settings.dsn)) == (8, 0, 4, 4)


def test_coinbase_candles_import(settings: Settings) -> None:
    instrument = "crypto_spot:SOL-USD"

    summary = import_file(HISTORY / "coinbase_candles.json", "coinbase-candles", settings.dsn, instrument_id=instrument)

    assert counts(summary) == (6, 3, 0, 3)
    assert [b.reason for b in summary.bad_rows][1:] == [
        "start is the JSON number 1767623580; the venue sends a string",
        "low is the JSON number 93210.5; the venue sends a decimal string",
    ]
    assert [row[0] for row in bars_of(settings, instrument)] == [T0, T0 + timedelta(minutes=1),
                                                                  T0 + timedelta(minutes=5)]
    assert bars_of(settings, instrument)[0][5] == Decimal("12.50310000")
    assert counts(import_file(HISTORY / "coinbase_candles.json", "coinbase-candles", settings.dsn,
                              instrument_id=instrument)) == (6, 0, 3, 3)


def test_kalshi_trades_import(settings: Settings) -> None:
    summary = import_file(HISTORY / "kalshi_trades.json", "kalshi-trades", settings.dsn)

    assert counts(summary) == (8, 3, 0, 5)
    assert query(settings, "SELECT trade_id, instrument_id, price, size, taker_side FROM trades_history "
                           "WHERE venue = 'kalshi' AND trade_id LIKE %s ORDER BY trade_id", ("6f1c9a52-%",)) == [
        ("6f1c9a52-0001", "event_contract:KXHIGHNY-26JAN05-T60", Decimal("0.5600"), Decimal("10.00"), "buy"),
        ("6f1c9a52-0002", "event_contract:KXHIGHNY-26JAN05-T60", Decimal("0.5500"), Decimal("3.00"), "sell"),
        ("6f1c9a52-0008", "event_contract:KXHIGHNY-26JAN05-T60", Decimal("0.5850"), Decimal("5.00"), "buy"),
    ]
    assert counts(import_file(HISTORY / "kalshi_trades.json", "kalshi-trades", settings.dsn)) == (8, 0, 3, 5)


def test_kalshi_pages_import_counts_a_trade_repeated_across_pages_once(settings: Settings) -> None:
    summary = import_file(HISTORY / "kalshi_trades_pages.jsonl", "kalshi-trades", settings.dsn)

    assert counts(summary) == (5, 3, 1, 1)
    assert [(b.line, b.row) for b in summary.bad_rows] == [(2, None)]


def test_a_conflicting_version_is_reported_and_the_stored_row_kept(settings: Settings, tmp_path: Path) -> None:
    original = tmp_path / "original.csv"
    original.write_text("venue,trade_id,instrument_id,ts,price,size\n"
                        "simulated,s-1,crypto_spot:BTC-USD,2026-01-05T14:30:00Z,100.00,1\n")
    corrected = tmp_path / "corrected.csv"
    corrected.write_text("venue,trade_id,instrument_id,ts,price,size\n"
                         "simulated,s-1,crypto_spot:BTC-USD,2026-01-05T14:30:00Z,100.10,1\n"
                         "simulated,s-2,crypto_spot:BTC-USD,2026-01-05T14:30:01Z,100.20,1\n")
    import_file(original, "trades-csv", settings.dsn)

    summary = import_file(corrected, "trades-csv", settings.dsn)

    assert counts(summary) == (2, 1, 0, 1)
    assert summary.bad_rows[0].reason == "key venue=simulated, trade_id=s-1 is stored with different values"
    assert query(settings, "SELECT trade_id, price FROM trades_history WHERE venue = 'simulated' AND trade_id "
                           "IN ('s-1', 's-2') ORDER BY trade_id") == [("s-1", Decimal("100.00")),
                                                                      ("s-2", Decimal("100.20"))]


def test_a_file_refused_as_a_whole_imports_nothing(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    path.write_text("ts,open,high,low,close,volume,vwap\n2026-01-05T14:30:00Z,1,1,1,1,1,1\n")
    before = query(settings, "SELECT count(*) FROM bars")

    with pytest.raises(FileFormatError, match="unknown columns"):
        import_file(path, "bars-csv", settings.dsn, instrument_id="crypto_spot:XRP-USD")

    assert query(settings, "SELECT count(*) FROM bars") == before


def test_parquet_output_round_trips_and_reimports_as_duplicates(settings: Settings, tmp_path: Path) -> None:
    instrument = "crypto_spot:ADA-USD"
    summary = import_file(HISTORY / "bars.csv", "bars-csv", settings.dsn, instrument_id=instrument,
                          parquet_dir=tmp_path)
    assert summary.parquet_path == tmp_path / "bars" / "bars.parquet"

    table = pq.read_table(summary.parquet_path)
    rows = table.to_pylist()

    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("close").type == pa.decimal128(38, 18)
    assert [(r["ts"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows] == bars_of(settings,
                                                                                                        instrument)
    assert {r["instrument_id"] for r in rows} == {instrument}
    again = import_file(summary.parquet_path, "bars-parquet", settings.dsn, parquet_dir=tmp_path / "again")
    assert counts(again) == (3, 0, 3, 0)
    assert pq.read_table(again.parquet_path).to_pylist() == rows


def test_parquet_trades_output_keeps_missing_taker_sides(settings: Settings, tmp_path: Path) -> None:
    summary = import_file(HISTORY / "trades.csv", "trades-csv", settings.dsn, parquet_dir=tmp_path)
    assert summary.parquet_path is not None

    rows = pq.read_table(summary.parquet_path).to_pylist()

    assert [(r["trade_id"], r["taker_side"], r["price"]) for r in rows] == [
        ("cb-1", "buy", Decimal("93250.12")), ("cb-2", "sell", Decimal("93251.00")), ("cb-3", None, Decimal("3310.5"))]


def seeded_bars(path: Path, instrument: str, count: int, seed: int) -> None:
    """A random walk of one-minute bars in a Parquet file, the way a vendor export would type it."""
    rng = random.Random(seed)
    price = Decimal("30000")
    columns: dict[str, list[Any]] = {k: [] for k in ("instrument_id", "ts", "open", "high", "low", "close", "volume")}
    for i in range(count):
        close = (price * Decimal(1 + rng.gauss(0, 0.001))).quantize(Decimal("0.01"))
        columns["instrument_id"].append(instrument)
        columns["ts"].append(T0 - timedelta(days=400) + timedelta(minutes=i))
        columns["open"].append(price)
        columns["high"].append(max(price, close) + Decimal("0.50"))
        columns["low"].append(min(price, close) - Decimal("0.50"))
        columns["close"].append(close)
        columns["volume"].append(Decimal(rng.randint(0, 10_000)) / 1000)
        price = close
    decimal = pa.decimal128(20, 8)
    types = {"instrument_id": pa.string(), "ts": pa.timestamp("ns", tz="UTC"), "open": decimal, "high": decimal,
             "low": decimal, "close": decimal, "volume": decimal}
    pq.write_table(pa.table({k: pa.array(v, type=types[k]) for k, v in columns.items()}), path, row_group_size=4096)


def test_a_large_parquet_file_streams_through_and_reimports_as_duplicates(settings: Settings, tmp_path: Path) -> None:
    instrument = "crypto_spot:LTC-USD"
    path = tmp_path / "ltc-1m.parquet"
    seeded_bars(path, instrument, 20_000, seed=404)

    first = import_file(path, "bars-parquet", settings.dsn)
    again = import_file(path, "bars-parquet", settings.dsn)

    assert counts(first) == (20_000, 20_000, 0, 0)
    assert counts(again) == (20_000, 0, 20_000, 0)
    assert query(settings, "SELECT count(*), min(ts), max(ts) FROM bars WHERE instrument_id = %s", (instrument,)) == [
        (20_000, T0 - timedelta(days=400), T0 - timedelta(days=400) + timedelta(minutes=19_999))]


@pytest.fixture
def bare_database(services: Endpoints) -> Iterator[str]:
    name = f"ts_test_bare_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(services.postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{services.postgres_dsn.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(services.postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_import_into_a_database_without_the_read_model_is_refused(bare_database: str) -> None:
    with pytest.raises(HistorySchemaError, match="apply_schema"):
        import_file(HISTORY / "trades.csv", "trades-csv", bare_database)
