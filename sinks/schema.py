"""The Postgres read model the sinks write and the API and Grafana read.

Every table is declared once (`TABLES`); the DDL for both storage paths is generated from that declaration:
time-series tables become TimescaleDB hypertables when the extension is available, else native range
partitions that pg_partman manages daily, with a default partition so a row far in the past or future never
fails to insert. `apply_schema` is idempotent and keeps whichever path a database was first created with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql

from tradestream.logging import get_logger

log = get_logger(__name__)

PARTITION_INTERVAL = "1 day"
PREMAKE_PARTITIONS = 7
"""Daily partitions made ahead of (and behind) now; maintenance keeps the window moving."""
NUMERIC_MAX_INTEGER_DIGITS = 131072  # Postgres numeric: digits before the point
NUMERIC_MAX_SCALE = 16383  # and after it
SCHEMA_LOCK_ID = 0x7472_6164_6573_7472  # any constant: serialises concurrent apply_schema calls


class StoragePath(StrEnum):
    TIMESCALEDB = "timescaledb"
    PG_PARTMAN = "pg_partman"


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = False

    def ddl(self) -> sql.Composable:
        return sql.SQL("{} {}{}").format(sql.Identifier(self.name), sql.SQL(self.type),
                                         sql.SQL("" if self.nullable else " NOT NULL"))


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    """Column names, optionally followed by ` DESC`."""
    unique: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    indexes: tuple[Index, ...] = ()
    time_column: str | None = None
    """Set for time-series tables: the column they are partitioned (or chunked) by."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


@dataclass(frozen=True)
class SchemaInfo:
    path: StoragePath
    extension_version: str
    time_partitioned: tuple[str, ...]


def _cols(spec: str) -> tuple[Column, ...]:
    """Columns from `name type[?]` lines; a trailing `?` makes the column nullable."""
    columns = []
    for line in spec.strip().splitlines():
        name, type_ = line.split(maxsplit=1)
        nullable = type_.endswith("?")
        columns.append(Column(name, type_.rstrip("?"), nullable))
    return tuple(columns)


TICKS = Table("ticks", _cols("""
    ts timestamptz
    instrument_id text
    bid numeric
    ask numeric
    bid_size numeric
    ask_size numeric
    seq bigint
"""), indexes=(Index("ticks_instrument_ts", ("instrument_id", "ts DESC")),), time_column="ts")

ORDERS = Table("orders", _cols("""
    order_id text
    client_order_id text
    trace_id text
    account_id text
    org_id text
    user_id text
    strategy_id text
    idempotency_key text
    intent_fingerprint text
    instrument_id text
    side text
    order_type text
    quantity numeric
    limit_price numeric?
    time_in_force text
    status text
    filled_quantity numeric
    average_fill_price numeric?
    requested_mode text
    effective_mode text?
    reason_code text
    reason_detail text
    venue_response jsonb?
    created_at timestamptz
    updated_at timestamptz
    version integer
"""), primary_key=("order_id",), indexes=(
    Index("orders_account_created", ("account_id", "created_at DESC")),
    Index("orders_owner_created", ("org_id", "user_id", "created_at DESC")),
    Index("orders_updated", ("updated_at",)),
))

FILLS = Table("fills", _cols("""
    ts timestamptz
    venue text
    venue_trade_id text
    order_id text
    trace_id text
    account_id text
    org_id text
    user_id text
    strategy_id text
    instrument_id text
    side text
    quantity numeric
    price numeric
    fee numeric
    liquidity text
    mode text
"""), unique=(("venue", "venue_trade_id", "ts"),), indexes=(
    Index("fills_order", ("order_id",)),
    Index("fills_account_ts", ("account_id", "ts DESC")),
), time_column="ts")

POSITIONS = Table("positions", _cols("""
    account_id text
    instrument_id text
    org_id text
    user_id text
    mode text
    quantity numeric
    average_price numeric
    multiplier numeric
    realized_pnl numeric
    fees_paid numeric
    trace_id text
    updated_at timestamptz
"""), primary_key=("account_id", "instrument_id"), indexes=(Index("positions_owner", ("org_id", "user_id")),))

PNL_SNAPSHOTS = Table("pnl_snapshots", _cols("""
    ts timestamptz
    account_id text
    org_id text
    user_id text
    mode text
    cash numeric
    realized_pnl numeric
    unrealized_pnl numeric
    fees numeric
    equity numeric
    unmarked_instruments text[]
    trace_id text?
"""), indexes=(Index("pnl_snapshots_account_ts", ("account_id", "ts DESC")),), time_column="ts")

