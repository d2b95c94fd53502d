"""A local stand-in for Coinbase Advanced Trade: REST and both websockets on 127.0.0.1, answering in the documented
2026 format (shared/reference/venues.md).

It verifies every JWT (signature with the registered public key, kid/sub, iss, nbf/exp and lifetime, the uri claim
for REST and its absence for websockets) and answers a bad REST token with a plain-text 401 as Coinbase does;
it enforces a per-key rate limit with x-ratelimit-* headers; it holds orders (a resting limit order stays OPEN),
refuses a reused client_order_id, counts write calls, and injects every `Fault`.

How the venue refuses a reused client_order_id is not documented: by default the stand-in answers 200 with
success=false and new_order_failure_reason DUPLICATE_CLIENT_ORDER_ID; `duplicate_answer = "conflict"` answers
HTTP 409 {"error": "ALREADY_EXISTS"} instead, so the connector is tested against both readings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Literal

import jwt
from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.standins.base import Fault

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
API_PREFIX = "/api/v3/brokerage"
JWT_LIFETIME_S = 120
CLOCK_LEEWAY_S = 5
EIGHT_PLACES = Decimal("0.00000001")


@dataclass(frozen=True)
class GeneratedKey:
    """A CDP-style API key made at test time (never committed): the key name, the secret text as Coinbase hands
    it out (PEM for ES256, base64 seed + public key for EdDSA) and the key objects."""

    key_name: str
    algorithm: Literal["ES256", "EdDSA"]
    secret: str
    private_key: PrivateKey
    public_key: PublicKey


def generate_key(algorithm: Literal["ES256", "EdDSA"], key_name: str | None = None) -> GeneratedKey:
    if algorithm == "ES256":
        ec_key = ec.generate_private_key(ec.SECP256R1())
        secret = ec_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()).decode()
        return GeneratedKey(key_name or f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}", algorithm, secret,
                            ec_key, ec_key.public_key())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    raw = ed_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                               serialization.NoEncryption())
    public = ed_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return GeneratedKey(key_name or str(uuid.uuid4()), algorithm, base64.b64encode(raw + public).decode(), ed_key,
                        ed_key.public_key())


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


@dataclass
class Product:
    product_id: str
    quote_increment: Decimal
    base_increment: Decimal
    product_type: str = "SPOT"
    trading_disabled: bool = False
    listed: bool = True
    """False: gone from GET /products (its book stays, for connectors already quoting it)."""
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        base, _, quote = self.product_id.partition("-")
        best = max(self.bids, default=None)
        return {"product_id": self.product_id, "price": _text(best) if best else "",
                "base_increment": _text(self.base_increment), "quote_increment": _text(self.quote_increment),
                "base_min_size": _text(self.base_increment), "base_max_size": "1000000",
                "status": "online" if not self.trading_disabled else "delisted",
                "trading_disabled": self.trading_disabled, "product_type": self.product_type,
                "base_currency_id": base, "quote_currency_id": quote, "volume_24h": "1234.5"}

    def pricebook(self, limit: int | None = None) -> dict[str, Any]:
        bids = sorted(self.bids.items(), reverse=True)[:limit]
        asks = sorted(self.asks.items())[:limit]
        return {"product_id": self.product_id, "time": _iso(_now()),
                "bids": [{"price": _text(p), "size": _text(s)} for p, s in bids],
                "asks": [{"price": _text(p), "size": _text(s)} for p, s in asks]}

    def l2_updates(self) -> list[dict[str, str]]:
        now = _iso(_now())
        return ([{"side": "bid", "event_time": now, "price_level": _text(p), "new_quantity": _text(s)}
                 for p, s in sorted(self.bids.items(), reverse=True)]
                + [{"side": "offer", "event_time": now, "price_level": _text(p), "new_quantity": _text(s)}
                   for p, s in sorted(self.asks.items())])

    def ticker(self) -> dict[str, str] | None:
        if not self.bids or not self.asks:
            return None
        bid, ask = max(self.bids), min(self.asks)
        return {"product_id": self.product_id, "price": _text(bid), "best_bid": _text(bid),
                "best_bid_quantity": _text(self.bids[bid]), "best_ask": _text(ask),
                "best_ask_quantity": _text(self.asks[ask]), "volume_24_h": "1234.5"}


@dataclass
class StandInOrder:
    order_id: str
    client_order_id: str
    product_id: str
    side: str
    kind: str
    configuration: dict[str, Any]
    base_size: Decimal
    limit_price: Decimal | None
    status: str
    created_time: datetime
    filled_size: Decimal = Decimal(0)
    total_fees: Decimal = Decimal(0)

    def as_historical(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "client_order_id": self.client_order_id, "product_id": self.product_id,
                "user_id": "user-1", "side": self.side, "status": self.status,
                "order_configuration": {self.kind: self.configuration}, "filled_size": _text(self.filled_size),
                "average_filled_price": _text(self.limit_price or Decimal(0)) if self.filled_size else "0",
                "total_fees": _text(self.total_fees), "created_time": _iso(self.created_time),
                "time_in_force": "GOOD_UNTIL_CANCELLED", "order_type": "LIMIT" if self.limit_price else "MARKET",
                "product_type": "SPOT", "completion_percentage": "0"}

    def as_user_order(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "client_order_id": self.client_order_id, "product_id": self.product_id,
                "order_side": self.side, "status": self.status, "cumulative_quantity": _text(self.filled_size),
                "leaves_quantity": _text(self.base_size - self.filled_size),
                "avg_price": _text(self.limit_price or Decimal(0)), "total_fees": _text(self.total_fees),
                "limit_price": _text(self.limit_price) if self.limit_price else "",
                "creation_time": _iso(self.created_time), "order_type": "Limit", "product_type": "SPOT"}


@dataclass
class _Account:
    uuid: str
    currency: str
    available: Decimal
    hold: Decimal

    def as_json(self) -> dict[str, Any]:
        return {"uuid": self.uuid, "name": f"{self.currency} Wallet", "currency": self.currency,
                "available_balance": {"value": _text(self.available), "currency": self.currency},
                "hold": {"value": _text(self.hold), "currency": self.currency}, "default": True, "active": True,
                "type": "ACCOUNT_TYPE_CRYPTO", "ready": True}


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    updated: float

    def take(self) -> tuple[bool, float]:
        """(allowed, seconds until one token is available)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, 0.0
        return False, self.seconds_to_next()

    def seconds_to_next(self) -> float:
        return max(0.0, (1 - self.tokens) / self.rate)


