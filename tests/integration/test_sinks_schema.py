"""The read model in the real Postgres: the pg_partman path, default partitions, maintenance, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from sinks.schema import TABLES, StoragePath, apply_schema, run_maintenance
from tradestream.config import Settings

pytestmark = pytest.mark.integration

TIME_TABLES = ("ticks", "fills", "pnl_snapshots")


def query(settings: Settings, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(sql, params).fetchall()


def partitions(settings: Settings, table: str) -> set[str]:
    return {r[0] for r in query(settings, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                          " WHERE i.inhparent = %s::regclass", (table,))}


def test_schema_uses_pg_partman_when_timescaledb_is_not_available(settings: Settings) -> None:
    (partman_version,) = query(settings, "SELECT default_version FROM pg_available_extensions"
                                         " WHERE name = 'pg_partman'")[0]
    assert query(settings, "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'") == [(0,)]

    info = apply_schema(settings.dsn)

    assert info.path is StoragePath.PG_PARTMAN
    assert info.extension_version == partman_version
    assert info.time_partitioned == TIME_TABLES
    assert sorted(r[0] for r in query(settings, "SELECT parent_table FROM partman.part_config")) == [
        f"public.{t}" for t in sorted(TIME_TABLES)]


def test_time_tables_have_daily_partitions_around_today_and_a_default(settings: Settings) -> None:
    today = datetime.now(UTC)
    for table in TIME_TABLES:
        children = partitions(settings, table)
        assert f"{table}_default" in children
        for day in (today - timedelta(days=1), today, today + timedelta(days=6)):
            assert f"{table}_p{day:%Y_%m_%d}" in children


def test_apply_schema_is_idempotent(settings: Settings) -> None:
    before = {t: partitions(settings, t) for t in TIME_TABLES}
    apply_schema(settings.dsn)
    apply_schema(settings.dsn)
    assert {t: partitions(settings, t) for t in TIME_TABLES} == before
    assert query(settings, "SELECT count(*) FROM partman.part_config") == [(3,)]
    existing = {r[0] for r in query(settings, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {t.name for t in TABLES} <= existing


def test_a_table_made_by_an_older_release_gains_the_nullable_columns_added_since(settings: Settings) -> None:
    apply_schema(settings.dsn)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE instruments DROP COLUMN settlement_price")  # as the table was before it
        conn.execute("ALTER TABLE pnl_snapshots DROP COLUMN trace_id")  # a partitioned one

    apply_schema(settings.dsn)

    for table in TABLES:
        columns = {r[0] for r in query(settings, "SELECT column_name FROM information_schema.columns"
                                                 " WHERE table_name = %s", (table.name,))}
        assert set(table.column_names) <= columns, table.name


def test_rows_far_in_the_past_or_future_still_insert(settings: Settings) -> None:
    past, future = datetime(1970, 1, 2, tzinfo=UTC), datetime(2200, 6, 1, tzinfo=UTC)
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        for ts in (past, future):
            conn.execute("INSERT INTO ticks VALUES (%s, 'far:X', 1, 2, 3, 4, 5)", (ts,))
            conn.execute("INSERT INTO fills VALUES (%s, 'v', %s, 'o', 't', 'a', 'org', 'u', 's', 'i', 'buy', 1, 1, 0,"
                         " 'taker', 'paper')", (ts, f"far-{ts.year}"))
            conn.execute("INSERT INTO pnl_snapshots VALUES (%s, 'far', 'org', 'u', 'paper', 1, 0, 0, 0, 1, '{}', NULL)",
                         (ts,))
    for table, where in (("ticks", "instrument_id = 'far:X'"), ("fills", "venue_trade_id LIKE 'far-%%'"),
                         ("pnl_snapshots", "account_id = 'far'")):
        rows = query(settings, f"SELECT tableoid::regclass::text, ts FROM {table} WHERE {where} ORDER BY ts")
        assert rows == [(f"{table}_default", past), (f"{table}_default", future)]


def test_maintenance_moves_default_rows_out_of_the_way_of_new_partitions(settings: Settings) -> None:
    soon = datetime.now(UTC) + timedelta(days=10)  # beyond the premade week: lands in the default partition
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO ticks VALUES (%s, 'soon:X', 1, 2, 3, 4, 5)", (soon,))
        # A stray far-future row must not make maintenance premake every day until then.
        conn.execute("INSERT INTO ticks VALUES ('2300-01-01Z', 'stray:X', 1, 2, 3, 4, 5)")
        conn.execute("UPDATE partman.part_config SET premake = 12 WHERE parent_table = 'public.ticks'")
    assert query(settings, "SELECT tableoid::regclass::text FROM ticks WHERE instrument_id = 'soon:X'") == [
        ("ticks_default",)]

    run_maintenance(settings.dsn)

    assert query(settings, "SELECT tableoid::regclass::text, ts FROM ticks WHERE instrument_id = 'soon:X'") == [
        (f"ticks_p{soon:%Y_%m_%d}", soon)]
    assert f"ticks_p{soon + timedelta(days=1):%Y_%m_%d}" in partitions(settings, "ticks")
    assert len(partitions(settings, "ticks")) < 40
    assert query(settings, "SELECT tableoid::regclass::text FROM ticks WHERE instrument_id = 'stray:X'") == [
        ("ticks_default",)]
