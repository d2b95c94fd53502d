"""Reconciliation driver: for each live and shadow account, what the read model believes against what the venue
reports, through `core.reconcile.reconcile`; each report is published to its topic. It only reads and reports:
it never places or cancels an order, and a venue read that failed makes the report UNKNOWN, never "flat".

Ours: positions from the positions table, working orders from the orders table, cash from the latest PnL
snapshot (or the account's starting cash while it has none).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
from confluent_kafka import Producer

from connectors.registry import Binding, ConnectorRegistry
from core.accounts import Account
from core.instruments import InstrumentCatalog
from core.orders import OrderStatus
from core.reconcile import ReadOutcome, ReconciliationReport, VenueSnapshot, reconcile
from core.types import ExecutionMode
from streams.kafka import headers, producer_config
from streams.records import encode
from streams.topics import RECONCILIATION, topic_name
from tradestream.config import Settings

WORKING = tuple(s.value for s in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED, OrderStatus.PENDING_SUBMIT,
                                  OrderStatus.PENDING_CANCEL))
"""Pending orders count as working: the venue may hold them, and the report should say whether it does."""
DELIVERY_TIMEOUT_S = 10.0

T = TypeVar("T")


@dataclass(frozen=True)
class Books:
    """What the read model believes about one account."""

    positions: dict[str, Decimal]
    cash: Decimal
    working_order_ids: dict[str, str]
    """Client order id -> instrument id."""


def read_books(conn: psycopg.Connection[Any], account: Account) -> Books:
    positions = dict(conn.execute("SELECT instrument_id, quantity FROM positions WHERE account_id = %s AND "
                                  "quantity <> 0", (account.account_id,)).fetchall())
    latest = conn.execute("SELECT cash FROM pnl_snapshots WHERE account_id = %s ORDER BY ts DESC LIMIT 1",
                          (account.account_id,)).fetchone()
    working = dict(conn.execute("SELECT client_order_id, instrument_id FROM orders WHERE account_id = %s AND "
                                "status = ANY(%s)", (account.account_id, list(WORKING))).fetchall())
    return Books(positions=positions, cash=latest[0] if latest else account.starting_cash, working_order_ids=working)


async def _read(call: Callable[[], Awaitable[Sequence[T]]]) -> tuple[tuple[T, ...] | None, ReadOutcome]:
    try:
        return tuple(await call()), ReadOutcome(ok=True)
    except Exception as exc:  # whatever went wrong, what this read covers is unknown
        return None, ReadOutcome(ok=False, error=f"{type(exc).__name__}: {exc}")


async def venue_snapshot(binding: Binding) -> VenueSnapshot:
    connector = binding.connector
    positions, positions_read = await _read(connector.positions)
    balances, balances_read = await _read(connector.balances)
    orders, orders_read = await _read(connector.open_orders)
    return VenueSnapshot(positions=positions, positions_read=positions_read, balances=balances,
                         balances_read=balances_read, open_orders=orders, orders_read=orders_read)


async def reconcile_account(account: Account, books: Books, binding: Binding, shared: bool,
                            catalog: InstrumentCatalog) -> ReconciliationReport:
    """One account against one of its venue accounts. When the account trades on several venues (`shared`), only
    this venue's instruments are compared, and cash is not (the ledger's cash spans every venue)."""
    def here(instrument_id: str) -> bool:
        instrument = catalog.get(instrument_id)
        return not shared or (instrument is not None and instrument.venue is binding.venue)

    return reconcile(
        account, binding.name, datetime.now(UTC),
        positions={i: q for i, q in books.positions.items() if here(i)},
        cash={} if shared else {account.base_currency: books.cash},
        open_order_ids=[o for o, i in books.working_order_ids.items() if here(i)],
        snapshot=await venue_snapshot(binding))


async def reconcile_all(settings: Settings, registry: ConnectorRegistry, catalog: InstrumentCatalog,
                        account_ids: Sequence[str] = ()) -> list[ReconciliationReport]:
    """Every live and shadow account with a connector (or those named), each against each of its venues."""
    accounts = [a for a in settings.accounts if a.mode in (ExecutionMode.LIVE, ExecutionMode.SHADOW)
                and registry.bindings_of(a.account_id) and (not account_ids or a.account_id in account_ids)]
    with psycopg.connect(settings.dsn) as conn:
        books = {a.account_id: read_books(conn, a) for a in accounts}
    reports = []
    for account in accounts:
        bindings = registry.bindings_of(account.account_id)
        for binding in bindings:
            reports.append(await reconcile_account(account, books[account.account_id], binding, len(bindings) > 1,
                                                   catalog))
    return reports


def publish_reports(settings: Settings, reports: Sequence[ReconciliationReport]) -> None:
    """Put the reports on their topic, keyed by account; raise unless Kafka acknowledged every one."""
    producer = Producer(producer_config(settings))
    errors: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for report in reports:
        producer.produce(topic_name(RECONCILIATION, settings.topic_prefix), key=report.account_id.encode(),
                         value=encode(report), headers=headers(None, "ReconciliationReport"), on_delivery=delivered)
    if producer.flush(DELIVERY_TIMEOUT_S) or errors:
        raise RuntimeError(f"{RECONCILIATION.name}: reports not acknowledged by Kafka ({errors or 'timeout'})")
