"""Kalshi stand-in: an aiohttp server (REST + websocket on 127.0.0.1, a free port) answering in Kalshi's 2026
wire format, for the connector's contract and venue tests.

It verifies every RSA-PSS signature (REST and the websocket handshake) with the test public key and answers a bad
one with 401; enforces token-bucket rate limits answering 429 without Retry-After; holds orders (a resting order
rests until cancelled or filled by `fill_resting_order`); refuses a reused client_order_id with 409; counts write
calls; and injects every `Fault`. Its state starts from resources/kalshi/exchange.json.

This is an independent implementation of the venue's rules: it imports nothing from the connector.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import math
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.standins.base import Fault

API = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"
EXCHANGE_FILE = Path(__file__).parent / "resources" / "kalshi" / "exchange.json"
MALFORMED_BODY = {"balance_dollars": 1234.5, "note": "not the documented shape"}
CENT = Decimal("0.01")
ONE = Decimal(1)
_DOLLARS = re.compile(r"\d+(\.\d{1,6})?")
_COUNT = re.compile(r"\d+(\.\d{1,2})?")


def generate_key() -> tuple[str, rsa.RSAPublicKey]:
    """A fresh RSA key pair for a test run: (private key PEM, public key). Never committed anywhere."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


def _dollars(value: Decimal) -> str:
    return f"{value:.4f}" if value == value.quantize(Decimal("0.0001")) else f"{value:.6f}"


def _count(value: Decimal) -> str:
    return f"{value:.2f}"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, code: str, message: str, *, nested: bool = False) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message, "details": ""}
    return web.json_response({"error": body} if nested else body, status=status)


class _RefusedError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.response = _error(status, code, message)


@dataclass
class _Market:
    ticker: str
    event_ticker: str
    status: str
    close_time: str
    fractional: bool
    price_ranges: list[dict[str, str]]
    yes: dict[Decimal, Decimal]
    no: dict[Decimal, Decimal]
    last_price: Decimal = Decimal("0.50")
    volume: Decimal = Decimal(0)
    result: str = ""

    def valid_price(self, price: Decimal) -> bool:
        return any(Decimal(r["start"]) <= price <= Decimal(r["end"])
                   and (price - Decimal(r["start"])) % Decimal(r["step"]) == 0 for r in self.price_ranges)

    def wire(self) -> dict[str, Any]:
        yes_bid = max(self.yes, default=Decimal(0))
        best_no = max(self.no, default=Decimal(0))
        no_ask = ONE - yes_bid if self.yes else ONE
        return {
            "ticker": self.ticker, "event_ticker": self.event_ticker, "market_type": "binary",
            "yes_sub_title": self.ticker, "no_sub_title": self.ticker, "status": self.status,
            "created_time": "2025-12-01T00:00:00Z", "updated_time": "2025-12-01T00:00:00Z",
            "open_time": "2025-12-01T00:00:00Z", "close_time": self.close_time,
            "latest_expiration_time": self.close_time, "settlement_timer_seconds": 300,
            "notional_value_dollars": "1.0000",
            "yes_bid_dollars": _dollars(yes_bid), "yes_bid_size_fp": _count(self.yes.get(yes_bid, Decimal(0))),
            "yes_ask_dollars": _dollars(ONE - best_no if self.no else ONE),
            "yes_ask_size_fp": _count(self.no.get(best_no, Decimal(0))),
            "no_bid_dollars": _dollars(best_no), "no_ask_dollars": _dollars(no_ask),
            "last_price_dollars": _dollars(self.last_price), "previous_price_dollars": "0.5000",
            "volume_fp": _count(self.volume), "volume_24h_fp": _count(self.volume), "open_interest_fp": "0.00",
            "liquidity_dollars": "0.0000", "result": self.result, "can_close_early": True,
            "fractional_trading_enabled": self.fractional, "expiration_value": "", "rules_primary": "",
            "rules_secondary": "", "price_level_structure": "custom", "price_ranges": self.price_ranges,
            # A field the connector does not read, as a JSON number: ignored, never an error.
            "floor_strike": 60.5,
        }


