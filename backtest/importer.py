"""Historical import (TKT-404): bars and trades from files into Postgres (`bars`, `trades_history`) and Parquet.

Formats (`HistoryFormat`): bars or trades as CSV or Parquet with named columns (backtest.formats.tabular),
Coinbase candles JSON (backtest.formats.coinbase), Kalshi public trades JSON (backtest.formats.kalshi).

Every row read is accounted for, once: `imported`, a `duplicate` (its key is stored already with the same values,
or repeats an earlier row of the file with the same values) or `bad` (unparseable or invalid, or its key is stored
or earlier in the file with different values), and each bad row is listed with its file, line or row and reason.
Keys: (instrument_id, ts) for bars, (venue, trade_id) for trades. The first stored version of a key wins: a
conflicting version is reported, never written over it. So importing a file twice adds nothing the second time.

How: the file streams through its reader into a temporary staging table by COPY; set-based SQL classifies the
staged rows against the stored ones, one INSERT ... SELECT adds the new ones, and the file's accepted rows stream
back out to `<parquet_dir>/<bars|trades>/<file stem>.parquet` (replaced atomically on re-import). All in one
transaction, serialised per table by an advisory lock, so a failed import leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql
from pydantic import model_validator

from backtest.formats import coinbase, kalshi, tabular
from backtest.formats.common import SCALE, BadRow, Bar, Parsed, R, Trade, check_instrument_id
from core.types import Frozen
from sinks.schema import (
    SCHEMA_LOCK_ID,
    Column,
    StoragePath,
    Table,
    _existing_path,
    _installed_version,
    partman_ddl,
    storable_problem,
    table_ddl,
)
from tradestream.logging import get_logger

log = get_logger(__name__)

EXPORT_BATCH_ROWS = 50_000

BARS = Table("bars", (
    Column("ts", "timestamptz"), Column("instrument_id", "text"), Column("open", "numeric"),
    Column("high", "numeric"), Column("low", "numeric"), Column("close", "numeric"), Column("volume", "numeric"),
), unique=(("instrument_id", "ts"),), time_column="ts")

# Unique keys of a partitioned table (or hypertable) must include its time column; the importer itself keys
# trades by (venue, trade_id) alone, and this index's (venue, trade_id) prefix serves that lookup.
TRADES_HISTORY = Table("trades_history", (
    Column("ts", "timestamptz"), Column("venue", "text"), Column("trade_id", "text"),
    Column("instrument_id", "text"), Column("price", "numeric"), Column("size", "numeric"),
    Column("taker_side", "text", nullable=True),
), unique=(("venue", "trade_id", "ts"),), time_column="ts")

HISTORY_TABLES = (BARS, TRADES_HISTORY)


class HistoryFormat(StrEnum):
    BARS_CSV = "bars-csv"
    BARS_PARQUET = "bars-parquet"
    TRADES_CSV = "trades-csv"
    TRADES_PARQUET = "trades-parquet"
    COINBASE_CANDLES = "coinbase-candles"
    KALSHI_TRADES = "kalshi-trades"


class HistorySchemaError(RuntimeError):
    """The database has no read-model schema to add the history tables to."""


class ImportSummary(Frozen):
    file: str
    format: HistoryFormat
    table: str
    rows_read: int
    imported: int
    duplicates: int
    bad: int
    bad_rows: tuple[BadRow, ...]
    """In file order."""
    parquet_path: Path | None

    @model_validator(mode="after")
    def _every_row_accounted_for(self) -> ImportSummary:
        if self.rows_read != self.imported + self.duplicates + self.bad or self.bad != len(self.bad_rows):
            raise ValueError(f"rows unaccounted for: read {self.rows_read}, imported {self.imported}, duplicates "
                             f"{self.duplicates}, bad {self.bad} with {len(self.bad_rows)} listed")
        return self


def history_ddl(path: StoragePath, partman_version: str, managed: set[str]) -> list[sql.Composed]:
    """The statements that create the history tables the way sinks.schema creates its own."""
    statements: list[sql.Composed] = []
    for table in HISTORY_TABLES:
        statements += table_ddl(table, path)
        if path is StoragePath.PG_PARTMAN:
            statements += partman_ddl(table, partman_version, managed=f"public.{table.name}" in managed)
    return statements


def ensure_history_schema(conn: psycopg.Connection[Any]) -> StoragePath:
    """Create `bars` and `trades_history` (idempotent) on the storage path of the read model already there.

    Uses sinks.schema's path detection, which is private there (`_existing_path`, `_installed_version`); the
    history tables follow the read model rather than choose a path of their own. On the pg_partman path the
    daily partitions span the days around now, so older history lands in the default partition: stored and
    found correctly, but not pruned by time.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
        path = _existing_path(conn)
        if path is None:
            raise HistorySchemaError("the read-model schema is missing: run sinks.schema.apply_schema first")
        version, managed = "", set()
        if path is StoragePath.PG_PARTMAN:
            version = _installed_version(conn, "pg_partman")
            managed = {r[0] for r in conn.execute("SELECT parent_table FROM partman.part_config").fetchall()}
        for statement in history_ddl(path, version, managed):
            conn.execute(statement)
    return path


