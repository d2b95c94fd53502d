"""The contract every connector must pass against its venue's stand-in (Hummingbot's shared-suite pattern).

A venue's test module subclasses `ConnectorContract` and provides the `standin` and `connector` fixtures (and
`tradeable_instrument_id`). Venue-specific behaviour is tested beside it in that module.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connectors.base import Connector
from connectors.errors import AuthenticationError, MalformedResponseError
from core.accounts import Owner
from core.orders import IntentSource, Order, OrderIntent, OrderStatus, new_order
from core.types import ExecutionMode, OrderType, Side
from core.venue import LiveWriteAuthorization
from tests.standins.base import Fault, StandIn

OWNER = Owner(org_id="acme", user_id="alice")


def live_order(instrument_id: str, quantity: Decimal, limit_price: Decimal, side: Side = Side.BUY) -> Order:
    intent = OrderIntent(
        trace_id=uuid.uuid4().hex, account_id="live-1", owner=OWNER, strategy_id="contract",
        idempotency_key=uuid.uuid4().hex, instrument_id=instrument_id, side=side, order_type=OrderType.LIMIT,
        quantity=quantity, limit_price=limit_price, requested_mode=ExecutionMode.LIVE, source=IntentSource.API,
        created_at=datetime.now(UTC))
    now = datetime.now(UTC)
    return new_order(intent, "APPROVED", "", now).transition(OrderStatus.PENDING_SUBMIT, now,
                                                             effective_mode=ExecutionMode.LIVE)


def authorize(order: Order, mode: ExecutionMode = ExecutionMode.LIVE) -> LiveWriteAuthorization:
    return LiveWriteAuthorization(order_id=order.order_id, client_order_id=order.client_order_id,
                                  effective_mode=mode, issued_at=datetime.now(UTC))


class ConnectorContract:
    """Subclasses provide fixtures: standin (StandIn), connector (Connector), order_spec (instrument_id,
    quantity, limit price of a resting order) and bad_credentials_connector."""

    async def test_health_reports_reachable_and_authenticated(self, connector: Connector) -> None:
        health = await connector.health()
        assert health.reachable and health.authenticated
        assert health.venue is connector.venue

    async def test_instruments_are_canonical(self, connector: Connector) -> None:
        instruments = await connector.instruments()
        assert instruments
        assert all(i.venue is connector.venue for i in instruments)
        assert {i.asset_class for i in instruments} <= connector.capabilities.asset_classes

    async def test_order_book_is_sorted_best_first(self, connector: Connector,
                                                   order_spec: tuple[str, Decimal, Decimal]) -> None:
        book = await connector.order_book(order_spec[0])
        assert book.bids and book.asks
        assert [b.price for b in book.bids] == sorted((b.price for b in book.bids), reverse=True)
        assert [a.price for a in book.asks] == sorted(a.price for a in book.asks)
        assert book.bids[0].price < book.asks[0].price

    async def test_quotes_stream_yields_a_valid_quote(self, connector: Connector,
                                                      order_spec: tuple[str, Decimal, Decimal]) -> None:
        stream = connector.quotes([order_spec[0]])
        try:
            async with asyncio.timeout(15):
                quote = await anext(aiter(stream))
        finally:
            await stream.aclose()  # an async generator; close it before the connector
        assert quote.instrument_id == order_spec[0]
        assert quote.bid <= quote.ask

    async def test_account_reads(self, connector: Connector) -> None:
        assert await connector.balances()
        await connector.positions()
        await connector.open_orders()
        page = await connector.fills_since(None)
        assert isinstance(page.fills, tuple)

    async def test_write_without_live_authorization_is_refused_and_never_sent(
            self, connector: Connector, standin: StandIn, order_spec: tuple[str, Decimal, Decimal]) -> None:
        order = live_order(*order_spec)
        for auth in (authorize(order, ExecutionMode.PAPER), authorize(order, ExecutionMode.SHADOW),
                     authorize(live_order(*order_spec))):
            with pytest.raises(PermissionError):
                await connector.place_order(order, auth)
        assert standin.write_calls == 0

    async def test_one_live_order_is_one_write(self, connector: Connector, standin: StandIn,
                                               order_spec: tuple[str, Decimal, Decimal]) -> None:
        order = live_order(*order_spec)
        result = await connector.place_order(order, authorize(order))
        assert result.client_order_id == order.client_order_id
        assert standin.write_calls == 1
        assert standin.order_count() == 1
        open_ids = {o.client_order_id for o in await connector.open_orders()}
        assert order.client_order_id in open_ids

    async def test_lost_response_is_recovered_without_a_second_order(
            self, connector: Connector, standin: StandIn, order_spec: tuple[str, Decimal, Decimal]) -> None:
        standin.inject(Fault.LOSE_ORDER_RESPONSE)
        order = live_order(*order_spec)
        result = await connector.place_order(order, authorize(order))
        assert result.client_order_id == order.client_order_id
        assert result.recovered
        assert standin.order_count() == 1

    async def test_server_errors_and_rate_limits_are_retried(
            self, connector: Connector, standin: StandIn, order_spec: tuple[str, Decimal, Decimal]) -> None:
        standin.inject(Fault.SERVER_ERROR, 2)
        standin.inject(Fault.RATE_LIMIT, 1)
        order = live_order(*order_spec)
        await connector.place_order(order, authorize(order))
        assert standin.order_count() == 1

    async def test_cancel(self, connector: Connector, standin: StandIn,
                          order_spec: tuple[str, Decimal, Decimal]) -> None:
        order = live_order(*order_spec)
        placed = await connector.place_order(order, authorize(order))
        await connector.cancel_order(order, placed.venue_order_id, authorize(order))
        assert order.client_order_id not in {o.client_order_id for o in await connector.open_orders()}

    async def test_fill_is_reported_once_even_when_delivered_twice(
            self, connector: Connector, standin: StandIn, order_spec: tuple[str, Decimal, Decimal]) -> None:
        order = live_order(*order_spec)
        placed = await connector.place_order(order, authorize(order))
        standin.inject(Fault.DUPLICATE_FILL)
        standin.fill_resting_order(placed.venue_order_id, order.quantity, order_spec[2])
        page = await connector.fills_since(None)
        trade_ids = [f.venue_trade_id for f in page.fills if f.venue_order_id == placed.venue_order_id]
        assert len(trade_ids) == len(set(trade_ids)) == 1
        again = await connector.fills_since(page.cursor)
        assert all(f.venue_trade_id not in trade_ids for f in again.fills)

    async def test_bad_credentials_are_an_authentication_error(self, bad_credentials_connector: Connector) -> None:
        with pytest.raises(AuthenticationError):
            await bad_credentials_connector.balances()

    async def test_malformed_answer_is_a_connector_error_with_the_raw_body(
            self, connector: Connector, standin: StandIn) -> None:
        standin.inject(Fault.MALFORMED)
        with pytest.raises(MalformedResponseError) as caught:
            await connector.balances()
        assert caught.value.raw_body
