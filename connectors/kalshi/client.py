"""Kalshi REST endpoints on top of the shared HTTP client: typed answers, cursor pagination, signed or public."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from connectors.errors import MalformedResponseError
from connectors.http import Signer, VenueHttpClient
from connectors.kalshi import constants as c
from connectors.kalshi.config import KalshiConfig
from connectors.kalshi.parsing import VENUE, decode, raw_text, read_error
from connectors.kalshi.schemas import (
    BalanceBody,
    CancelOrderResponse,
    CreateOrderResponse,
    Event,
    EventEnvelope,
    ExchangeStatus,
    Fill,
    FillsPage,
    Market,
    MarketEnvelope,
    MarketPosition,
    MarketsPage,
    Order,
    Orderbook,
    OrderbookEnvelope,
    OrderEnvelope,
    OrdersPage,
    Page,
    PositionsPage,
    Series,
    SeriesEnvelope,
    Trade,
    TradesPage,
)
from connectors.resilience import TokenBucket
from tradestream.logging import get_logger

log = get_logger(__name__)

P = TypeVar("P", bound=Page)
T = TypeVar("T")


class KalshiRestClient:
    def __init__(self, config: KalshiConfig, signer: Signer, *, rng: random.Random | None = None) -> None:
        self._http = VenueHttpClient(
            venue=VENUE, base_url=config.rest_base_url, signer=signer,
            read_bucket=TokenBucket(config.read_rate_per_s, config.read_rate_per_s),
            write_bucket=TokenBucket(config.write_rate_per_s, config.write_rate_per_s),
            read_error=read_error, timeout_s=config.timeout_s, backoff=config.retry_policy,
            rng=rng or random.Random(),
        )
        self._page_limit = config.page_limit

    async def close(self) -> None:
        await self._http.close()

    # Public market data (unsigned).

    async def exchange_status(self) -> ExchangeStatus:
        payload = await self._http.request("GET", c.EXCHANGE_STATUS, signed=False, retry=False)
        return decode(ExchangeStatus, payload, c.EXCHANGE_STATUS)

    async def markets(self, *, status: str | None = None, series_ticker: str | None = None) -> list[Market]:
        return await self._collect(c.MARKETS, MarketsPage, lambda page: page.markets,
                                   {"status": status, "series_ticker": series_ticker}, signed=False)

    async def market(self, ticker: str) -> Market:
        path = c.MARKET.format(ticker=quote(ticker, safe=""))
        return decode(MarketEnvelope, await self._http.request("GET", path, signed=False), path).market

    async def event(self, event_ticker: str) -> Event:
        path = c.EVENT.format(event_ticker=quote(event_ticker, safe=""))
        return decode(EventEnvelope, await self._http.request("GET", path, signed=False), path).event

    async def series(self, series_ticker: str) -> Series:
        path = c.SERIES.format(series_ticker=quote(series_ticker, safe=""))
        return decode(SeriesEnvelope, await self._http.request("GET", path, signed=False), path).series

    async def trades(self, ticker: str, *, min_ts: int | None = None) -> list[Trade]:
        return await self._collect(c.TRADES, TradesPage, lambda page: page.trades,
                                   {"ticker": ticker, "min_ts": min_ts}, signed=False)

    async def orderbook(self, ticker: str, depth: int) -> Orderbook:
        # Signed: the 2026 spec lists API-key security on this endpoint although other market data is public.
        path = c.ORDERBOOK.format(ticker=quote(ticker, safe=""))
        payload = await self._http.request("GET", path, params={"depth": depth})
        return decode(OrderbookEnvelope, payload, path).orderbook_fp

    # Portfolio (signed).

    async def balance(self, *, retry: bool = True) -> BalanceBody:
        return decode(BalanceBody, await self._http.request("GET", c.BALANCE, retry=retry), c.BALANCE)

    async def positions(self) -> list[MarketPosition]:
        return await self._collect(c.POSITIONS, PositionsPage, lambda page: page.market_positions,
                                   {"count_filter": "position"})

    async def orders(self, *, status: c.KalshiOrderStatus | None = None, ticker: str | None = None,
                     min_ts: int | None = None) -> list[Order]:
        return await self._collect(c.ORDERS, OrdersPage, lambda page: page.orders,
                                   {"status": status.value if status else None, "ticker": ticker, "min_ts": min_ts})

    async def order(self, order_id: str) -> Order:
        path = c.ORDER.format(order_id=quote(order_id, safe=""))
        return decode(OrderEnvelope, await self._http.request("GET", path), path).order

    async def fills(self, *, min_ts: int | None = None) -> list[Fill]:
        return await self._collect(c.FILLS, FillsPage, lambda page: page.fills, {"min_ts": min_ts})

    async def create_order(self, body: Mapping[str, Any]) -> CreateOrderResponse:
        # Retries inside the shared client re-send this very body, hence the same client_order_id.
        payload = await self._http.request("POST", c.CREATE_ORDER, body=body, write=True)
        answer = decode(CreateOrderResponse, payload, c.CREATE_ORDER)
        if answer.client_order_id not in (None, body["client_order_id"]):
            raise MalformedResponseError(VENUE, "create order: the answer names another client order id",
                                         raw_body=raw_text(payload))
        return answer

    async def cancel_order(self, order_id: str) -> CancelOrderResponse:
        path = c.CANCEL_ORDER.format(order_id=quote(order_id, safe=""))
        return decode(CancelOrderResponse, await self._http.request("DELETE", path, write=True), path)

    async def _collect(self, path: str, page_model: type[P], items: Callable[[P], tuple[T, ...]],
                       params: Mapping[str, Any], *, signed: bool = True) -> list[T]:
        """Every page of a cursor-paginated listing (an empty or missing cursor ends it)."""
        query = {key: value for key, value in params.items() if value is not None}
        query["limit"] = self._page_limit
        collected: list[T] = []
        cursor: str | None = None
        while True:
            payload = await self._http.request("GET", path, params={**query, **({"cursor": cursor} if cursor
                                                                                 else {})}, signed=signed)
            page = decode(page_model, payload, path)
            collected.extend(items(page))
            if not page.cursor:
                return collected
            if page.cursor == cursor:
                raise MalformedResponseError(VENUE, f"{path}: the pagination cursor did not advance",
                                             raw_body=raw_text(payload))
            cursor = page.cursor