@dataclass(frozen=True)
class _Target(Generic[R]):
    table: Table
    key: tuple[str, ...]
    folder: str
    """Sub-folder of parquet_dir."""
    as_row: Callable[[R], tuple[Any, ...]]
    """A record as a row of `table`, in column order."""

    @property
    def value_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.table.column_names if c not in self.key)


def _bar_row(bar: Bar) -> tuple[Any, ...]:
    return bar.ts, bar.instrument_id, bar.open, bar.high, bar.low, bar.close, bar.volume


def _trade_row(trade: Trade) -> tuple[Any, ...]:
    side = None if trade.taker_side is None else trade.taker_side.value
    return trade.ts, trade.venue, trade.trade_id, trade.instrument_id, trade.price, trade.size, side


BAR_TARGET = _Target(BARS, ("instrument_id", "ts"), "bars", _bar_row)
TRADE_TARGET = _Target(TRADES_HISTORY, ("venue", "trade_id"), "trades", _trade_row)

_BAR_READERS: dict[HistoryFormat, Callable[[Path, str | None], Iterator[Parsed[Bar]]]] = {
    HistoryFormat.BARS_CSV: lambda p, i: tabular.read_csv(p, tabular.BAR_COLUMNS, i),
    HistoryFormat.BARS_PARQUET: lambda p, i: tabular.read_parquet(p, tabular.BAR_COLUMNS, i),
    HistoryFormat.COINBASE_CANDLES: coinbase.read_candles,
}
_TRADE_READERS: dict[HistoryFormat, Callable[[Path, str | None], Iterator[Parsed[Trade]]]] = {
    HistoryFormat.TRADES_CSV: lambda p, i: tabular.read_csv(p, tabular.TRADE_COLUMNS, i),
    HistoryFormat.TRADES_PARQUET: lambda p, i: tabular.read_parquet(p, tabular.TRADE_COLUMNS, i),
    HistoryFormat.KALSHI_TRADES: kalshi.read_trades,
}


def import_file(path: Path | str, fmt: HistoryFormat | str, dsn: str, instrument_id: str | None = None,
                parquet_dir: Path | str | None = None) -> ImportSummary:
    """Import one file; see the module docstring. Raises `FileFormatError` when the file as a whole is not in
    `fmt` (nothing is imported then) and ValueError for an unknown format or a malformed instrument_id."""
    source, kind = Path(path), HistoryFormat(fmt)
    check_instrument_id(instrument_id)
    out_dir = None if parquet_dir is None else Path(parquet_dir)
    with psycopg.connect(dsn) as conn:
        ensure_history_schema(conn)
        if kind in _BAR_READERS:
            summary = _load(conn, source, kind, BAR_TARGET, _BAR_READERS[kind](source, instrument_id), out_dir)
        else:
            summary = _load(conn, source, kind, TRADE_TARGET, _TRADE_READERS[kind](source, instrument_id), out_dir)
    log.info("history_imported", file=summary.file, format=kind.value, table=summary.table,
             rows_read=summary.rows_read, imported=summary.imported, duplicates=summary.duplicates, bad=summary.bad)
    return summary


