"""In-memory stand-ins for what the venue drivers talk to: a connector that records every write, the Redis state,
and the slice of the agent kit they use."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

from pydantic import BaseModel

from agents.control_view import OrderPathView
from agents.kit import AgentKit
from agents.venues import LiveOrderRef, VenueState
from connectors.base import Connector
from connectors.registry import Binding, ConnectorRegistry
from core.accounts import Account
from core.control import LiveEnabled, TradingState
from core.instruments import AssetClass, Instrument, InstrumentCatalog, Venue
from core.market import Quote
from core.orders import Order, OrderStatus
from core.types import ExecutionMode, OrderType, TimeInForce
from core.venue import (
    Balance,
    BookLevel,
    Capabilities,
    ConnectorHealth,
    FillPage,
    LiveWriteAuthorization,
    MarketDataMode,
    OrderBook,
    PlaceResult,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from streams.topics import TopicSpec
from tests.kit.builders import OWNER, T0, account, btc, policy, quote


class FakeConnector(Connector):
    venue = Venue.COINBASE
    capabilities = Capabilities(venue=Venue.COINBASE, asset_classes=frozenset({AssetClass.CRYPTO_SPOT}),
                                order_types=frozenset(OrderType), time_in_force=frozenset(TimeInForce),
                                streaming_market_data=False, streaming_fills=False, fractional_quantities=True)

    def __init__(self) -> None:
        self.place_outcome: PlaceResult | Exception | None = None
        """None: the order rests (OPEN) under venue id `v-<order id>`."""
        self.cancel_outcome: Exception | None = None
        self.placed: list[tuple[Order, LiveWriteAuthorization]] = []
        self.cancelled: list[tuple[Order, str, LiveWriteAuthorization]] = []
        self.listed: list[VenueOrder] = []
        self.book = OrderBook(instrument_id=btc().instrument_id, ts=T0,
                              bids=(BookLevel(price=Decimal("100.00"), size=Decimal(5)),),
                              asks=(BookLevel(price=Decimal("100.10"), size=Decimal("0.5")),
                                    BookLevel(price=Decimal("100.11"), size=Decimal(5))))
        self.balance_list = [Balance(currency="USD", total=Decimal(1000), available=Decimal(900))]
        self.position_list: list[VenuePosition] = []
        self.fill_pages: dict[str | None, FillPage] = {}
        self.failing_reads: set[str] = set()

    async def place_order(self, order: Order, authorization: LiveWriteAuthorization) -> PlaceResult:
        self.placed.append((order, authorization))
        return await super().place_order(order, authorization)

    async def cancel_order(self, order: Order, venue_order_id: str, authorization: LiveWriteAuthorization) -> None:
        self.cancelled.append((order, venue_order_id, authorization))
        await super().cancel_order(order, venue_order_id, authorization)

    async def _place_order(self, order: Order) -> PlaceResult:
        outcome = self.place_outcome
        if isinstance(outcome, Exception):
            raise outcome
        return outcome or PlaceResult(venue_order_id=f"v-{order.order_id}", client_order_id=order.client_order_id,
                                      status=OrderStatus.OPEN, venue_response={"token": "t0ps3cret", "ok": True})

    async def _cancel_order(self, venue_order_id: str) -> None:
        if self.cancel_outcome is not None:
            raise self.cancel_outcome

    def _read(self, name: str) -> None:
        if name in self.failing_reads:
            raise RuntimeError(f"{name} failed")

    async def health(self) -> ConnectorHealth:
        return ConnectorHealth(venue=self.venue, reachable=True, authenticated=True,
                               market_data_mode=MarketDataMode.POLLING, latency_ms=1.0, checked_at=T0)

    async def instruments(self) -> list[Instrument]:
        return [btc()]

    async def quotes(self, instrument_ids: Sequence[str]) -> AsyncGenerator[Quote, None]:
        yield quote()

    async def order_book(self, instrument_id: str, depth: int = 10) -> OrderBook:
        self._read("order_book")
        return self.book

    async def balances(self) -> list[Balance]:
        self._read("balances")
        return self.balance_list

    async def positions(self) -> list[VenuePosition]:
        self._read("positions")
        return self.position_list

    async def open_orders(self) -> list[VenueOrder]:
        self._read("open_orders")
        return self.listed

    async def fills_since(self, cursor: str | None) -> FillPage:
        self._read("fills")
        return self.fill_pages.get(cursor, FillPage(fills=(), cursor=None))

    async def close(self) -> None:
        return None


class MemoryVenueState(VenueState):
    def __init__(self) -> None:
        self.refs: dict[str, dict[str, LiveOrderRef]] = {}
        self.fills: dict[str, dict[str, VenueFill]] = {}
        self.held: dict[str, list[VenueFill]] = {}
        self.cursors: dict[str, str] = {}
        self.seeded_accounts: set[str] = set()

    async def remember(self, binding: str, ref: LiveOrderRef) -> None:
        refs = self.refs.setdefault(binding, {})
        refs[f"c:{ref.client_order_id}"] = ref
        if ref.venue_order_id is not None:
            refs[f"v:{ref.venue_order_id}"] = ref

    async def ref_for(self, binding: str, fill: VenueFill) -> LiveOrderRef | None:
        refs = self.refs.get(binding, {})
        return refs.get(f"c:{fill.client_order_id}") or refs.get(f"v:{fill.venue_order_id}")

    async def record_fill(self, order_id: str, fill: VenueFill) -> None:
        self.fills.setdefault(order_id, {})[fill.venue_trade_id] = fill

    async def fills_of(self, order_id: str) -> list[VenueFill]:
        return list(self.fills.get(order_id, {}).values())

    async def unattributed(self, binding: str) -> list[VenueFill]:
        return list(self.held.get(binding, []))

    async def hold_unattributed(self, binding: str, fills: Any) -> None:
        self.held[binding] = list(fills)

    async def cursor(self, binding: str) -> str | None:
        return self.cursors.get(binding)

    async def set_cursor(self, binding: str, cursor: str) -> None:
        self.cursors[binding] = cursor

    async def seeded(self, account_id: str) -> bool:
        return account_id in self.seeded_accounts


LIVE = account(ExecutionMode.LIVE, account_id="live-1", cash="50000")
SHADOW = account(ExecutionMode.SHADOW, account_id="shadow-1", cash="0")
PAPER = account(ExecutionMode.PAPER, account_id="paper-1")


@dataclass
class FakeKit:
    """The parts of AgentKit the venue drivers use."""

    live_enabled: bool = True
    quote: Quote | None = field(default_factory=quote)
    sent: list[tuple[str, str, BaseModel]] = field(default_factory=list)
    flushed: int = 0

    def __post_init__(self) -> None:
        self.accounts: dict[str, Account] = {a.account_id: a for a in (LIVE, SHADOW, PAPER)}
        self.catalog = InstrumentCatalog([btc()])
        self.settings = SimpleNamespace(topic_prefix="t.", connectors=SimpleNamespace(poll_interval_s=0.0))
        self.control = SimpleNamespace(read=self._read)
        self.app = SimpleNamespace(producer=SimpleNamespace(flush=self._flush))

    async def _read(self, account: Account, instrument_ids: Sequence[str], connector: str) -> OrderPathView:
        flag = LiveEnabled(user_id=OWNER.user_id, connector=connector, enabled=self.live_enabled, actor="t", at=T0)
        return OrderPathView(quotes={}, switches={}, account_state=(TradingState.ACTIVE, ""),
                             policy=policy().model_copy(update={"scope": f"org:{OWNER.org_id}"}), live_enabled=flag)

    async def _flush(self) -> None:
        self.flushed += 1

    async def latest_quote(self, instrument_id: str) -> Quote | None:
        return self.quote

    async def send(self, spec: TopicSpec, key: str, record: BaseModel, trace_id: str | None) -> None:
        self.sent.append((spec.name, key, record))

    def as_kit(self) -> AgentKit:
        return cast(AgentKit, self)


def registry_with(connector: Connector, *account_ids: str) -> ConnectorRegistry:
    return ConnectorRegistry([Binding(name="coinbase", venue=Venue.COINBASE, connector=connector,
                                      account_ids=frozenset(account_ids or (LIVE.account_id, SHADOW.account_id)),
                                      instrument_ids=(btc().instrument_id,))])