DEAD_LETTERS = Table("dead_letters", _cols("""
    at timestamptz
    source_topic text
    partition integer
    offset bigint
    key text?
    error text
    consumer text
    value_b64 text
"""), indexes=(
    Index("dead_letters_at", ("at",)),
    # The dead-letter topic is written at least once; this makes the table exactly once.
    Index("dead_letters_source", ("consumer", "source_topic", "partition", "offset"), unique=True),
))

AUDIT_LOG = Table("audit_log", _cols("""
    seq bigint
    at timestamptz
    action text
    actor text
    subject text
    trace_id text?
    event_json text
    prev_hash text
    hash text
"""), primary_key=("seq",), indexes=(Index("audit_log_subject", ("subject",)), Index("audit_log_at", ("at",))))
"""The audit chain (core.audit): `event_json` is the exact JSON that was hashed; append-only by trigger."""

AUDIT_APPEND_ONLY_DDL: tuple[str, ...] = (
    "CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP; END $$",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()",
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()",
)

RECONCILIATION_REPORTS = Table("reconciliation_reports", _cols("""
    account_id text
    venue text
    at timestamptz
    org_id text
    user_id text
    mode text
    status text
    discrepancies jsonb
"""), primary_key=("account_id", "venue", "at"), indexes=(
    Index("reconciliation_reports_account_at", ("account_id", "at DESC")),
    Index("reconciliation_reports_at", ("at DESC",)),
))
"""One row per report of core.reconcile (`status` unknown when a venue read failed); `discrepancies` is the
report's list of differences as JSON objects (kind, subject, ours, theirs, detail), in the report's order.
Not partitioned: one report per account, venue and run is a small table."""
INSTRUMENTS = Table("instruments", _cols("""
    instrument_id text
    asset_class text
    venue text
    quote_currency text
    tick_size numeric
    lot_size numeric
    multiplier numeric
    expiry timestamptz?
    venue_symbols jsonb
    tradeable boolean
    status text
    settlement_price numeric?
    listed_by text[]
    updated_at timestamptz
"""), primary_key=("instrument_id",), indexes=(Index("instruments_asset_class", ("asset_class", "instrument_id")),
                                               Index("instruments_venue", ("venue", "instrument_id"))))
"""The instrument registry (reference.instruments). Reference data shared by every organisation: unlike the
order-flow tables it has no org/user owner columns, and a row is never deleted (a delisted instrument stays, not
tradeable)."""

SINK_OFFSETS = Table("sink_offsets", _cols("""
    consumer text
    topic text
    partition integer
    next_offset bigint
"""), primary_key=("consumer", "topic", "partition"))

TABLES: tuple[Table, ...] = (TICKS, ORDERS, FILLS, POSITIONS, PNL_SNAPSHOTS, DEAD_LETTERS, AUDIT_LOG,
                             RECONCILIATION_REPORTS, INSTRUMENTS, SINK_OFFSETS)


def _index_column(spec: str) -> sql.Composable:
    name, _, order = spec.partition(" ")
    return sql.SQL("{}{}").format(sql.Identifier(name), sql.SQL(f" {order}" if order else ""))


def table_ddl(table: Table, path: StoragePath) -> list[sql.Composed]:
    """Statements that create `table` (idempotently) for one storage path, partitioning included."""
    elements = [c.ddl() for c in table.columns]
    if table.primary_key:
        elements.append(sql.SQL("PRIMARY KEY ({})").format(sql.SQL(", ").join(map(sql.Identifier, table.primary_key))))
    for columns in table.unique:
        elements.append(sql.SQL("UNIQUE ({})").format(sql.SQL(", ").join(map(sql.Identifier, columns))))
    partitioning: sql.Composable = sql.SQL("")
    if table.time_column is not None and path is StoragePath.PG_PARTMAN:
        partitioning = sql.SQL(" PARTITION BY RANGE ({})").format(sql.Identifier(table.time_column))
    statements: list[sql.Composed] = [sql.SQL("CREATE TABLE IF NOT EXISTS {} (\n  {}\n){}").format(
        sql.Identifier(table.name), sql.SQL(",\n  ").join(elements), partitioning)]
    # A table made by an older release gains the nullable columns added since (rows it holds read them as NULL).
    # A new NOT NULL column could not be added to rows that exist: such a change needs a migration of its own.
    statements.extend(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}").format(sql.Identifier(table.name), c.ddl())
                      for c in table.columns if c.nullable)
    if table.time_column is not None and path is StoragePath.TIMESCALEDB:
        statements.append(sql.SQL(
            "SELECT create_hypertable({}, {}, chunk_time_interval => INTERVAL {}, if_not_exists => TRUE)"
        ).format(sql.Literal(table.name), sql.Literal(table.time_column), sql.Literal(PARTITION_INTERVAL)))
    for index in table.indexes:
        statements.append(sql.SQL("CREATE {}INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.SQL("UNIQUE " if index.unique else ""), sql.Identifier(index.name), sql.Identifier(table.name),
            sql.SQL(", ").join(_index_column(c) for c in index.columns)))
    return statements


