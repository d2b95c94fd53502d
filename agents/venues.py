"""The worker's side of the venue connectors, besides placing and cancelling (agents/execution.py):

- venue quotes into md.quotes, so the risk gate of live and shadow accounts prices orders at the venue;
- live fills: `fills_since(cursor)` per connector serving a live account, each fill attributed to its order and
  emitted as FillReported keyed by account (the portfolio de-duplicates by venue trade id). The cursor is kept in
  Redis and moved only after the fills are on Kafka, so fills made during a disconnect or a restart are read on
  the next poll;
- shadow seeding: a shadow ledger starts, once, from the venue account's balances and positions (audited, never
  written back); until then shadow orders are refused (SHADOW_NOT_SEEDED).

What the worker remembers about live orders lives in Redis (`VenueState`): the fill poller runs on the leader,
the OMS wherever the account's partition is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from agents.connector_health import ConnectorIssues
from agents.kit import AgentKit
from connectors.base import Connector
from connectors.errors import ConnectorError, UnsupportedError
from connectors.registry import Binding, ConnectorRegistry
from core.accounts import Account, Owner
from core.audit import AuditAction, AuditEvent
from core.fills import Fill
from core.instruments import InstrumentCatalog
from core.ledger import Ledger, Position
from core.orders import Order
from core.types import ZERO, ExecutionMode, Frozen
from core.venue import Balance, VenueFill, VenuePosition
from streams.records import FillReported, PositionUpdated, ShadowSeed, decode
from streams.topics import MD_QUOTES, ORDER_EVENTS, POSITIONS, SHADOW_SEEDS
from tradestream.logging import get_logger, traced

log = get_logger(__name__)

UNATTRIBUTED_FOR = timedelta(days=1)
"""How long a venue fill no live order claims yet is kept and tried again (its order may not be known yet)."""
SEED_RETRY_S = 10.0
ORDER_FILLS_KEPT = timedelta(days=30)


class LiveOrderRef(Frozen):
    """What turns a venue fill into one of our fills: the order it belongs to."""

    order_id: str
    client_order_id: str
    account_id: str
    owner: Owner
    trace_id: str
    strategy_id: str
    instrument_id: str
    venue_order_id: str | None = None

    @classmethod
    def of(cls, order: Order, venue_order_id: str | None = None) -> LiveOrderRef:
        return cls(order_id=order.order_id, client_order_id=order.client_order_id, account_id=order.account_id,
                   owner=order.owner, trace_id=order.trace_id, strategy_id=order.strategy_id,
                   instrument_id=order.instrument_id, venue_order_id=venue_order_id)

    def fill(self, venue_fill: VenueFill) -> Fill:
        return Fill(venue=venue_fill.venue.value, venue_trade_id=venue_fill.venue_trade_id, order_id=self.order_id,
                    trace_id=self.trace_id, account_id=self.account_id, owner=self.owner,
                    strategy_id=self.strategy_id, instrument_id=self.instrument_id, side=venue_fill.side,
                    quantity=venue_fill.quantity, price=venue_fill.price, fee=venue_fill.fee,
                    liquidity=venue_fill.liquidity, mode=ExecutionMode.LIVE, ts=venue_fill.ts)


class VenueState:
    """Redis keys for live orders and shadow seeding, namespaced by the topic prefix."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = f"{prefix}venues:"

    async def remember(self, binding: str, ref: LiveOrderRef) -> None:
        fields: dict[FieldT, EncodableT] = {f"c:{ref.client_order_id}": ref.model_dump_json()}
        if ref.venue_order_id is not None:
            fields[f"v:{ref.venue_order_id}"] = fields[f"c:{ref.client_order_id}"]
        await self._redis.hset(f"{self._prefix}refs:{binding}", mapping=fields)

    async def ref_for(self, binding: str, fill: VenueFill) -> LiveOrderRef | None:
        fields = [f"v:{fill.venue_order_id}", *([f"c:{fill.client_order_id}"] if fill.client_order_id else [])]
        raw = await self._redis.hmget(f"{self._prefix}refs:{binding}", fields)
        found = next((r for r in raw if r), None)
        return LiveOrderRef.model_validate_json(found) if found else None

    async def record_fill(self, order_id: str, fill: VenueFill) -> None:
        key = f"{self._prefix}fills:{order_id}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, fill.venue_trade_id, fill.model_dump_json())
        pipe.expire(key, ORDER_FILLS_KEPT)  # read while the order works; its fills are on Kafka for good
        await pipe.execute()

    async def fills_of(self, order_id: str) -> list[VenueFill]:
        raw = await self._redis.hvals(f"{self._prefix}fills:{order_id}")
        return sorted((VenueFill.model_validate_json(r) for r in raw), key=lambda f: (f.ts, f.venue_trade_id))

    async def unattributed(self, binding: str) -> list[VenueFill]:
        raw = await self._redis.hvals(f"{self._prefix}unattributed:{binding}")
        return [VenueFill.model_validate_json(r) for r in raw]

    async def hold_unattributed(self, binding: str, fills: Iterable[VenueFill]) -> None:
        key = f"{self._prefix}unattributed:{binding}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(key)
        mapping: dict[FieldT, EncodableT] = {f.venue_trade_id: f.model_dump_json() for f in fills}
        if mapping:
            pipe.hset(key, mapping=mapping)
        await pipe.execute()

    async def cursor(self, binding: str) -> str | None:
        raw = await self._redis.get(f"{self._prefix}cursor:{binding}")
        return raw.decode() if isinstance(raw, bytes) else raw

    async def set_cursor(self, binding: str, cursor: str) -> None:
        await self._redis.set(f"{self._prefix}cursor:{binding}", cursor)

    async def seeded(self, account_id: str) -> bool:
        return bool(await self._redis.exists(f"{self._prefix}seeded:{account_id}"))

    async def mark_seeded(self, account_id: str, at: datetime) -> None:
        await self._redis.set(f"{self._prefix}seeded:{account_id}", at.isoformat())


