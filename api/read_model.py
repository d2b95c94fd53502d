"""Queries over the read model the sinks write: tables in Postgres and the latest quotes in Redis.

Reads only: the API never writes or computes trading state.
"""

from __future__ import annotations

from typing import Any, cast

from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError
from redis.asyncio import Redis

from api.schemas.audit import AuditEntryPublic
from api.schemas.instruments import InstrumentPublic
from api.schemas.orders import FillsSummary, OrderPublic
from api.schemas.positions import PositionPublic
from api.schemas.quotes import QuotePublic
from api.schemas.reconciliation import ReconciliationReportPublic
from core.instruments import AssetClass, Venue
from core.market import Quote
from core.orders import OrderStatus
from core.reconcile import ReconciliationStatus
from streams.shared_state import latest_quotes_key
from tradestream.config import Settings
from tradestream.logging import get_logger

log = get_logger(__name__)

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]

_ORDERS = sql.SQL("""
SELECT o.*, f.fill_count, f.fill_quantity, f.fill_fees, f.last_fill_at
FROM orders o
LEFT JOIN LATERAL (
    SELECT count(*) AS fill_count, coalesce(sum(quantity), 0) AS fill_quantity,
           coalesce(sum(fee), 0) AS fill_fees, max(ts) AS last_fill_at
    FROM fills WHERE fills.order_id = o.order_id
) f ON true
WHERE {where}
ORDER BY o.created_at DESC, o.order_id DESC
LIMIT %(limit)s
""")

_POSITIONS = sql.SQL("""
SELECT p.account_id, p.instrument_id, p.org_id, p.user_id, p.mode, p.quantity, p.average_price, p.multiplier,
       p.realized_pnl, p.fees_paid, p.trace_id, p.updated_at
FROM positions p
WHERE {where}
ORDER BY p.account_id, p.instrument_id
""")

_REPORT_COLUMNS = sql.SQL("r.account_id, r.venue, r.at, r.org_id, r.user_id, r.mode, r.status, r.discrepancies")


def _where(alias: str, filters: dict[str, Any]) -> sql.Composable:
    """`alias.column = %(column)s` for each filter given; `true` when none is."""
    clauses = [sql.SQL("{} = {}").format(sql.Identifier(alias, column), sql.Placeholder(column))
               for column, value in filters.items() if value is not None]
    return sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("true")


def _order(row: DictRow) -> OrderPublic:
    fills = FillsSummary(count=row["fill_count"], quantity=row["fill_quantity"], fees=row["fill_fees"],
                         last_fill_at=row["last_fill_at"])
    return OrderPublic.model_validate({**row, "fills": fills})


async def list_orders(pool: Pool, *, account_id: str | None, status: OrderStatus | None,
                      instrument_id: str | None, limit: int) -> list[OrderPublic]:
    filters: dict[str, Any] = {"account_id": account_id, "status": status, "instrument_id": instrument_id}
    query = _ORDERS.format(where=_where("o", filters))
    async with pool.connection() as conn:
        rows = await (await conn.execute(query, {**filters, "limit": limit})).fetchall()
    return [_order(row) for row in rows]


async def get_order(pool: Pool, order_id: str) -> OrderPublic | None:
    query = _ORDERS.format(where=_where("o", {"order_id": order_id}))
    async with pool.connection() as conn:
        row = await (await conn.execute(query, {"order_id": order_id, "limit": 1})).fetchone()
    return None if row is None else _order(row)


async def list_positions(pool: Pool, *, account_id: str | None) -> list[PositionPublic]:
    filters = {"account_id": account_id}
    async with pool.connection() as conn:
        rows = await (await conn.execute(_POSITIONS.format(where=_where("p", filters)), filters)).fetchall()
    return [PositionPublic.model_validate(row) for row in rows]