def _load(conn: psycopg.Connection[Any], source: Path, kind: HistoryFormat, target: _Target[R],
          parsed: Iterator[Parsed[R]], out_dir: Path | None) -> ImportSummary:
    q = _Queries(target)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tradestream.import.{target.table.name}",))
        conn.execute("SET LOCAL TIME ZONE 'UTC'")  # keys quoted in bad-row reasons read in UTC
        conn.execute(q.create_stage)
        bad: list[tuple[int, BadRow]] = []
        staged = 0
        with conn.cursor() as cursor, cursor.copy(q.copy_stage) as copy:
            for seq, item in enumerate(parsed):
                if isinstance(item, BadRow):
                    bad.append((seq, item))
                    continue
                values: tuple[Any, ...] = target.as_row(item.record)
                problem = storable_problem(target.table, values)
                if problem is not None:
                    bad.append((seq, BadRow(file=str(source), line=item.line, row=item.row, reason=problem)))
                    continue
                copy.write_row((seq, item.line, item.row, *values))
                staged += 1
        rows_read = len(bad) + staged
        for statement in q.prepare:
            conn.execute(statement)
        conn.execute(q.classify)
        counted = conn.execute(q.count_duplicates).fetchone()
        duplicates = int(counted[0]) if counted else 0
        for seq, line, index, reason in conn.execute(q.conflicts):
            bad.append((seq, BadRow(file=str(source), line=line, row=index, reason=reason)))
        imported = conn.execute(q.insert).rowcount
        parquet_path = None if out_dir is None else _export(conn, q, out_dir / target.folder / f"{source.stem}.parquet")
        # Built inside the transaction: rows unaccounted for fail the validation and roll the import back.
        return ImportSummary(file=str(source), format=kind, table=target.table.name, rows_read=rows_read,
                             imported=imported, duplicates=duplicates, bad=len(bad),
                             bad_rows=tuple(b for _, b in sorted(bad, key=lambda pair: pair[0])),
                             parquet_path=parquet_path)