@dataclass
class _Order:
    order_id: str
    client_order_id: str
    ticker: str
    book_side: str
    price: Decimal
    initial: Decimal
    time_in_force: str
    self_trade_prevention: str
    created: datetime
    filled: Decimal = Decimal(0)
    status: str = "resting"
    maker_fees: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        return Decimal(0) if self.status != "resting" else self.initial - self.filled

    def wire(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id, "user_id": "standin-user", "client_order_id": self.client_order_id,
            "ticker": self.ticker, "outcome_side": "yes" if self.book_side == "bid" else "no",
            "book_side": self.book_side, "type": "limit", "status": self.status,
            "yes_price_dollars": _dollars(self.price), "no_price_dollars": _dollars(ONE - self.price),
            "fill_count_fp": _count(self.filled), "remaining_count_fp": _count(self.remaining),
            "initial_count_fp": _count(self.initial), "taker_fees_dollars": "0.0000",
            "maker_fees_dollars": _dollars(self.maker_fees), "taker_fill_cost_dollars": "0.0000",
            "maker_fill_cost_dollars": _dollars(self.filled * self.price), "created_time": _iso(self.created),
            "last_update_time": _iso(self.created), "self_trade_prevention_type": self.self_trade_prevention,
        }


@dataclass
class _Fill:
    trade_id: str
    order: _Order
    count: Decimal
    price: Decimal
    fee: Decimal
    created: datetime

    def rest(self) -> dict[str, Any]:
        return {
            "fill_id": self.trade_id, "trade_id": self.trade_id, "order_id": self.order.order_id,
            "ticker": self.order.ticker, "market_ticker": self.order.ticker,
            "outcome_side": "yes" if self.order.book_side == "bid" else "no", "book_side": self.order.book_side,
            "count_fp": _count(self.count), "yes_price_dollars": _dollars(self.price),
            "no_price_dollars": _dollars(ONE - self.price), "is_taker": False, "fee_cost": _dollars(self.fee),
            "created_time": _iso(self.created),
        }

    def stream(self) -> dict[str, Any]:
        return {
            "trade_id": self.trade_id, "order_id": self.order.order_id, "market_ticker": self.order.ticker,
            "is_taker": False, "yes_price_dollars": _dollars(self.price), "count_fp": _count(self.count),
            "fee_cost": _dollars(self.fee), "outcome_side": "yes" if self.order.book_side == "bid" else "no",
            "book_side": self.order.book_side, "ts_ms": _ms(self.created),
        }