def partman_ddl(table: Table, partman_version: str, *, managed: bool) -> list[sql.Composed]:
    """Hand a partitioned table to pg_partman: daily partitions around now, a default partition, upkeep.

    create_parent is not idempotent, so it only runs for a table not yet `managed` (in partman.part_config);
    the rest is re-applied every time. pg_partman 4.x calls native partitioning `native`, 5.x `range`.
    """
    if table.time_column is None:
        raise ValueError(f"{table.name} is not a time-series table")
    parent = f"public.{table.name}"
    kind = "native" if int(partman_version.split(".")[0]) < 5 else "range"
    statements = [] if managed else [
        sql.SQL("SELECT partman.create_parent(p_parent_table => {}, p_control => {}, p_type => {}, "
                "p_interval => {}, p_premake => {})").format(
            sql.Literal(parent), sql.Literal(table.time_column), sql.Literal(kind),
            sql.Literal(PARTITION_INTERVAL), sql.Literal(PREMAKE_PARTITIONS)),
    ]
    return [
        *statements,
        # Premake relative to now, not to the newest row: one row stamped in 2200 (it lands in the default
        # partition) must not make maintenance create every day up to 2200.
        sql.SQL("UPDATE partman.part_config SET infinite_time_partitions = true, ignore_default_data = true "
                "WHERE parent_table = {}").format(sql.Literal(parent)),
        # pg_partman makes one already; stated here so the invariant does not depend on its version's defaults.
        sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} DEFAULT").format(
            sql.Identifier(f"{table.name}_default"), sql.Identifier(table.name)),
    ]


def insert_statement(table: Table, on_conflict: str = "") -> sql.Composed:
    """`INSERT INTO table (every column) VALUES (%s, ...)` plus an optional ON CONFLICT clause."""
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) {}").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.column_names)),
        sql.SQL(", ").join(sql.Placeholder() * len(table.columns)), sql.SQL(on_conflict))


def copy_statement(table: Table) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.column_names)))


def storable_problem(table: Table, row: Sequence[Any]) -> str | None:
    """Why Postgres would refuse `row` for `table` (values in column order), or None when it would take it.

    Records are validated by their models, but a valid record can still hold what a column cannot: a NUL in
    text, an integer beyond its column, a numeric beyond Postgres' range, a NaN in JSON. Such a row must be
    dead-lettered, not allowed to fail its whole batch again and again.
    """
    for column, value in zip(table.columns, row, strict=True):
        if value is None:
            problem = None if column.nullable else "must not be null"
        else:
            problem = _value_problem(column.type, value)
        if problem is not None:
            return f"{table.name}.{column.name}: {problem}"
    return None


_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}


def _value_problem(type_: str, value: Any) -> str | None:
    if type_ == "text":
        return _text_problem(value)
    if type_ == "text[]":
        return next((p for p in map(_text_problem, value) if p is not None), None)
    if type_ in _INT_RANGES:
        low, high = _INT_RANGES[type_]
        return None if low <= value <= high else f"{value} is outside {type_}"
    if type_ == "numeric":
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int):
            return "not a finite number"
        if value.adjusted() >= NUMERIC_MAX_INTEGER_DIGITS or -exponent > NUMERIC_MAX_SCALE:
            return f"{value:.6e} is outside Postgres numeric's range"
        return None
    if type_ == "jsonb":
        try:
            json_dumps(value)
        except ValueError as exc:
            return f"not storable as JSON: {exc}"
        return next((p for p in map(_text_problem, _json_strings(value)) if p is not None), None)
    return None


