"""The importer without a database: the history tables' DDL on both storage paths, the summary's accounting,
argument checks made before connecting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from backtest.formats.common import BadRow
from backtest.importer import HistoryFormat, ImportSummary, history_ddl, import_file
from sinks.schema import StoragePath

UNREACHABLE_DSN = "postgresql://nobody@127.0.0.1:1/none"


def rendered(path: StoragePath, managed: set[str]) -> list[str]:
    return [statement.as_string() for statement in history_ddl(path, "4.7.2", managed)]


def test_timescaledb_path_makes_both_tables_hypertables() -> None:
    statements = rendered(StoragePath.TIMESCALEDB, set())

    assert [s for s in statements if "create_hypertable" in s] == [
        "SELECT create_hypertable('bars', 'ts', chunk_time_interval => INTERVAL '1 day', if_not_exists => TRUE)",
        "SELECT create_hypertable('trades_history', 'ts', chunk_time_interval => INTERVAL '1 day', "
        "if_not_exists => TRUE)",
    ]
    assert not any("PARTITION" in s or "partman" in s for s in statements)


def test_pg_partman_path_partitions_by_time_and_hands_new_tables_to_partman() -> None:
    statements = rendered(StoragePath.PG_PARTMAN, set())

    assert any('CREATE TABLE IF NOT EXISTS "bars"' in s and 'PARTITION BY RANGE ("ts")' in s for s in statements)
    assert any('CREATE TABLE IF NOT EXISTS "trades_history"' in s and 'UNIQUE ("venue", "trade_id", "ts")' in s
               for s in statements)
    assert sum("partman.create_parent" in s for s in statements) == 2
    assert any('CREATE TABLE IF NOT EXISTS "bars_default" PARTITION OF "bars" DEFAULT' in s for s in statements)


def test_pg_partman_path_does_not_recreate_the_parent_of_a_managed_table() -> None:
    statements = rendered(StoragePath.PG_PARTMAN, {"public.bars", "public.trades_history"})

    assert not any("create_parent" in s for s in statements)


def test_summary_refuses_rows_unaccounted_for() -> None:
    bad = BadRow(file="f.csv", line=2, row=0, reason="x")
    fields = {"file": "f.csv", "format": HistoryFormat.BARS_CSV, "table": "bars", "parquet_path": None}
    ImportSummary(rows_read=4, imported=2, duplicates=1, bad=1, bad_rows=(bad,), **fields)

    with pytest.raises(ValidationError, match="unaccounted"):
        ImportSummary(rows_read=5, imported=2, duplicates=1, bad=1, bad_rows=(bad,), **fields)
    with pytest.raises(ValidationError, match="unaccounted"):
        ImportSummary(rows_read=4, imported=2, duplicates=1, bad=1, bad_rows=(), **fields)


def test_unknown_format_is_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'bars-xml' is not a valid HistoryFormat"):
        import_file(tmp_path / "x.xml", "bars-xml", UNREACHABLE_DSN)


def test_malformed_instrument_id_is_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not an instrument id"):
        import_file(tmp_path / "bars.csv", "bars-csv", UNREACHABLE_DSN, instrument_id="BTC-USD")