@dataclass
class _Sub:
    channel: str
    tickers: frozenset[str] | None
    seq: int = 0


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    subs: dict[int, _Sub] = field(default_factory=dict)

    def send(self, message: dict[str, Any]) -> None:
        self.outbox.put_nowait(message)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _Bucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class KalshiStandIn:
    """Implements `tests.standins.base.StandIn` for Kalshi. Use as `async with KalshiStandIn(keys) as venue:`."""

    def __init__(self, public_keys: Mapping[str, rsa.RSAPublicKey], *, reads_per_s: float = 20.0,
                 writes_per_s: float = 10.0, slow_s: float = 1.0, ws_heartbeat_s: float = 10.0,
                 balance: Decimal = Decimal("1000.00"), clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 ) -> None:
        self._keys = dict(public_keys)
        self._rates = (reads_per_s, writes_per_s)
        self._buckets: dict[tuple[str, bool], _Bucket] = {}
        self._slow_s = slow_s
        self._heartbeat_s = ws_heartbeat_s
        self._clock = clock
        self._faults: Counter[Fault] = Counter()
        exchange = json.loads(EXCHANGE_FILE.read_text())
        self._series: dict[str, dict[str, Any]] = {s["ticker"]: s for s in exchange["series"]}
        self._events: dict[str, dict[str, Any]] = {e["event_ticker"]: e for e in exchange["events"]}
        self._markets: dict[str, _Market] = {}
        for m in exchange["markets"]:
            self._markets[m["ticker"]] = _Market(
                ticker=m["ticker"], event_ticker=m["event_ticker"], status=m["status"], close_time=m["close_time"],
                fractional=m["fractional_trading_enabled"], price_ranges=m["price_ranges"],
                yes={Decimal(p): Decimal(s) for p, s in m["book"]["yes"]},
                no={Decimal(p): Decimal(s) for p, s in m["book"]["no"]})
        self._orders: dict[str, _Order] = {}
        self._fills: list[_Fill] = []
        self._balance = balance
        self._positions: dict[str, Decimal] = {}
        self._connections: set[_Connection] = set()
        self._sids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.ws_url = ""
        self.write_calls = 0
        self.requests: Counter[str] = Counter()
        """"METHOD /path" -> requests received (faulted and refused ones included)."""
        self.rate_limited = 0
        self.retry_after_headers = 0
        """429 answers that carried a Retry-After header (Kalshi sends none: this stays 0)."""
        self.auth_failures = 0
        self.signatures: list[str] = []
        """Every KALSHI-ACCESS-SIGNATURE received, so tests can look for them where they must never appear."""
        self.ws_connections = 0
        self.ws_commands: Counter[str] = Counter()
        """"subscribe:<channel>" / "unsubscribe" -> commands received."""

    # --- Lifecycle ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> KalshiStandIn:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(WS_PATH, self._websocket)
        routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.Response]]]] = [
            ("GET", "/exchange/status", self._exchange_status),
            ("GET", "/markets", self._list_markets),
            ("GET", "/markets/trades", self._trades),
            ("GET", "/markets/{ticker}", self._market),
            ("GET", "/markets/{ticker}/orderbook", self._orderbook),
            ("GET", "/events/{event_ticker}", self._event),
            ("GET", "/series/{series_ticker}", self._one_series),
            ("GET", "/portfolio/balance", self._get_balance),
            ("GET", "/portfolio/positions", self._get_positions),
            ("GET", "/portfolio/orders", self._list_orders),
            ("GET", "/portfolio/orders/{order_id}", self._get_order),
            ("GET", "/portfolio/fills", self._list_fills),
            ("POST", "/portfolio/events/orders", self._create_order),
            ("DELETE", "/portfolio/events/orders/{order_id}", self._cancel_order),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, API + path, handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}{API}"
        self.ws_url = f"ws://{host}:{port}{WS_PATH}"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for connection in list(self._connections):
            connection.abort()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- StandIn protocol -----------------------------------------------------------------------------------

    def inject(self, fault: Fault, count: int = 1) -> None:
        self._faults[fault] += count
        if fault is Fault.DROP_WEBSOCKET:
            # Open sockets drop now; what is left of the count drops the next handshakes.
            for connection in list(self._connections):
                if self._take(Fault.DROP_WEBSOCKET):
                    connection.abort()

    def set_top_of_book(self, venue_symbol: str, bid: Decimal, ask: Decimal, size: Decimal) -> None:
        """Make `bid`/`ask` the only YES bid and ask (a NO bid at 1 - ask), streaming the deltas and a ticker."""
        market = self._markets[venue_symbol]
        legs = (("yes", market.yes, {bid: size}), ("no", market.no, {ONE - ask: size}))
        changes = [(target.get(price, Decimal(0)) - ladder.get(price, Decimal(0)), side, price)
                   for side, ladder, target in legs for price in sorted(set(ladder) | set(target))]
        # Removals first, as a venue's book never crosses between two deltas.
        for delta, side, price in sorted(changes, key=lambda change: change[0] > 0):
            if delta:
                self._book_delta(market, side, price, delta)
        for _, ladder, target in legs:
            ladder.clear()
            ladder.update(target)
        self._broadcast("ticker", market.ticker, {
            "market_ticker": market.ticker, "price_dollars": _dollars(market.last_price),
            "yes_bid_dollars": _dollars(bid), "yes_ask_dollars": _dollars(ask), "volume_fp": _count(market.volume),
            "ts_ms": _ms(self._clock())})

    def fill_resting_order(self, venue_order_id: str, quantity: Decimal, price: Decimal) -> None:
        order = self._orders[venue_order_id]
        if order.status != "resting" or quantity <= 0 or quantity > order.remaining:
            raise ValueError(f"order {venue_order_id} cannot fill {quantity} (status {order.status})")
        market = self._markets[order.ticker]
        fee = self._maker_fee(market, quantity, price)
        fill = _Fill(trade_id=str(uuid.uuid4()), order=order, count=quantity, price=price, fee=fee,
                     created=self._clock())
        order.filled += quantity
        order.maker_fees += fee
        if order.filled == order.initial:
            order.status = "executed"
        signed = quantity if order.book_side == "bid" else -quantity
        self._positions[order.ticker] = self._positions.get(order.ticker, Decimal(0)) + signed
        cost = price if order.book_side == "bid" else ONE - price
        self._balance -= cost * quantity + fee
        market.last_price = price
        market.volume += quantity
        copies = 2 if self._take(Fault.DUPLICATE_FILL) else 1
        for _ in range(copies):
            self._fills.append(fill)
            self._broadcast("fill", order.ticker, fill.stream())

    def set_close_time(self, venue_symbol: str, when: datetime) -> None:
        """Move the market's close (the recorded ones are in the past: an expired market is not tradeable)."""
        self._markets[venue_symbol].close_time = _iso(when)

    def settle_market(self, venue_symbol: str, result: str) -> None:
        """Finalize the market with `result` ("yes" or "no"), as Kalshi does once it has settled: it leaves the open
        listing, GET /markets/{ticker} shows it `finalized` with its result, its resting orders are cancelled and its
        positions paid out."""
        if result not in ("yes", "no"):
            raise ValueError(f"a binary market settles yes or no, not {result!r}")
        market = self._markets[venue_symbol]
        market.status, market.result = "finalized", result
        market.yes.clear()
        market.no.clear()
        for order in self._orders.values():
            if order.ticker == venue_symbol and order.status == "resting":
                order.status = "canceled"
        held = self._positions.pop(venue_symbol, Decimal(0))  # negative: NO contracts, paid when YES is not
        yes_pays = ONE if result == "yes" else Decimal(0)
        self._balance += held * yes_pays if held > 0 else -held * (ONE - yes_pays)

    def order_count(self) -> int:
        return len(self._orders)

    # --- Plumbing -------------------------------------------------------------------------------------------

    def _take(self, fault: Fault) -> bool:
        if self._faults[fault] > 0:
            self._faults[fault] -= 1
            return True
        return False

    def _verified(self, request: web.Request, path: str) -> str | None:
        """The key id when the request carries a valid Kalshi signature over timestamp + METHOD + path."""
        key_id = request.headers.get("KALSHI-ACCESS-KEY", "")
        timestamp = request.headers.get("KALSHI-ACCESS-TIMESTAMP", "")
        signature = request.headers.get("KALSHI-ACCESS-SIGNATURE", "")
        if signature:
            self.signatures.append(signature)
        public_key = self._keys.get(key_id)
        if public_key is None or not timestamp.isdigit():
            return None
        try:
            public_key.verify(base64.b64decode(signature, validate=True), f"{timestamp}{request.method}{path}".encode(),
                              padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
                              hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            return None
        return key_id

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if path == WS_PATH:
            return await handler(request)
        route = path.removeprefix(API)
        self.requests[f"{request.method} {route}"] += 1
        write = request.method in ("POST", "DELETE")
        if write:
            self.write_calls += 1
        bucket_key = (request.headers.get("KALSHI-ACCESS-KEY") or request.remote or "", write)
        bucket = self._buckets.setdefault(bucket_key, _Bucket(self._rates[write]))
        if self._take(Fault.RATE_LIMIT) or not bucket.take():
            self.rate_limited += 1
            return _error(429, "too_many_requests", "rate limit exceeded")  # no Retry-After, as Kalshi
        if self._take(Fault.SERVER_ERROR):
            return _error(500, "internal_server_error", "the stand-in failed on purpose")
        signed = route.startswith("/portfolio/") or route.endswith("/orderbook")
        if signed and self._verified(request, path) is None:
            self.auth_failures += 1
            return _error(401, "authentication_error", "invalid signature", nested=True)
        if self._take(Fault.MALFORMED):
            return web.json_response(MALFORMED_BODY)
        try:
            response = await handler(request)
        except _RefusedError as refused:
            return refused.response
        if self._take(Fault.SLOW):
            await asyncio.sleep(self._slow_s)  # the work is done; only the answer is late
        return response

    def _page(self, request: web.Request, items: list[dict[str, Any]], key: str,
              **extra: Any) -> web.Response:
        limit = int(request.query.get("limit", "100"))
        if not 1 <= limit <= 1000:
            raise _RefusedError(400, "invalid_parameters", "limit must be within 1..1000")
        cursor = request.query.get("cursor", "")
        start = int(base64.urlsafe_b64decode(cursor).decode()) if cursor else 0
        end = start + limit
        next_cursor = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
        return web.json_response({key: items[start:end], "cursor": next_cursor, **extra})

    # --- Market data ----------------------------------------------------------------------------------------

    async def _exchange_status(self, request: web.Request) -> web.Response:
        return web.json_response({"exchange_active": True, "trading_active": True})

    async def _list_markets(self, request: web.Request) -> web.Response:
        status = request.query.get("status")
        series = request.query.get("series_ticker")
        statuses = {"open": {"active"}, "closed": {"closed"}, "settled": {"finalized"}, "unopened": {"initialized"},
                    "paused": {"inactive"}}
        markets = [m for m in self._markets.values()
                   if (status is None or m.status in statuses.get(status, set()))
                   and (series is None or self._events[m.event_ticker]["series_ticker"] == series)]
        return self._page(request, [m.wire() for m in markets], "markets")

    def _find_market(self, request: web.Request) -> _Market:
        market = self._markets.get(request.match_info["ticker"])
        if market is None:
            raise _RefusedError(404, "not_found", "market not found")
        return market

    async def _market(self, request: web.Request) -> web.Response:
        return web.json_response({"market": self._find_market(request).wire()})

    async def _orderbook(self, request: web.Request) -> web.Response:
        market = self._find_market(request)
        depth = int(request.query.get("depth", "0")) or None

        def ladder(levels: dict[Decimal, Decimal]) -> list[list[str]]:
            best = sorted(levels, reverse=True)[:depth]
            return [[_dollars(p), _count(levels[p])] for p in sorted(best)]  # ascending: best bid last

        return web.json_response({"orderbook_fp": {"yes_dollars": ladder(market.yes), "no_dollars": ladder(market.no)}})

    async def _trades(self, request: web.Request) -> web.Response:
        ticker = request.query.get("ticker")
        min_ts = int(request.query["min_ts"]) if "min_ts" in request.query else None
        trades = [{"trade_id": f.trade_id, "ticker": f.order.ticker, "count_fp": _count(f.count),
                   "yes_price_dollars": _dollars(f.price), "no_price_dollars": _dollars(ONE - f.price),
                   "taker_side": "no" if f.order.book_side == "bid" else "yes",
                   "taker_outcome_side": "no" if f.order.book_side == "bid" else "yes",
                   "taker_book_side": "ask" if f.order.book_side == "bid" else "bid",
                   "created_time": _iso(f.created), "is_block_trade": False}
                  for f in reversed(self._fills)
                  if (ticker is None or f.order.ticker == ticker)
                  and (min_ts is None or f.created.timestamp() >= min_ts)]
        return self._page(request, trades, "trades")

    async def _event(self, request: web.Request) -> web.Response:
        event = self._events.get(request.match_info["event_ticker"])
        if event is None:
            raise _RefusedError(404, "not_found", "event not found")
        wire = {"sub_title": "", "collateral_return_type": "binary", "mutually_exclusive": False,
                "available_on_brokers": True, **event}
        return web.json_response({"event": wire, "markets": []})

    async def _one_series(self, request: web.Request) -> web.Response:
        series = self._series.get(request.match_info["series_ticker"])
        if series is None:
            raise _RefusedError(404, "not_found", "series not found")
        wire = {"tags": [], "settlement_sources": [], "contract_url": "", "contract_terms_url": "",
                "additional_prohibitions": [], **series}
        return web.json_response({"series": wire})

    def _maker_fee(self, market: _Market, count: Decimal, price: Decimal) -> Decimal:
        event = self._events[market.event_ticker]
        series = self._series[event["series_ticker"]]
        fee_type = event.get("fee_type_override") or series["fee_type"]
        if fee_type != "quadratic_with_maker_fees":
            return Decimal(0)
        multiplier = Decimal(str(event.get("fee_multiplier_override") or series["fee_multiplier"]))
        return (Decimal("0.0175") * multiplier * count * price * (ONE - price)).quantize(CENT, ROUND_CEILING)

    # --- Portfolio ------------------------------------------------------------------------------------------

    async def _get_balance(self, request: web.Request) -> web.Response:
        value = sum((abs(q) for q in self._positions.values()), Decimal(0)) * Decimal("0.5")
        return web.json_response({"balance": int(self._balance * 100), "balance_dollars": _dollars(self._balance),
                                  "portfolio_value": int(value * 100), "updated_ts": math.floor(time.time())})

    async def _get_positions(self, request: web.Request) -> web.Response:
        only_open = "position" in request.query.get("count_filter", "")
        positions = [{"ticker": t, "total_traded_dollars": "0.0000", "position_fp": _count(q),
                      "market_exposure_dollars": _dollars(abs(q) * Decimal("0.5")), "realized_pnl_dollars": "0.0000",
                      "resting_orders_count": 0, "fees_paid_dollars": "0.0000", "last_updated_ts": _iso(self._clock())}
                     for t, q in sorted(self._positions.items()) if q or not only_open]
        return self._page(request, positions, "market_positions", event_positions=[])

    async def _list_orders(self, request: web.Request) -> web.Response:
        status, ticker = request.query.get("status"), request.query.get("ticker")
        min_ts = int(request.query["min_ts"]) if "min_ts" in request.query else None
        orders = [o.wire() for o in reversed(self._orders.values())
                  if (status is None or o.status == status) and (ticker is None or o.ticker == ticker)
                  and (min_ts is None or o.created.timestamp() >= min_ts)]
        return self._page(request, orders, "orders")

    async def _get_order(self, request: web.Request) -> web.Response:
        order = self._orders.get(request.match_info["order_id"])
        if order is None:
            raise _RefusedError(404, "not_found", "order not found")
        return web.json_response({"order": order.wire()})

    async def _list_fills(self, request: web.Request) -> web.Response:
        min_ts = int(request.query["min_ts"]) if "min_ts" in request.query else None
        fills = [f.rest() for f in reversed(self._fills) if min_ts is None or f.created.timestamp() >= min_ts]
        return self._page(request, fills, "fills")

    async def _create_order(self, request: web.Request) -> web.Response:
        body = await request.json()
        order = self._validated_order(body)
        if any(o.client_order_id == order.client_order_id for o in self._orders.values()):
            return _error(409, "order_already_exists", "an order with this client_order_id already exists")
        if order.time_in_force != "good_till_canceled":
            order.status = "canceled"  # nothing crosses in the stand-in: IOC and FOK find no liquidity
        self._orders[order.order_id] = order
        if self._take(Fault.LOSE_ORDER_RESPONSE):
            # Accepted, then the connection goes before any answer is written.
            if request.transport is not None:
                request.transport.abort()
            await asyncio.sleep(3600)
        return web.json_response({"order_id": order.order_id, "client_order_id": order.client_order_id,
                                  "fill_count": "0.00", "remaining_count": _count(order.remaining),
                                  "ts_ms": _ms(order.created)}, status=201)

    def _validated_order(self, body: Any) -> _Order:
        if not isinstance(body, dict):
            raise _RefusedError(400, "invalid_parameters", "body must be an object")
        required = ("ticker", "side", "count", "price", "time_in_force", "self_trade_prevention_type")
        missing = [name for name in required if name not in body]
        if missing:
            raise _RefusedError(400, "invalid_parameters", f"missing {missing}")
        market = self._markets.get(body["ticker"])
        if market is None:
            raise _RefusedError(404, "market_not_found", "market not found")
        if market.status != "active":
            raise _RefusedError(400, "market_closed", "market is not open")
        if body["side"] not in ("bid", "ask"):
            raise _RefusedError(400, "invalid_parameters", "side must be bid or ask")
        for name, pattern in (("count", _COUNT), ("price", _DOLLARS)):
            if not isinstance(body[name], str) or not pattern.fullmatch(body[name]):
                raise _RefusedError(400, "invalid_parameters", f"{name} must be a fixed-point string")
        count, price = Decimal(body["count"]), Decimal(body["price"])
        if count <= 0 or (not market.fractional and count != count.to_integral_value()):
            raise _RefusedError(400, "invalid_parameters", "invalid count")
        if not market.valid_price(price):
            raise _RefusedError(400, "invalid_price", "price is not on a valid tick")
        if body["time_in_force"] not in ("fill_or_kill", "good_till_canceled", "immediate_or_cancel"):
            raise _RefusedError(400, "invalid_parameters", "invalid time_in_force")
        if body["self_trade_prevention_type"] not in ("taker_at_cross", "maker"):
            raise _RefusedError(400, "invalid_parameters", "invalid self_trade_prevention_type")
        return _Order(order_id=str(uuid.uuid4()), client_order_id=str(body.get("client_order_id", "")),
                      ticker=market.ticker, book_side=body["side"], price=price, initial=count,
                      time_in_force=body["time_in_force"], self_trade_prevention=body["self_trade_prevention_type"],
                      created=self._clock())

    async def _cancel_order(self, request: web.Request) -> web.Response:
        order = self._orders.get(request.match_info["order_id"])
        if order is None or order.status != "resting":
            return _error(404, "not_found", "no resting order with this id")
        reduced = order.remaining
        order.status = "canceled"
        return web.json_response({"order_id": order.order_id, "client_order_id": order.client_order_id,
                                  "reduced_by": _count(reduced), "ts_ms": _ms(self._clock())})

    # --- Websocket ------------------------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self._verified(request, WS_PATH) is None:
            self.auth_failures += 1
            return _error(401, "authentication_error", "invalid signature", nested=True)
        if self._take(Fault.DROP_WEBSOCKET):
            if request.transport is not None:
                request.transport.abort()
            return web.Response()
        ws = web.WebSocketResponse(heartbeat=self._heartbeat_s)
        await ws.prepare(request)
        connection = _Connection(ws, request.transport)
        self._connections.add(connection)
        self.ws_connections += 1
        writer = asyncio.create_task(self._write(connection))
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    self._command(connection, json.loads(message.data))
        finally:
            self._connections.discard(connection)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _write(self, connection: _Connection) -> None:
        while True:
            message = await connection.outbox.get()
            try:
                await connection.ws.send_str(json.dumps(message))
            except ConnectionError:
                return

    def _command(self, connection: _Connection, command: dict[str, Any]) -> None:
        command_id = command.get("id")
        params = command.get("params") or {}
        if command.get("cmd") == "unsubscribe":
            self.ws_commands["unsubscribe"] += 1
            for sid in params.get("sids", []):
                connection.subs.pop(sid, None)
                connection.send({"id": command_id, "sid": sid, "type": "unsubscribed"})
            return
        if command.get("cmd") != "subscribe":
            connection.send({"id": command_id, "type": "error", "msg": {"code": 5, "msg": "Unknown command"}})
            return
        tickers = params.get("market_tickers")
        for channel in params.get("channels", []):
            self.ws_commands[f"subscribe:{channel}"] += 1
            if channel not in ("ticker", "orderbook_delta", "fill"):
                connection.send({"id": command_id, "type": "error", "msg": {"code": 8, "msg": "Unknown channel name"}})
                continue
            if channel == "orderbook_delta" and not tickers:
                connection.send({"id": command_id, "type": "error",
                                 "msg": {"code": 14, "msg": "Market Ticker required"}})
                continue
            unknown = [t for t in tickers or () if t not in self._markets]
            if unknown:
                connection.send({"id": command_id, "type": "error",
                                 "msg": {"code": 16, "msg": "Market not found", "market_ticker": unknown[0]}})
                continue
            sid = next(self._sids)
            sub = connection.subs[sid] = _Sub(channel, frozenset(tickers) if tickers else None)
            connection.send({"id": command_id, "type": "subscribed", "msg": {"channel": channel, "sid": sid}})
            if channel == "orderbook_delta":
                for ticker in tickers or ():
                    market = self._markets[ticker]
                    snapshot: dict[str, Any] = {"market_ticker": ticker}
                    for key, ladder in (("yes_dollars_fp", market.yes), ("no_dollars_fp", market.no)):
                        if ladder:  # Kalshi leaves the key out when that leg has no bids
                            snapshot[key] = [[_dollars(p), _count(ladder[p])] for p in sorted(ladder)]
                    connection.send(self._sequenced(sub, sid, "orderbook_snapshot", snapshot))

    def _sequenced(self, sub: _Sub, sid: int, kind: str, msg: dict[str, Any]) -> dict[str, Any]:
        sub.seq += 2 if self._take(Fault.SEQUENCE_GAP) else 1
        return {"type": kind, "sid": sid, "seq": sub.seq, "msg": msg}

    def _book_delta(self, market: _Market, side: str, price: Decimal, delta: Decimal) -> None:
        msg = {"market_ticker": market.ticker, "price_dollars": _dollars(price), "delta_fp": _count(delta),
               "side": side, "ts_ms": _ms(self._clock())}
        for connection in self._connections:
            for sid, sub in connection.subs.items():
                if sub.channel == "orderbook_delta" and sub.tickers and market.ticker in sub.tickers:
                    connection.send(self._sequenced(sub, sid, "orderbook_delta", msg))

    def _broadcast(self, channel: str, ticker: str, msg: dict[str, Any]) -> None:
        for connection in self._connections:
            for sid, sub in connection.subs.items():
                if sub.channel == channel and (sub.tickers is None or ticker in sub.tickers):
                    connection.send({"type": channel, "sid": sid, "msg": msg})