def _json_strings(value: Any) -> Iterator[str]:
    """Every key and string in a JSON value: jsonb refuses \\u0000 in any of them."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _json_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _json_strings(item)


def _text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "NUL characters cannot be stored in text"
    try:
        value.encode()
    except UnicodeEncodeError:
        return "not encodable as UTF-8"
    return None


def json_dumps(value: Any) -> str:
    """How the sinks serialise jsonb values: strict JSON (no NaN or Infinity, which jsonb refuses)."""
    return json.dumps(value, allow_nan=False, default=str)


def _available_extensions(conn: psycopg.Connection[Any]) -> dict[str, str]:
    rows = conn.execute("SELECT name, default_version FROM pg_available_extensions "
                        "WHERE name IN ('timescaledb', 'pg_partman')").fetchall()
    return dict(rows)


def _existing_path(conn: psycopg.Connection[Any]) -> StoragePath | None:
    """The path a database already uses, judged by the ticks table, so a re-run never switches paths."""
    row = conn.execute("SELECT relkind::text FROM pg_class WHERE oid = to_regclass('public.ticks')").fetchone()
    if row is None:
        return None
    return StoragePath.PG_PARTMAN if row[0] == "p" else StoragePath.TIMESCALEDB


def _installed_version(conn: psycopg.Connection[Any], extension: str) -> str:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = %s", (extension,)).fetchone()
    if row is None:
        raise RuntimeError(f"extension {extension} is not installed")
    return str(row[0])


def apply_schema(dsn: str) -> SchemaInfo:
    """Create the read model in the database at `dsn`, or bring it up to date; safe to call concurrently."""
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_ID,))
        available = _available_extensions(conn)
        path = _existing_path(conn)
        if path is None:
            path = StoragePath.TIMESCALEDB if "timescaledb" in available else StoragePath.PG_PARTMAN
        if path is StoragePath.TIMESCALEDB:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            version = _installed_version(conn, "timescaledb")
        else:
            if "pg_partman" not in available:
                raise RuntimeError("neither timescaledb nor pg_partman is available in this PostgreSQL server")
            conn.execute("CREATE SCHEMA IF NOT EXISTS partman")
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
            version = _installed_version(conn, "pg_partman")
        for table in TABLES:
            for statement in table_ddl(table, path):
                conn.execute(statement)
        for ddl in AUDIT_APPEND_ONLY_DDL:
            conn.execute(ddl.encode())
        if path is StoragePath.PG_PARTMAN:
            managed = {r[0] for r in conn.execute("SELECT parent_table FROM partman.part_config").fetchall()}
            for table in TABLES:
                if table.time_column is not None:
                    for statement in partman_ddl(table, version, managed=f"public.{table.name}" in managed):
                        conn.execute(statement)
    info = SchemaInfo(path=path, extension_version=version,
                      time_partitioned=tuple(t.name for t in TABLES if t.time_column is not None))
    log.info("schema_applied", path=info.path.value, extension_version=version)
    return info


def run_maintenance(dsn: str) -> None:
    """Premake the coming days' partitions (pg_partman path); TimescaleDB makes its chunks itself.

    Rows that landed in a default partition for a day pg_partman is about to create would make the ATTACH
    fail, so each parent's rows inside the premake window are moved out and back around the maintenance,
    in one transaction: they end up in their new partition and nothing is lost.
    """
    with psycopg.connect(dsn, autocommit=True) as conn:
        if _existing_path(conn) is not StoragePath.PG_PARTMAN:
            return
        configs = conn.execute("SELECT parent_table, control, premake FROM partman.part_config").fetchall()
        for parent, control, premake in configs:
            schema, name = parent.split(".", 1)
            default = sql.Identifier(schema, f"{name}_default")
            held = sql.Identifier(f"maintenance_{name}")
            window = sql.SQL("{col} >= date_trunc('day', now()) AND {col} < date_trunc('day', now()) + {days} "
                             "* INTERVAL '1 day'").format(col=sql.Identifier(control), days=sql.Literal(premake + 2))
            with conn.transaction():
                conn.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS WITH moved AS "
                                     "(DELETE FROM {} WHERE {} RETURNING *) SELECT * FROM moved").format(
                    held, default, window))
                conn.execute("SELECT partman.run_maintenance(p_parent_table => %s, p_analyze => false)", (parent,))
                conn.execute(sql.SQL("INSERT INTO {} SELECT * FROM {}").format(sql.Identifier(schema, name), held))