def register(kit: AgentKit, registry: ConnectorRegistry, ledgers: Any, issues: ConnectorIssues) -> None:
    """Quotes, live fills and shadow seeding for the connectors of the registry."""
    if not registry.bindings:
        return
    state = VenueState(kit.redis, kit.settings.topic_prefix)
    interval = kit.settings.connectors.poll_interval_s
    quote_tasks: dict[str, asyncio.Task[None]] = {}

    async def publish_quotes(binding: Binding) -> None:
        async for quote in binding.connector.quotes(binding.instrument_ids):
            await kit.send(MD_QUOTES, quote.instrument_id, quote, None)

    @kit.timer(1.0, "venue_quotes", on_leader=True)
    async def supervise_quotes() -> None:
        """Keep one quote stream per connector running; a stream that ended or failed is started again."""
        for binding in registry.bindings:
            task = quote_tasks.get(binding.name)
            if not binding.instrument_ids or (task is not None and not task.done()):
                continue
            if task is not None and not task.cancelled() and (error := task.exception()) is not None:
                log.warning("venue.quotes_restarted", connector=binding.name,
                            error=issues.record(binding.name, "quotes", error))
            quote_tasks[binding.name] = asyncio.get_running_loop().create_task(publish_quotes(binding))

    for binding in registry.bindings:
        if any(kit.accounts[a].mode is ExecutionMode.LIVE for a in binding.account_ids):
            kit.timer(interval, f"live_fills_{binding.name}", on_leader=True)(
                partial(poll_fills, kit, state, binding))

    @kit.app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode types the handler with mypy_extensions
    async def close_connectors(app: Any, *args: Any, **kwargs: Any) -> None:
        for task in quote_tasks.values():
            task.cancel()
        await registry.close()

    shadow = [a for a in kit.accounts.values() if a.mode is ExecutionMode.SHADOW and registry.bindings_of(a.account_id)]
    if shadow:
        register_seeding(kit, registry, state, ledgers, shadow)


def register_seeding(kit: AgentKit, registry: ConnectorRegistry, state: VenueState, ledgers: Any,
                     shadow: list[Account]) -> None:
    requested: dict[str, float] = {}

    @kit.timer(kit.settings.connectors.poll_interval_s, "shadow_seeding", on_leader=True)
    async def request_seeds() -> None:
        loop = asyncio.get_running_loop()
        for account in shadow:
            if loop.time() < requested.get(account.account_id, 0.0) or await state.seeded(account.account_id):
                continue
            seed = await read_seed(account, registry.bindings_of(account.account_id), kit.catalog)
            if seed is not None:
                requested[account.account_id] = loop.time() + SEED_RETRY_S
                await kit.send(SHADOW_SEEDS, account.account_id, seed, None)

    async def on_seed(seed: ShadowSeed, event: Any) -> None:
        account = kit.accounts[seed.account_id]
        if ledgers.get(seed.account_id) is not None:
            log.info("shadow.seed_ignored", account_id=seed.account_id, reason="the ledger exists already")
        else:
            # Audited first: a seed that cannot be audited is not applied (the seeder sends it again).
            await asyncio.to_thread(kit.control_plane.audit, AuditEvent(
                action=AuditAction.SHADOW_LEDGER_SEEDED, actor="shadow-seed", subject=f"account:{seed.account_id}",
                at=seed.at, after={"opening_ledger": seed.ledger.model_dump(mode="json"),
                                   "connectors": list(seed.connectors),
                                   "balances": [b.model_dump(mode="json") for b in seed.balances],
                                   "positions": [p.model_dump(mode="json") for p in seed.positions]}))
            ledgers[seed.account_id] = seed.ledger
            for position in seed.ledger.positions.values():
                await kit.send(POSITIONS, seed.account_id, PositionUpdated.of(account, position, seed.at), None)
            log.info("shadow.seeded", account_id=seed.account_id, cash=str(seed.ledger.cash),
                     positions={i: str(p.quantity) for i, p in seed.ledger.positions.items()})
        await state.mark_seeded(seed.account_id, seed.at)

    @kit.app.agent(kit.topic(SHADOW_SEEDS), name="shadow_seeds")
    async def shadow_seeds(stream: Any) -> None:
        await kit.consume(stream, partial(decode, ShadowSeed), "shadow_seeds", on_seed)