class _Queries:
    """The import's SQL for one target table: staging, classification, insert and export."""

    def __init__(self, target: _Target[Any]) -> None:
        table = sql.Identifier(target.table.name)
        stage, firsts, classified = map(sql.Identifier, ("import_stage", "import_firsts", "import_classified"))
        columns = sql.SQL(", ").join(map(sql.Identifier, target.table.column_names))
        key = sql.SQL(", ").join(map(sql.Identifier, target.key))

        def cols(alias: str, names: tuple[str, ...]) -> sql.Composable:
            return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)

        def same_key(left: str, right: str) -> sql.Composable:
            return sql.SQL(" AND ").join(sql.SQL("{} = {}").format(sql.Identifier(left, k), sql.Identifier(right, k))
                                         for k in target.key)

        def same_values(left: str, right: str) -> sql.Composable:
            return sql.SQL("ROW({}) IS NOT DISTINCT FROM ROW({})").format(
                cols(left, target.value_columns), cols(right, target.value_columns))

        key_text = sql.SQL(" || ', ' || ").join(
            sql.SQL("{} || '=' || {}::text").format(sql.Literal(k), sql.Identifier("s", k)) for k in target.key)
        # The stored row with the key, if any: LIMIT 1 so a table written by something else can never count a
        # staged row twice.
        stored = sql.SQL("LEFT JOIN LATERAL (SELECT {} FROM {} t WHERE {} LIMIT 1) t ON true").format(
            sql.SQL(", ").join(map(sql.Identifier, target.table.column_names)), table, same_key("t", "s"))
        self.create_stage = sql.SQL("CREATE TEMP TABLE {} (seq bigint NOT NULL, line integer, row_index integer, "
                                    "{}) ON COMMIT DROP").format(
            stage, sql.SQL(", ").join(c.ddl() for c in target.table.columns))
        self.copy_stage = sql.SQL("COPY {} (seq, line, row_index, {}) FROM STDIN").format(stage, columns)
        self.prepare = [
            # The first row of each key in the file: the one that may be inserted.
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT DISTINCT ON ({}) * FROM {} ORDER BY {}, seq")
            .format(firsts, key, stage, key),
            sql.SQL("CREATE INDEX ON {} ({})").format(firsts, key),
            sql.SQL("ANALYZE {}").format(stage),
            sql.SQL("ANALYZE {}").format(firsts),
        ]
        # Every staged row except the new firsts: compared with the stored row when the key is stored, else
        # with the first row of its key in the file. Kept server-side: re-importing a large file makes every row
        # a duplicate, and only the conflicts need to come back.
        self.classify = sql.SQL(
            "CREATE TEMP TABLE {classified} ON COMMIT DROP AS SELECT s.seq, s.line, s.row_index, "
            "CASE WHEN t.{k0} IS NOT NULL THEN {same_stored} ELSE {same_first} END AS same, "
            "t.{k0} IS NOT NULL AS stored, f.line AS first_line, f.row_index AS first_row, {key_text} AS key_text "
            "FROM {stage} s JOIN {firsts} f ON {first_key} {stored} WHERE t.{k0} IS NOT NULL OR s.seq <> f.seq"
        ).format(classified=classified, k0=sql.Identifier(target.key[0]), same_stored=same_values("s", "t"),
                 same_first=same_values("s", "f"), key_text=key_text, stage=stage, firsts=firsts,
                 first_key=same_key("s", "f"), stored=stored)
        self.count_duplicates = sql.SQL("SELECT count(*) FROM {} WHERE same").format(classified)
        self.conflicts = sql.SQL(
            "SELECT seq, line, row_index, 'key ' || key_text || CASE WHEN stored "
            "THEN ' is stored with different values' ELSE ' is in row ' || first_row "
            "|| coalesce(' (line ' || first_line || ')', '') || ' of this file with different values' END "
            "FROM {} WHERE NOT same ORDER BY seq").format(classified)
        self.insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} s WHERE NOT EXISTS "
                              "(SELECT 1 FROM {} t WHERE {}) ON CONFLICT DO NOTHING").format(
            table, columns, cols("s", target.table.column_names), firsts, table, same_key("t", "s"))
        # After the insert, the file's accepted rows are exactly its first rows equal to the stored ones.
        self.export = sql.SQL("SELECT {} FROM {} s {} WHERE {} ORDER BY s.seq").format(
            cols("s", target.table.column_names), firsts, stored, same_values("s", "t"))
        self.table = target.table


def _arrow_schema(table: Table) -> Any:
    types = {"text": pa.string(), "timestamptz": pa.timestamp("us", tz="UTC"), "numeric": pa.decimal128(38, SCALE)}
    return pa.schema([pa.field(c.name, types[c.type], nullable=c.nullable) for c in table.columns])


def _export(conn: psycopg.Connection[Any], q: _Queries, out: Path) -> Path:
    """Stream the file's accepted rows into `out`, via a temporary file, so `out` is whole or absent."""
    schema = _arrow_schema(q.table)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with conn.cursor(name="import_export") as cursor, pq.ParquetWriter(partial, schema) as writer:
            cursor.execute(q.export)
            while rows := cursor.fetchmany(EXPORT_BATCH_ROWS):
                arrays = [pa.array(column, type=field.type) for column, field in zip(zip(*rows, strict=True), schema,
                                                                                     strict=True)]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out
