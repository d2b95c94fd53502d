"""The venue drivers' loops, with an in-memory connector and state: how venue fills are attributed and when the
cursor moves, and what a shadow ledger starts from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from agents.venues import LiveOrderRef, poll_fills, read_seed
from connectors.errors import VenueUnavailableError
from core.instruments import InstrumentCatalog
from core.orders import Order, OrderStatus, new_order
from core.types import ExecutionMode, Liquidity, Side
from core.venue import FillPage, VenueFill, VenuePosition
from streams.records import FillReported
from tests.kit.builders import T0, btc, intent
from tests.unit.agents.fakes import LIVE, SHADOW, FakeConnector, FakeKit, MemoryVenueState, registry_with

BTC = btc().instrument_id


def pending_live(quantity: str = "2") -> Order:
    order = new_order(intent(quantity=quantity, limit_price="100.00", mode=ExecutionMode.LIVE, acct=LIVE),
                      "APPROVED", "", T0)
    return order.transition(OrderStatus.PENDING_SUBMIT, T0, effective_mode=ExecutionMode.LIVE)


def fill(trade_id: str, venue_order_id: str, client_order_id: str | None = None, age: timedelta = timedelta(0),
         quantity: str = "1") -> VenueFill:
    return VenueFill(venue=FakeConnector.venue, venue_trade_id=trade_id, venue_order_id=venue_order_id,
                     client_order_id=client_order_id, instrument_id=BTC, side=Side.BUY, quantity=Decimal(quantity),
                     price=Decimal("99.50"), fee=Decimal("0.10"), liquidity=Liquidity.MAKER,
                     ts=datetime.now(UTC) - age)


def test_a_venue_fill_becomes_a_live_fill_of_its_order() -> None:
    order = pending_live()
    ours = LiveOrderRef.of(order, "v-1").fill(fill("t1", "v-1"))
    assert (ours.order_id, ours.account_id, ours.trace_id, ours.mode, ours.venue, ours.venue_trade_id) == \
        (order.order_id, LIVE.account_id, order.trace_id, ExecutionMode.LIVE, "coinbase", "t1")
    assert (ours.quantity, ours.price, ours.fee, ours.liquidity) == \
        (Decimal(1), Decimal("99.50"), Decimal("0.10"), Liquidity.MAKER)


async def test_fills_are_attributed_emitted_by_account_and_then_the_cursor_moves() -> None:
    connector, state, kit = FakeConnector(), MemoryVenueState(), FakeKit()
    binding = registry_with(connector).bindings[0]
    order = pending_live()
    await state.remember("coinbase", LiveOrderRef.of(order))  # known by client order id before any venue id
    connector.fill_pages[None] = FillPage(fills=(fill("t1", "v-1", order.client_order_id),
                                                 fill("t9", "v-elsewhere")), cursor="c1")
    await poll_fills(kit.as_kit(), state, binding)
    ((topic, key, record),) = kit.sent
    assert (topic, key) == ("orders.events", LIVE.account_id)
    assert isinstance(record, FillReported) and record.fill.venue_trade_id == "t1"
    assert [f.venue_trade_id for f in await state.fills_of(order.order_id)] == ["t1"]
    # A fill no order claims yet is kept, not dropped and not guessed at; the cursor moves past both.
    assert [f.venue_trade_id for f in await state.unattributed("coinbase")] == ["t9"]
    assert (kit.flushed, state.cursors) == (1, {"coinbase": "c1"})


async def test_a_fill_that_arrived_before_its_order_was_known_is_reported_once_it_is() -> None:
    connector, state, kit = FakeConnector(), MemoryVenueState(), FakeKit()
    binding = registry_with(connector).bindings[0]
    order = pending_live()
    connector.fill_pages[None] = FillPage(fills=(fill("t1", "v-1"),), cursor="c1")
    await poll_fills(kit.as_kit(), state, binding)
    assert kit.sent == []
    await state.remember("coinbase", LiveOrderRef.of(order, "v-1"))
    await poll_fills(kit.as_kit(), state, binding)  # nothing new after c1; the held fill is tried again
    assert [r.fill.order_id for _, _, r in kit.sent if isinstance(r, FillReported)] == [order.order_id]
    assert await state.unattributed("coinbase") == []


async def test_an_unclaimed_fill_is_given_up_after_a_day() -> None:
    connector, state, kit = FakeConnector(), MemoryVenueState(), FakeKit()
    connector.fill_pages[None] = FillPage(fills=(fill("old", "v-x", age=timedelta(days=2)),), cursor=None)
    await poll_fills(kit.as_kit(), state, registry_with(connector).bindings[0])
    assert await state.unattributed("coinbase") == []


async def test_a_failed_poll_keeps_the_cursor() -> None:
    connector, state, kit = FakeConnector(), MemoryVenueState(), FakeKit()
    state.cursors["coinbase"] = "c0"

    async def down(cursor: str | None) -> FillPage:
        raise VenueUnavailableError(FakeConnector.venue, "ConnectError")

    connector.fills_since = down  # type: ignore[method-assign]
    await poll_fills(kit.as_kit(), state, registry_with(connector).bindings[0])
    assert (state.cursors, kit.sent) == ({"coinbase": "c0"}, [])


async def test_a_shadow_seed_is_the_venue_accounts_cash_and_positions() -> None:
    connector = FakeConnector()
    connector.position_list = [VenuePosition(instrument_id=BTC, venue_symbol="BTC-USD", quantity=Decimal("1.5"))]
    seed = await read_seed(SHADOW, registry_with(connector).bindings, InstrumentCatalog([btc()]))
    assert seed is not None
    ledger = seed.ledger
    assert (ledger.account_id, ledger.mode, ledger.cash) == (SHADOW.account_id, ExecutionMode.SHADOW, Decimal(1000))
    position = ledger.positions[BTC]
    # No cost from the venue: the mid now, so the shadow's PnL counts from the seed.
    assert (position.quantity, position.average_price) == (Decimal("1.5"), Decimal("100.05"))
    assert seed.connectors == ("coinbase",)


@pytest.mark.parametrize("read", ["balances", "positions", "order_book"])
async def test_no_shadow_seed_from_a_failed_read(read: str) -> None:
    connector = FakeConnector()
    connector.position_list = [VenuePosition(instrument_id=BTC, venue_symbol="BTC-USD", quantity=Decimal(1))]
    connector.failing_reads.add(read)
    assert await read_seed(SHADOW, registry_with(connector).bindings, InstrumentCatalog([btc()])) is None