async def poll_fills(kit: AgentKit, state: VenueState, binding: Binding) -> None:
    """One poll of the connector's fills: attribute, emit, then move the cursor."""
    cursor = await state.cursor(binding.name)
    try:
        page = await binding.connector.fills_since(cursor)
    except ConnectorError as exc:  # the venue is down or slow: the same cursor is read again on the next poll
        log.warning("live_fill.poll_failed", connector=binding.name, error=f"{type(exc).__name__}: {exc}")
        return
    pending = {f.venue_trade_id: f for f in (*await state.unattributed(binding.name), *page.fills)}
    held = []
    now = datetime.now(UTC)
    for venue_fill in pending.values():
        ref = await state.ref_for(binding.name, venue_fill)
        if ref is None:
            if now - venue_fill.ts < UNATTRIBUTED_FOR:
                held.append(venue_fill)
            else:
                log.error("live_fill.unattributed_dropped", connector=binding.name,
                          venue_trade_id=venue_fill.venue_trade_id, venue_order_id=venue_fill.venue_order_id)
            continue
        with traced(ref.trace_id, order_id=ref.order_id, account_id=ref.account_id):
            await state.record_fill(ref.order_id, venue_fill)
            await kit.send(ORDER_EVENTS, ref.account_id, FillReported(fill=ref.fill(venue_fill)), ref.trace_id)
            log.info("live_fill.reported", venue_trade_id=venue_fill.venue_trade_id,
                     quantity=str(venue_fill.quantity), price=str(venue_fill.price))
    if held:
        log.warning("live_fill.unattributed", connector=binding.name, fills=len(held))
    await state.hold_unattributed(binding.name, held)
    await kit.app.producer.flush()  # the fills are on Kafka before the cursor moves past them
    if page.cursor and page.cursor != cursor:
        await state.set_cursor(binding.name, page.cursor)


async def read_seed(account: Account, bindings: Sequence[Binding], catalog: InstrumentCatalog) -> ShadowSeed | None:
    """The account's opening ledger from its venue accounts, or None when a read failed (tried again later: an
    unread account is unknown, never empty)."""
    balances: list[Balance] = []
    positions: list[VenuePosition] = []
    held: dict[str, Position] = {}
    try:
        for binding in bindings:
            venue_positions = await binding.connector.positions()
            balances.extend(await binding.connector.balances())
            positions.extend(venue_positions)
            for venue_position in venue_positions:
                cost = venue_position.average_price
                if cost is None:
                    cost = await _mark(binding.connector, venue_position.instrument_id)
                instrument = catalog.get(venue_position.instrument_id)
                held[venue_position.instrument_id] = Position(
                    instrument_id=venue_position.instrument_id, quantity=venue_position.quantity, average_price=cost,
                    multiplier=instrument.multiplier if instrument else Decimal(1))
    except Exception as exc:  # any failed read: nothing is seeded from it
        log.warning("shadow.seed_read_failed", account_id=account.account_id, error=f"{type(exc).__name__}: {exc}")
        return None
    cash = sum((b.total for b in balances if b.currency == account.base_currency), ZERO)
    ledger = Ledger(account_id=account.account_id, owner=account.owner, mode=account.mode, cash=cash,
                    positions=held)
    return ShadowSeed(account_id=account.account_id, connectors=tuple(b.name for b in bindings),
                      balances=tuple(balances), positions=tuple(positions), ledger=ledger, at=datetime.now(UTC))


async def _mark(connector: Connector, instrument_id: str) -> Decimal:
    """A position's cost when the venue gives none: the venue's mid now, so the shadow's PnL counts from the seed."""
    try:
        book = await connector.order_book(instrument_id, depth=1)
    except UnsupportedError:
        log.warning("shadow.seed_cost_unknown", instrument_id=instrument_id)
        return ZERO
    if not book.bids or not book.asks:
        raise ValueError(f"{instrument_id}: the venue's book is one-sided; no mark to seed its cost")
    return (book.bids[0].price + book.asks[0].price) / 2