@dataclass
class _Connection:
    kind: Literal["market", "user"]
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    subscriptions: dict[str, set[str]] = field(default_factory=dict)
    outbox: asyncio.Queue[tuple[str, list[dict[str, Any]]]] = field(default_factory=asyncio.Queue)
    next_seq: int = 0
    heartbeats: int = 0

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class CoinbaseStandIn:
    """Implements tests.standins.base.StandIn. Use as `async with CoinbaseStandIn(keys) as standin:`."""

    def __init__(self, keys: Mapping[str, PublicKey], *, rate_per_s: float = 30.0, burst: float = 30.0,
                 slow_delay_s: float = 1.0, heartbeat_interval_s: float = 1.0,
                 maker_fee_rate: Decimal = Decimal("0.004"), taker_fee_rate: Decimal = Decimal("0.006")) -> None:
        self._keys = dict(keys)
        self._rate = (rate_per_s, burst)
        self._buckets: dict[str, _Bucket] = {}
        self.slow_delay_s = slow_delay_s
        self.heartbeat_interval_s = heartbeat_interval_s
        self.maker_fee_rate = maker_fee_rate
        self.taker_fee_rate = taker_fee_rate
        self.duplicate_answer: Literal["refuse", "conflict"] = "refuse"
        self.base_url = ""
        self.ws_url = ""
        self.ws_user_url = ""
        self.write_calls = 0
        self.requests: list[tuple[str, str]] = []
        """(METHOD, path?query) of every REST request received."""
        self.tokens: list[str] = []
        """Every JWT received (REST and websocket), for the tests that check secrets never leak."""
        self.ws_available = True
        self.products_available = True
        """False: GET /products answers 500 (the instruments read fails) while everything else answers."""
        self.max_page = 1000
        """The most items one page holds, whatever `limit` asks (small values force pagination in tests)."""
        self.rate_limited = 0
        """429 answers sent (injected or from the rate limit)."""
        self._faults: dict[Fault, int] = dict.fromkeys(Fault, 0)
        self._subscribe_counts: dict[str, int] = {}
        self._products: dict[str, Product] = {}
        self._accounts: list[_Account] = []
        self._orders: dict[str, StandInOrder] = {}
        self._by_client_id: dict[str, str] = {}
        self._fills: list[dict[str, Any]] = []
        self._trades: dict[str, list[dict[str, Any]]] = {}
        self._connections: list[_Connection] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(1)
        for product in (Product("BTC-USD", Decimal("0.01"), Decimal("0.00000001")),
                        Product("ETH-USD", Decimal("0.01"), Decimal("0.00000001")),
                        Product("SOL-USD", Decimal("0.01"), Decimal("0.001"), trading_disabled=True),
                        Product("BIT-27FEB26-CDE", Decimal("5"), Decimal("1"), product_type="FUTURE")):
            self._products[product.product_id] = product
        self.set_top_of_book("BTC-USD", Decimal("95000.00"), Decimal("95001.00"), Decimal("0.5"))
        self.set_top_of_book("ETH-USD", Decimal("3500.00"), Decimal("3500.50"), Decimal("4"))
        for currency, available in (("USD", "100000"), ("BTC", "1.5"), ("ETH", "0"), ("DOGE", "250")):
            self.add_account(currency, Decimal(available))

    # ---- lifecycle ------------------------------------------------------------------------------------------

    async def __aenter__(self) -> CoinbaseStandIn:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(f"{API_PREFIX}/products", self._products_handler)
        app.router.add_get(f"{API_PREFIX}/product_book", self._product_book)
        app.router.add_get(f"{API_PREFIX}/best_bid_ask", self._best_bid_ask)
        app.router.add_get(f"{API_PREFIX}/accounts", self._accounts_handler)
        app.router.add_get(f"{API_PREFIX}/orders/historical/batch", self._list_orders)
        app.router.add_get(f"{API_PREFIX}/orders/historical/fills", self._list_fills)
        app.router.add_get(f"{API_PREFIX}/transaction_summary", self._transaction_summary)
        app.router.add_post(f"{API_PREFIX}/orders", self._create_order)
        app.router.add_post(f"{API_PREFIX}/orders/batch_cancel", self._batch_cancel)
        app.router.add_get("/ws", self._ws_market)
        app.router.add_get("/ws/user", self._ws_user)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(self._runner, sock).start()
        port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}{API_PREFIX}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self.ws_user_url = f"ws://127.0.0.1:{port}/ws/user"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for connection in self._connections:
            connection.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- StandIn protocol -----------------------------------------------------------------------------------

    def inject(self, fault: Fault, count: int = 1) -> None:
        self._faults[fault] += count
        if fault is Fault.DROP_WEBSOCKET:
            for connection in reversed(self._connections):
                if self._take(Fault.DROP_WEBSOCKET):
                    connection.abort()

    def set_top_of_book(self, venue_symbol: str, bid: Decimal, ask: Decimal, size: Decimal) -> None:
        """Five levels a side around the given top, `size` each; subscribers get the difference as l2 updates."""
        product = self._products[venue_symbol]
        tick = product.quote_increment
        bids = {bid - tick * i: size for i in range(5)}
        asks = {ask + tick * i: size for i in range(5)}
        changes = ([("bid", p, Decimal(0)) for p in product.bids if p not in bids]
                   + [("offer", p, Decimal(0)) for p in product.asks if p not in asks]
                   + [("bid", p, s) for p, s in bids.items() if product.bids.get(p) != s]
                   + [("offer", p, s) for p, s in asks.items() if product.asks.get(p) != s])
        self.update_book(venue_symbol, changes)

    def fill_resting_order(self, venue_order_id: str, quantity: Decimal, price: Decimal) -> None:
        order = self._orders[venue_order_id]
        if order.status != "OPEN" or order.filled_size + quantity > order.base_size:
            raise ValueError(f"order {venue_order_id} cannot fill {quantity} (status {order.status})")
        self._fill(order, quantity, price, "MAKER")

    def order_count(self) -> int:
        return len(self._orders)

    # ---- test controls --------------------------------------------------------------------------------------

    def add_account(self, currency: str, available: Decimal, hold: Decimal = Decimal(0)) -> None:
        self._accounts.append(_Account(str(uuid.uuid4()), currency, available, hold))

    def set_trading_disabled(self, venue_symbol: str, disabled: bool) -> None:
        self._products[venue_symbol].trading_disabled = disabled

    def delist(self, venue_symbol: str) -> None:
        self._products[venue_symbol].listed = False

    def subscribe_count(self, channel: str) -> int:
        return self._subscribe_counts.get(channel, 0)

    def connections(self, kind: Literal["market", "user"]) -> int:
        return sum(1 for connection in self._connections if connection.kind == kind)

    def book(self, venue_symbol: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        product = self._products[venue_symbol]
        return sorted(product.bids.items(), reverse=True), sorted(product.asks.items())

    def update_book(self, venue_symbol: str, changes: list[tuple[str, Decimal, Decimal]]) -> None:
        """Apply (side "bid"|"offer", price, new absolute size; 0 removes) and stream it as one l2 update."""
        product = self._products[venue_symbol]
        now = _iso(_now())
        for side, price, size in changes:
            levels = product.bids if side == "bid" else product.asks
            if size:
                levels[price] = size
            else:
                levels.pop(price, None)
        updates = [{"side": side, "event_time": now, "price_level": _text(price), "new_quantity": _text(size)}
                   for side, price, size in changes]
        if updates:
            self._publish("level2", venue_symbol, "l2_data",
                          {"type": "update", "product_id": venue_symbol, "updates": updates})
        ticker = product.ticker()
        if ticker is not None:
            self._publish("ticker", venue_symbol, "ticker", {"type": "update", "tickers": [ticker]})

    def trade(self, venue_symbol: str, price: Decimal, size: Decimal, side: str) -> None:
        """A public trade on the market_trades channel."""
        trade = {"trade_id": str(next(self._ids)), "product_id": venue_symbol, "price": _text(price),
                 "size": _text(size), "side": side, "time": _iso(_now())}
        self._trades.setdefault(venue_symbol, []).append(trade)
        self._publish("market_trades", venue_symbol, "market_trades", {"type": "update", "trades": [trade]})

    def send_raw(self, kind: Literal["market", "user"], message: Mapping[str, Any]) -> None:
        """Send an arbitrary message (no envelope added) to every connection of one kind."""
        for connection in self._connections:
            if connection.kind == kind:
                connection.outbox.put_nowait(("", [dict(message)]))

    # ---- faults and auth ------------------------------------------------------------------------------------

    def _take(self, fault: Fault) -> bool:
        if self._faults[fault] > 0:
            self._faults[fault] -= 1
            return True
        return False

    def _verify(self, token: str, uri: str | None) -> str | None:
        """The claim checks Coinbase applies; returns the key name, or None for a refused token."""
        try:
            header = jwt.get_unverified_header(token)
            kid = header["kid"]
            key = self._keys.get(kid)
            algorithm = "ES256" if isinstance(key, ec.EllipticCurvePublicKey) else "EdDSA"
            int(header["nonce"], 16)
            if key is None or header["alg"] != algorithm:
                return None
            claims = jwt.decode(token, key, algorithms=[algorithm], issuer="cdp", leeway=CLOCK_LEEWAY_S,
                                options={"require": ["sub", "iss", "nbf", "exp"]})
        except (jwt.PyJWTError, KeyError, ValueError, TypeError):
            return None
        if claims["sub"] != kid or claims["exp"] - claims["nbf"] > JWT_LIFETIME_S:
            return None
        if (uri is None and "uri" in claims) or (uri is not None and claims.get("uri") != uri):
            return None
        return str(kid)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/ws"):
            response: web.StreamResponse = await handler(request)
            return response
        self.requests.append((request.method, request.path_qs))
        if request.method == "POST":
            self.write_calls += 1
        if self._take(Fault.RATE_LIMIT):
            return self._rate_limited(0.05)
        if self._take(Fault.SERVER_ERROR):
            return web.json_response({"error": "INTERNAL", "error_details": "stand-in fault",
                                      "message": "internal error"}, status=500)
        authorization = request.headers.get("Authorization", "")
        token = authorization.removeprefix("Bearer ")
        self.tokens.append(token)
        kid = self._verify(token, f"{request.method} {request.url.host}{request.path}")
        if not authorization.startswith("Bearer ") or kid is None:
            return web.Response(status=401, text="Unauthorized\n")
        bucket = self._buckets.setdefault(kid, _Bucket(self._rate[0], self._rate[1], self._rate[1],
                                                       time.monotonic()))
        allowed, wait = bucket.take()
        if not allowed:
            return self._rate_limited(wait)
        slow = self._take(Fault.SLOW)
        malformed = self._take(Fault.MALFORMED)
        response = await handler(request)
        if slow:
            await asyncio.sleep(self.slow_delay_s)
        if malformed:
            response = web.json_response({"unexpected": "shape", "detail": "stand-in malformed answer"})
        response.headers["x-ratelimit-limit"] = str(int(self._rate[0]))
        response.headers["x-ratelimit-remaining"] = str(int(bucket.tokens))
        response.headers["x-ratelimit-reset"] = f"{bucket.seconds_to_next():.3f}"
        return response

    def _rate_limited(self, wait: float) -> web.Response:
        self.rate_limited += 1
        response = web.json_response({"error": "RESOURCE_EXHAUSTED", "error_details": "Too many requests",
                                      "message": "Too many requests"}, status=429)
        response.headers["x-ratelimit-limit"] = str(int(self._rate[0]))
        response.headers["x-ratelimit-remaining"] = "0"
        response.headers["x-ratelimit-reset"] = f"{wait:.3f}"
        return response

    # ---- REST: market data and account ----------------------------------------------------------------------

    async def _products_handler(self, request: web.Request) -> web.Response:
        if not self.products_available:
            return web.json_response({"error": "INTERNAL", "error_details": "products unavailable",
                                      "message": "internal error"}, status=500)
        wanted = request.query.get("product_type")
        products = [p.as_json() for p in self._products.values()
                    if p.listed and (wanted is None or p.product_type == wanted)]
        return web.json_response({"products": products, "num_products": len(products)})

    async def _product_book(self, request: web.Request) -> web.Response:
        product = self._products.get(request.query.get("product_id", ""))
        if product is None:
            return web.json_response({"error": "NOT_FOUND", "error_details": "unknown product",
                                      "message": "product not found"}, status=404)
        return web.json_response({"pricebook": product.pricebook(int(request.query.get("limit", "50")))})

    async def _best_bid_ask(self, request: web.Request) -> web.Response:
        books = [self._products[pid].pricebook(1) for pid in request.query.getall("product_ids", [])
                 if pid in self._products]
        return web.json_response({"pricebooks": books})

    async def _accounts_handler(self, request: web.Request) -> web.Response:
        limit = min(int(request.query.get("limit", "49")), 250, self.max_page)
        start = int(request.query.get("cursor") or 0)
        page = self._accounts[start:start + limit]
        has_next = start + limit < len(self._accounts)
        return web.json_response({"accounts": [a.as_json() for a in page], "has_next": has_next,
                                  "cursor": str(start + limit) if has_next else "", "size": len(page)})

    async def _list_orders(self, request: web.Request) -> web.Response:
        products = set(request.query.getall("product_ids", []))
        statuses = set(request.query.getall("order_status", []))
        since = request.query.get("start_date")
        orders = [o for o in sorted(self._orders.values(), key=lambda o: o.created_time, reverse=True)
                  if (not products or o.product_id in products) and (not statuses or o.status in statuses)
                  and (since is None or o.created_time >= datetime.fromisoformat(since))]
        return self._page(request, "orders", [o.as_historical() for o in orders], {"sequence": "0"})

    async def _list_fills(self, request: web.Request) -> web.Response:
        order_ids = set(request.query.getall("order_ids", []))
        since = request.query.get("start_sequence_timestamp")
        floor = datetime.fromisoformat(since) if since else None
        fills = [f for f in reversed(self._fills) if (not order_ids or f["order_id"] in order_ids)
                 and (floor is None or datetime.fromisoformat(f["sequence_timestamp"]) >= floor)]
        return self._page(request, "fills", fills, {})

    def _page(self, request: web.Request, key: str, items: list[dict[str, Any]],
              extra: dict[str, Any]) -> web.Response:
        limit = min(int(request.query.get("limit", "100")), self.max_page)
        start = int(request.query.get("cursor") or 0)
        has_next = start + limit < len(items)
        body = {key: items[start:start + limit], "cursor": str(start + limit) if has_next else "", **extra}
        if key == "orders":
            body["has_next"] = has_next
        return web.json_response(body)

    async def _transaction_summary(self, request: web.Request) -> web.Response:
        # total_volume and total_fees are JSON numbers in the venue's answer; the rates are strings.
        return web.json_response({"total_volume": 0, "total_fees": 0, "fee_tier": {
            "pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "10000",
            "taker_fee_rate": _text(self.taker_fee_rate), "maker_fee_rate": _text(self.maker_fee_rate)}})

    # ---- REST: orders ---------------------------------------------------------------------------------------

    def _order_error(self, code: str, message: str) -> web.Response:
        return web.json_response({"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON", "order_id": "",
                                  "error_response": {"error": "UNKNOWN_FAILURE_REASON", "message": message,
                                                     "error_details": message, "new_order_failure_reason": code}})

    async def _create_order(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            client_order_id = body["client_order_id"]
            product = self._products[body["product_id"]]
            side = body["side"]
            ((kind, configuration),) = body["order_configuration"].items()
            base_size = Decimal(configuration["base_size"])
            limit_price = Decimal(configuration["limit_price"]) if "limit_price" in configuration else None
        except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError):
            return web.json_response({"error": "INVALID_ARGUMENT", "error_details": "bad order request",
                                      "message": "invalid request"}, status=400)
        if client_order_id in self._by_client_id:
            if self.duplicate_answer == "conflict":
                return web.json_response({"error": "ALREADY_EXISTS", "error_details": "client_order_id in use",
                                          "message": "order already exists"}, status=409)
            return self._order_error("DUPLICATE_CLIENT_ORDER_ID", "client_order_id already used")
        if kind not in ("limit_limit_gtc", "limit_limit_fok", "sor_limit_ioc", "market_market_ioc") or \
                side not in ("BUY", "SELL") or (kind != "market_market_ioc" and limit_price is None):
            return self._order_error("UNSUPPORTED_ORDER_CONFIGURATION", "unsupported order configuration")
        if product.trading_disabled:
            return self._order_error("UNTRADABLE_PRODUCT", "trading is disabled")
        if base_size <= 0 or base_size % product.base_increment:
            return self._order_error("INVALID_SIZE_PRECISION", "size precision")
        if limit_price is not None and (limit_price <= 0 or limit_price % product.quote_increment):
            return self._order_error("INVALID_PRICE_PRECISION", "price precision")
        order = StandInOrder(order_id=str(uuid.uuid4()), client_order_id=client_order_id,
                             product_id=product.product_id, side=side, kind=kind, configuration=configuration,
                             base_size=base_size, limit_price=limit_price, status="OPEN", created_time=_now())
        self._orders[order.order_id] = order
        self._by_client_id[client_order_id] = order.order_id
        self._publish_order(order)
        self._match(order, product)
        if self._take(Fault.LOSE_ORDER_RESPONSE):
            # Accepted, then the connection drops before any answer is written.
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        return web.json_response({"success": True, "success_response": {
            "order_id": order.order_id, "product_id": order.product_id, "side": side,
            "client_order_id": client_order_id}, "order_configuration": {kind: configuration}})

    def _match(self, order: StandInOrder, product: Product) -> None:
        """Marketable orders take the touch in full; unmarketable IOC/FOK/market orders are cancelled."""
        touch = (min(product.asks, default=None) if order.side == "BUY" else max(product.bids, default=None))
        marketable = touch is not None and (order.limit_price is None or (
            order.limit_price >= touch if order.side == "BUY" else order.limit_price <= touch))
        if marketable and touch is not None:
            self._fill(order, order.base_size, touch, "TAKER")
        elif order.kind != "limit_limit_gtc":
            order.status = "CANCELLED"
            self._publish_order(order)

    def _fill(self, order: StandInOrder, quantity: Decimal, price: Decimal, liquidity: str) -> None:
        rate = self.maker_fee_rate if liquidity == "MAKER" else self.taker_fee_rate
        commission = (quantity * price * rate).quantize(EIGHT_PLACES)
        order.filled_size += quantity
        order.total_fees += commission
        if order.filled_size == order.base_size:
            order.status = "FILLED"
        now = _iso(_now())
        fill = {"entry_id": str(uuid.uuid4()), "trade_id": str(next(self._ids)), "order_id": order.order_id,
                "trade_time": now, "trade_type": "FILL", "price": _text(price), "size": _text(quantity),
                "commission": _text(commission), "product_id": order.product_id, "sequence_timestamp": now,
                "liquidity_indicator": liquidity, "size_in_quote": False, "user_id": "user-1", "side": order.side}
        copies = 2 if self._take(Fault.DUPLICATE_FILL) else 1
        for _ in range(copies):
            self._fills.append(fill)
            self._publish_order(order)

    async def _batch_cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        results = []
        for order_id in body.get("order_ids", []):
            order = self._orders.get(order_id)
            if order is None or order.status != "OPEN":
                results.append({"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER", "order_id": order_id})
                continue
            order.status = "CANCELLED"
            self._publish_order(order)
            results.append({"success": True, "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON",
                            "order_id": order_id})
        return web.json_response({"results": results})

    # ---- websockets -----------------------------------------------------------------------------------------

    def _publish(self, channel: str, product_id: str, envelope_channel: str, event: dict[str, Any]) -> None:
        for connection in self._connections:
            if product_id in connection.subscriptions.get(channel, ()):
                connection.outbox.put_nowait((envelope_channel, [event]))

    def _publish_order(self, order: StandInOrder) -> None:
        for connection in self._connections:
            if "user" in connection.subscriptions:
                connection.outbox.put_nowait(("user", [{"type": "update", "orders": [order.as_user_order()]}]))

    async def _ws_market(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_ws(request, "market")

    async def _ws_user(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_ws(request, "user")

    async def _serve_ws(self, request: web.Request, kind: Literal["market", "user"]) -> web.StreamResponse:
        if not self.ws_available:
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = _Connection(kind, ws, request.transport)
        self._connections.append(connection)
        writer = asyncio.get_running_loop().create_task(self._write(connection))
        self._tasks.add(writer)
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT or not self._on_client_message(connection, message.data):
                    break
        finally:
            writer.cancel()
            self._tasks.discard(writer)
            self._connections.remove(connection)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    def _on_client_message(self, connection: _Connection, data: str) -> bool:
        try:
            message = json.loads(data)
            kind, channel = message["type"], message["channel"]
            product_ids = list(message.get("product_ids", []))
        except (ValueError, KeyError, TypeError):
            connection.outbox.put_nowait(("", [{"type": "error", "message": "malformed request"}]))
            return True
        token = message.get("jwt")
        if isinstance(token, str):
            self.tokens.append(token)
        # Market channels accept anonymous subscribers; a token that is present must be valid, and the user
        # channel requires one.
        if (token is not None or channel == "user") and (not isinstance(token, str) or
                                                         self._verify(token, None) is None):
            connection.outbox.put_nowait(("", [{"type": "error", "message": "authentication failure"}]))
            return True
        allowed = {"market": {"level2", "ticker", "market_trades", "heartbeats"},
                   "user": {"user", "heartbeats"}}[connection.kind]
        if kind not in ("subscribe", "unsubscribe") or channel not in allowed:
            connection.outbox.put_nowait(("", [{"type": "error", "message": f"unknown channel {channel}"}]))
            return True
        if kind == "unsubscribe":
            connection.subscriptions.get(channel, set()).difference_update(product_ids)
            return True
        self._subscribe_counts[channel] = self._subscribe_counts.get(channel, 0) + 1
        connection.subscriptions.setdefault(channel, set()).update(product_ids)
        if self._take(Fault.DROP_WEBSOCKET):
            connection.abort()
            return False
        connection.outbox.put_nowait(("subscriptions", [{"subscriptions": {
            name: sorted(products) for name, products in connection.subscriptions.items()}}]))
        self._send_snapshot(connection, channel, product_ids)
        return True

    def _send_snapshot(self, connection: _Connection, channel: str, product_ids: list[str]) -> None:
        products = [self._products[pid] for pid in product_ids if pid in self._products]
        if channel == "level2":
            for product in products:
                connection.outbox.put_nowait(("l2_data", [{"type": "snapshot", "product_id": product.product_id,
                                                           "updates": product.l2_updates()}]))
        elif channel == "ticker":
            tickers = [ticker for ticker in (p.ticker() for p in products) if ticker is not None]
            connection.outbox.put_nowait(("ticker", [{"type": "snapshot", "tickers": tickers}]))
        elif channel == "market_trades":
            trades = [t for p in products for t in self._trades.get(p.product_id, [])[-50:]]
            connection.outbox.put_nowait(("market_trades", [{"type": "snapshot", "trades": trades}]))
        elif channel == "user":
            open_orders = [o.as_user_order() for o in self._orders.values() if o.status == "OPEN"]
            connection.outbox.put_nowait(("user", [{"type": "snapshot", "orders": open_orders}]))

    async def _write(self, connection: _Connection) -> None:
        """The one writer of a connection: envelopes (with sequence numbers) in order, heartbeats when idle."""
        while not connection.ws.closed:
            try:
                async with asyncio.timeout(self.heartbeat_interval_s):
                    channel, events = await connection.outbox.get()
            except TimeoutError:
                if "heartbeats" not in connection.subscriptions:
                    continue
                connection.heartbeats += 1
                channel, events = "heartbeats", [{"current_time": _iso(_now()),
                                                  "heartbeat_counter": connection.heartbeats}]
            if not channel:
                await connection.ws.send_str(json.dumps(events[0]))
                continue
            if connection.kind == "market" and self._take(Fault.SEQUENCE_GAP):
                connection.next_seq += 1
            envelope = {"channel": channel, "client_id": "", "timestamp": _iso(_now()),
                        "sequence_num": connection.next_seq, "events": events}
            connection.next_seq += 1
            try:
                await connection.ws.send_str(json.dumps(envelope))
            except ConnectionError:
                return
