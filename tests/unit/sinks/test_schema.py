"""DDL generation: one column definition, two storage paths, and what Postgres could not store."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from sinks.schema import (
    DEAD_LETTERS,
    FILLS,
    ORDERS,
    TABLES,
    TICKS,
    StoragePath,
    Table,
    copy_statement,
    insert_statement,
    partman_ddl,
    storable_problem,
    table_ddl,
)
from tests.kit.builders import T0


def ddl(table: Table, path: StoragePath) -> list[str]:
    return [statement.as_string() for statement in table_ddl(table, path)]


def column_block(create_table: str) -> str:
    return create_table[create_table.index("(") + 1:create_table.rindex(")")]


def test_time_series_table_is_a_partman_range_parent_on_the_partman_path() -> None:
    create, *indexes = ddl(TICKS, StoragePath.PG_PARTMAN)
    assert create.startswith('CREATE TABLE IF NOT EXISTS "ticks" (')
    assert create.endswith(' PARTITION BY RANGE ("ts")')
    assert not any("create_hypertable" in s for s in indexes)
    assert indexes == ['CREATE INDEX IF NOT EXISTS "ticks_instrument_ts" ON "ticks" ("instrument_id", "ts" DESC)']


def test_time_series_table_is_a_hypertable_on_the_timescaledb_path() -> None:
    create, hypertable, *_ = ddl(TICKS, StoragePath.TIMESCALEDB)
    assert "PARTITION BY" not in create
    assert hypertable == ("SELECT create_hypertable('ticks', 'ts', chunk_time_interval => INTERVAL '1 day', "
                          "if_not_exists => TRUE)")


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_both_paths_share_one_column_definition(table: Table) -> None:
    partman = ddl(table, StoragePath.PG_PARTMAN)[0]
    timescale = ddl(table, StoragePath.TIMESCALEDB)[0]
    assert column_block(partman.removesuffix(' PARTITION BY RANGE ("ts")')) == column_block(timescale)
    if table.time_column is None:
        assert ddl(table, StoragePath.PG_PARTMAN) == ddl(table, StoragePath.TIMESCALEDB)


def test_columns_are_typed_for_money_time_and_ownership() -> None:
    create = ddl(ORDERS, StoragePath.PG_PARTMAN)[0]
    for line in ('"quantity" numeric NOT NULL', '"limit_price" numeric', '"created_at" timestamptz NOT NULL',
                 '"org_id" text NOT NULL', '"user_id" text NOT NULL', '"trace_id" text NOT NULL',
                 '"venue_response" jsonb', '"version" integer NOT NULL', "PRIMARY KEY (\"order_id\")"):
        assert line in create
    assert '"limit_price" numeric NOT NULL' not in create
    assert 'UNIQUE ("venue", "venue_trade_id", "ts")' in ddl(FILLS, StoragePath.PG_PARTMAN)[0]


@pytest.mark.parametrize(("version", "kind"), [("4.7.2", "native"), ("5.1.0", "range")])
def test_partman_parent_uses_the_installed_versions_partition_type(version: str, kind: str) -> None:
    create_parent, config, default = (s.as_string() for s in partman_ddl(TICKS, version, managed=False))
    assert create_parent == ("SELECT partman.create_parent(p_parent_table => 'public.ticks', p_control => 'ts', "
                             f"p_type => '{kind}', p_interval => '1 day', p_premake => 7)")
    assert "infinite_time_partitions = true, ignore_default_data = true" in config
    assert default == 'CREATE TABLE IF NOT EXISTS "ticks_default" PARTITION OF "ticks" DEFAULT'


def test_a_managed_table_is_not_handed_to_partman_twice() -> None:
    statements = [s.as_string() for s in partman_ddl(TICKS, "4.7.2", managed=True)]
    assert len(statements) == 2
    assert not any("create_parent" in s for s in statements)


def test_partman_refuses_a_table_without_a_time_column() -> None:
    with pytest.raises(ValueError, match="not a time-series table"):
        partman_ddl(ORDERS, "4.7.2", managed=False)


def test_insert_and_copy_name_every_column_in_order() -> None:
    assert copy_statement(TICKS).as_string() == (
        'COPY "ticks" ("ts", "instrument_id", "bid", "ask", "bid_size", "ask_size", "seq") FROM STDIN')
    insert = insert_statement(DEAD_LETTERS, "ON CONFLICT DO NOTHING").as_string()
    assert insert.count("%s") == len(DEAD_LETTERS.columns)
    assert '"offset"' in insert and insert.endswith("ON CONFLICT DO NOTHING")


def tick(**changes: Any) -> tuple[Any, ...]:
    row = {"ts": T0, "instrument_id": "x", "bid": Decimal(1), "ask": Decimal(2), "bid_size": Decimal(1),
           "ask_size": Decimal(1), "seq": 1, **changes}
    return tuple(row[c] for c in TICKS.column_names)


@pytest.mark.parametrize(("row", "problem"), [
    (tick(), None),
    (tick(instrument_id="a\x00"), "ticks.instrument_id: NUL"),
    (tick(instrument_id="\ud800"), "ticks.instrument_id: not encodable"),
    (tick(seq=2**63), "ticks.seq: 9223372036854775808 is outside bigint"),
    (tick(seq=2**63 - 1), None),
    (tick(bid=Decimal("1E+131072")), "ticks.bid: 1.000000e+131072 is outside"),
    (tick(bid=Decimal("1E-16383")), None),
    (tick(bid=Decimal("1E-16384")), "ticks.bid"),
    (tick(bid=Decimal("NaN")), "ticks.bid: not a finite number"),
    (tick(ts=None), "ticks.ts: must not be null"),
])
def test_storable_problem_names_the_column_postgres_would_refuse(row: tuple[Any, ...], problem: str | None) -> None:
    found = storable_problem(TICKS, row)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


def order_values(**changes: Any) -> tuple[Any, ...]:
    values = dict.fromkeys(ORDERS.column_names, "x") | {
        "quantity": Decimal(1), "limit_price": None, "filled_quantity": Decimal(0), "average_fill_price": None,
        "effective_mode": None, "venue_response": None, "created_at": T0 - timedelta(days=1), "updated_at": T0,
        "version": 1, **changes}
    return tuple(values[c] for c in ORDERS.column_names)


@pytest.mark.parametrize(("changes", "problem"), [
    ({}, None),
    ({"venue_response": {"ok": [1, "a", {"b": None}]}}, None),
    ({"venue_response": {"note": "a\x00"}}, "orders.venue_response: NUL"),
    ({"venue_response": {"k\x00": 1}}, "orders.venue_response: NUL"),
    ({"venue_response": {"px": float("nan")}}, "orders.venue_response: not storable as JSON"),
    ({"version": 2**31}, "orders.version: 2147483648 is outside integer"),
    ({"reason_detail": "\x00"}, "orders.reason_detail: NUL"),
])
def test_storable_problem_covers_json_and_integer_columns(changes: dict[str, Any], problem: str | None) -> None:
    found = storable_problem(ORDERS, order_values(**changes))
    assert (found is None) if problem is None else (found is not None and found.startswith(problem))