async def list_instruments(pool: Pool, *, asset_class: AssetClass | None, venue: Venue | None,
                           tradeable: bool | None, after: str | None, limit: int) -> list[InstrumentPublic]:
    """By instrument id; `after` continues from the last id of the previous page."""
    filters: dict[str, Any] = {"asset_class": asset_class, "venue": venue, "tradeable": tradeable}
    where = _where("i", filters)
    if after is not None:
        where = sql.SQL("{} AND i.instrument_id > %(after)s").format(where)
    query = sql.SQL("SELECT * FROM instruments i WHERE {where} ORDER BY i.instrument_id LIMIT %(limit)s").format(
        where=where)
    async with pool.connection() as conn:
        rows = await (await conn.execute(query, {**filters, "after": after, "limit": limit})).fetchall()
    return [InstrumentPublic.model_validate(row) for row in rows]


async def get_instrument(pool: Pool, instrument_id: str) -> InstrumentPublic | None:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT * FROM instruments WHERE instrument_id = %s",
                                        (instrument_id,))).fetchone()
    return None if row is None else InstrumentPublic.model_validate(row)


async def latest_quotes(redis: Redis, settings: Settings, instrument_id: str | None) -> list[QuotePublic]:
    """The tick sink's latest quote per instrument; an entry that does not validate is logged and left out."""
    key = latest_quotes_key(settings)
    if instrument_id is None:
        entries = cast(dict[str, str], await redis.hgetall(key))  # the client decodes responses
    else:
        raw = cast(str | None, await redis.hget(key, instrument_id))
        entries = {} if raw is None else {instrument_id: raw}
    quotes = []
    for field, raw in sorted(entries.items()):
        try:
            quote = Quote.model_validate_json(raw)
        except ValidationError as exc:
            log.error("corrupt latest quote left out", key=key, instrument_id=field, error=str(exc))
            continue
        quotes.append(QuotePublic.model_validate(quote))
    return quotes


async def list_audit(pool: Pool, *, subject: str | None, limit: int) -> list[AuditEntryPublic]:
    """Newest first."""
    query = sql.SQL("SELECT seq, at, action, actor, subject, trace_id, event_json, hash FROM audit_log"
                    " WHERE {where} ORDER BY seq DESC LIMIT %(limit)s").format(
        where=_where("audit_log", {"subject": subject}))
    async with pool.connection() as conn:
        rows = await (await conn.execute(query, {"subject": subject, "limit": limit})).fetchall()
    return [AuditEntryPublic.from_row(row) for row in rows]


async def list_reconciliations(pool: Pool, *, account_id: str | None, status: ReconciliationStatus | None,
                               only_differences: bool, limit: int) -> list[ReconciliationReportPublic]:
    """Newest first; `only_differences` leaves out the matched reports (an unknown one is never matched)."""
    filters: dict[str, Any] = {"account_id": account_id, "status": status}
    where = _where("r", filters)
    if only_differences:
        where = sql.SQL("{} AND r.status <> %(matched)s").format(where)
    query = sql.SQL("SELECT {columns} FROM reconciliation_reports r WHERE {where}"
                    " ORDER BY r.at DESC, r.account_id, r.venue LIMIT %(limit)s").format(
        columns=_REPORT_COLUMNS, where=where)
    params = {**filters, "matched": ReconciliationStatus.MATCHED, "limit": limit}
    async with pool.connection() as conn:
        rows = await (await conn.execute(query, params)).fetchall()
    return [ReconciliationReportPublic.model_validate(row) for row in rows]


async def latest_reconciliations(pool: Pool, account_id: str) -> list[ReconciliationReportPublic]:
    """The newest report of the account per venue, by venue."""
    query = sql.SQL("SELECT DISTINCT ON (r.venue) {columns} FROM reconciliation_reports r"
                    " WHERE r.account_id = %(account_id)s ORDER BY r.venue, r.at DESC").format(columns=_REPORT_COLUMNS)
    async with pool.connection() as conn:
        rows = await (await conn.execute(query, {"account_id": account_id})).fetchall()
    return [ReconciliationReportPublic.model_validate(row) for row in rows]
