"""A stand-in for the Interactive Brokers Client Portal gateway: the Web API's REST and websocket, in the format
of shared/reference/venues.md, on plain HTTP at 127.0.0.1 (a free port).

It serves the contracts of resources/ibkr (AAPL, an AAPL call, ES futures, spot XAUUSD), snapshots whose first
answer per contract is empty, the ledger, paged positions, orders with the question-and-confirm reply flow,
duplicate-cOID refusal, executions, and the websocket `smd` feed. It paces requests as the gateway does (429
past ~10/s), answers 401 when logged out (or without the expected bearer token), counts write calls, and
injects every `Fault`. IBKR's stream has no sequence numbers: SEQUENCE_GAP drops one streamed update instead.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from core.fees import IbkrFixedFees
from core.instruments import AssetClass, Instrument, Venue
from core.types import Liquidity
from tests.standins.base import Fault

RESOURCES = Path(__file__).parent / "resources" / "ibkr"
ACCOUNT_ID = "DU1234567"
SESSION_ID = "standin-session-7f3a9c2e51d04b68"

CONID_AAPL = "265598"
CONID_AAPL_CALL = "812345678"
CONID_ES_DEC26 = "495512563"
CONID_XAUUSD = "69067924"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def resource(name: str) -> Any:
    return json.loads((RESOURCES / name).read_text())


def _number(value: Decimal) -> float:
    """IBKR sends quantities and amounts as JSON numbers."""
    return float(value)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@dataclass
class _Book:
    bid: Decimal
    ask: Decimal
    size: Decimal
    last: str
    """Field 31 as sent, prefix included."""


@dataclass
class _Order:
    order_id: int
    coid: str
    conid: str
    side: str
    quantity: Decimal
    price: Decimal | None
    order_type: str
    tif: str
    status: str = "Submitted"
    filled: Decimal = Decimal(0)


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    request: web.Request
    subscriptions: set[str] = field(default_factory=set)

    def drop(self) -> None:
        """Close abruptly: no close frame, the TCP connection just goes."""
        if self.request.transport is not None:
            self.request.transport.close()


class _Pacing:
    """The gateway's ~10 requests/s per session, with a little slack for network jitter."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = rate * 1.2
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class IbkrStandIn:
    def __init__(self, *, account_id: str = ACCOUNT_ID, questions: int = 0, duplicate_refusal_status: int = 400,
                 bearer_token: str | None = None, rate_limit_per_s: float | None = 10.0, slow_delay_s: float = 1.0,
                 empty_snapshots: int = 1, report_commission: bool = True) -> None:
        self.account_id = account_id
        self.questions = questions
        """Warnings to confirm before each order is accepted."""
        self.duplicate_refusal_status = duplicate_refusal_status
        """IBKR's status for a reused cOID is not confirmed: 400 by default, 200 with an error body also seen."""
        self.bearer_token = bearer_token
        self.slow_delay_s = slow_delay_s
        self.empty_snapshots = empty_snapshots
        self.report_commission = report_commission
        self.refuse_orders: str | None = None
        """When set, orders are refused (HTTP 400) with this message, as for insufficient funds."""
        self.logged_in = True
        """False: the gateway has no session and answers 401 to everything, as the real one does."""
        self.auth = {"authenticated": True, "competing": False, "connected": True}
        self.base_url = ""
        self.ws_url = ""
        self.write_calls = 0
        self.reply_calls = 0
        self.tickles = 0
        self.ws_keepalives = 0
        self.ws_logins: list[str] = []
        self.paced_refusals = 0
        self.preflights: Counter[str] = Counter()
        self.contracts: dict[str, dict[str, Any]] = resource("contract_info.json")
        self.books: dict[str, _Book] = {
            CONID_AAPL: _Book(Decimal("230.00"), Decimal("230.10"), Decimal(300), "C229.98"),
            CONID_AAPL_CALL: _Book(Decimal("5.20"), Decimal("5.30"), Decimal(20), "5.25"),
            CONID_ES_DEC26: _Book(Decimal("6000.00"), Decimal("6000.25"), Decimal(25), "6000.00"),
            CONID_XAUUSD: _Book(Decimal("2650.00"), Decimal("2650.30"), Decimal(50), "2650.10"),
        }
        self.positions: list[dict[str, Any]] = resource("positions.json")
        self.ledger: dict[str, Any] = resource("ledger.json")
        self.orders: dict[int, _Order] = {}
        self.trades: list[dict[str, Any]] = []
        self._faults: Counter[Fault] = Counter()
        self._snapshots_served: Counter[str] = Counter()
        self._searched: set[str] = set()
        self._pending: dict[str, tuple[dict[str, Any], int]] = {}
        self._order_ids = itertools.count(1_210_400_000)
        self._reply_ids = itertools.count(1)
        self._executions = itertools.count(1)
        self._last_trade_ms = 0
        self._pacing = _Pacing(rate_limit_per_s) if rate_limit_per_s else None
        self._sockets: set[_Socket] = set()
        self._pushes: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def __aenter__(self) -> IbkrStandIn:
        app = web.Application(middlewares=[self._gate])
        app.add_routes([
            web.post("/v1/api/iserver/auth/status", self._auth_status),
            web.post("/v1/api/tickle", self._tickle),
            web.get("/v1/api/iserver/accounts", self._iserver_accounts),
            web.get("/v1/api/portfolio/accounts", self._portfolio_accounts),
            web.get("/v1/api/trsrv/stocks", self._stocks),
            web.get("/v1/api/trsrv/futures", self._futures),
            web.get("/v1/api/iserver/secdef/search", self._secdef_search),
            web.get("/v1/api/iserver/secdef/info", self._secdef_info),
            web.get("/v1/api/iserver/contract/{conid}/info", self._contract_info),
            web.get("/v1/api/iserver/marketdata/snapshot", self._snapshot),
            web.get("/v1/api/portfolio/{acct}/ledger", self._ledger),
            web.get("/v1/api/portfolio/{acct}/positions/{page}", self._positions),
            web.get("/v1/api/iserver/account/orders", self._live_orders),
            web.get("/v1/api/iserver/account/trades", self._trades),
            web.post("/v1/api/iserver/account/{acct}/orders", self._place),
            web.post("/v1/api/iserver/reply/{reply_id}", self._reply),
            web.delete("/v1/api/iserver/account/{acct}/order/{order_id}", self._cancel),
            web.get("/v1/api/ws", self._websocket),
        ])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://127.0.0.1:{port}/v1/api/"
        self.ws_url = f"ws://127.0.0.1:{port}/v1/api/ws"
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for conn in list(self._sockets):
            await conn.ws.close()
        for task in list(self._pushes):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- StandIn ------------------------------------------------------------------------------------------------

    def inject(self, fault: Fault, count: int = 1) -> None:
        self._faults[fault] += count
        if fault is Fault.DROP_WEBSOCKET:
            # Open sockets go first; what is left drops the next connections.
            for conn in list(self._sockets):
                if self._take(Fault.DROP_WEBSOCKET):
                    self._sockets.discard(conn)
                    conn.drop()

    def clear_faults(self) -> None:
        self._faults.clear()

    def set_top_of_book(self, venue_symbol: str, bid: Decimal, ask: Decimal, size: Decimal) -> None:
        book = self.books[venue_symbol]
        book.bid, book.ask, book.size = bid, ask, size
        self._push(venue_symbol)

    def set_last(self, conid: str, raw: str) -> None:
        """Field 31 exactly as the venue would send it, e.g. `H230.05` while trading is halted."""
        self.books[conid].last = raw
        self._push(conid)

    def fill_resting_order(self, venue_order_id: str, quantity: Decimal, price: Decimal) -> None:
        order = self.orders[int(venue_order_id)]
        if order.status not in ("Submitted", "PreSubmitted") or order.filled + quantity > order.quantity:
            raise ValueError(f"order {venue_order_id} cannot take a fill of {quantity}")
        order.filled += quantity
        order.status = "Filled" if order.filled == order.quantity else "Submitted"
        contract = self.contracts[order.conid]
        self._last_trade_ms = max(self._last_trade_ms + 1000, int(time.time()) * 1000)
        execution = {
            "execution_id": f"0000e0d5.{self._last_trade_ms // 1000:08x}.{next(self._executions):02d}.01",
            "symbol": contract["symbol"], "supports_tax_opt": "1", "side": order.side[0],
            "order_description": f"{'Bot' if order.side == 'BUY' else 'Sold'} {quantity} @ {price} on ISLAND",
            "trade_time": time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(self._last_trade_ms / 1000)),
            "trade_time_r": self._last_trade_ms, "size": _number(quantity), "price": str(price),
            "order_ref": order.coid, "submitter": "standin", "exchange": "ISLAND",
            "commission": self._commission(order.conid, quantity, price) if self.report_commission else "",
            "net_amount": _number(quantity * price), "account": self.account_id, "accountCode": self.account_id,
            "company_name": contract["company_name"], "contract_description_1": contract["symbol"],
            "sec_type": contract["instrument_type"], "listing_exchange": contract["exchange"], "conid": order.conid,
            "conidEx": order.conid, "clearing_id": "IB", "clearing_name": "IB", "liquidation_trade": "0",
            "is_event_trading": "0", "order_id": order.order_id,
        }
        self.trades.append(execution)
        if self._take(Fault.DUPLICATE_FILL):
            self.trades.append(dict(execution))

    def order_count(self) -> int:
        return len(self.orders)

    # --- helpers for venue tests --------------------------------------------------------------------------------

    def add_stock(self, symbol: str, conid: str) -> None:
        self.contracts[conid] = {**self.contracts[CONID_AAPL], "symbol": symbol, "con_id": int(conid),
                                 "local_symbol": symbol, "company_name": f"{symbol} INC"}

    def add_position(self, conid: str, quantity: Decimal, average_price: Decimal) -> None:
        contract = self.contracts[conid]
        self.positions.append({"acctId": self.account_id, "conid": int(conid), "contractDesc": contract["symbol"],
                               "position": _number(quantity), "avgPrice": _number(average_price),
                               "avgCost": _number(average_price), "currency": contract["currency"],
                               "assetClass": contract["instrument_type"], "ticker": contract["symbol"],
                               "pageSize": 100})

    def _commission(self, conid: str, quantity: Decimal, price: Decimal) -> str:
        contract = self.contracts[conid]
        asset_class = {"STK": AssetClass.EQUITY, "OPT": AssetClass.OPTION, "FUT": AssetClass.FUTURE,
                       "CMDTY": AssetClass.METAL}[contract["instrument_type"]]
        instrument = Instrument(instrument_id=f"{asset_class.value}:{contract['symbol']}", asset_class=asset_class,
                                venue=Venue.IBKR, quote_currency="USD", tick_size=Decimal("0.01"),
                                lot_size=Decimal(1), multiplier=Decimal(contract["multiplier"] or 1))
        return str(IbkrFixedFees().fee(instrument, quantity, price, Liquidity.TAKER))

    def _take(self, fault: Fault) -> bool:
        if self._faults[fault] > 0:
            self._faults[fault] -= 1
            return True
        return False

    def _fields(self, conid: str) -> dict[str, Any]:
        book = self.books[conid]
        # Sizes of US stocks are shown divided by 100 (IBKR's documented display).
        lot = Decimal(100) if self.contracts[conid]["instrument_type"] == "STK" else Decimal(1)
        return {"conid": int(conid), "conidEx": conid, "_updated": int(time.time() * 1000), "server_id": "q0",
                "6119": "q0", "6509": "RpB", "31": book.last, "84": f"{book.bid:f}", "86": f"{book.ask:f}",
                "88": f"{(book.size / lot).normalize():f}", "85": f"{(book.size / lot).normalize():,f}"}

    def _push(self, conid: str) -> None:
        for conn in list(self._sockets):
            if conid not in conn.subscriptions:
                continue
            if self._take(Fault.DROP_WEBSOCKET):
                self._sockets.discard(conn)
                conn.drop()
            elif not self._take(Fault.SEQUENCE_GAP):
                task = asyncio.get_running_loop().create_task(
                    conn.ws.send_json({"topic": f"smd+{conid}", **self._fields(conid)}))
                self._pushes.add(task)
                task.add_done_callback(self._pushes.discard)

    def _usable(self) -> bool:
        return self.auth["authenticated"] and self.auth["connected"] and not self.auth["competing"]

    def _order_row(self, order: _Order) -> dict[str, Any]:
        contract = self.contracts[order.conid]
        row: dict[str, Any] = {
            "acct": self.account_id, "conidex": order.conid, "conid": int(order.conid), "orderId": order.order_id,
            "cashCcy": contract["currency"], "sizeAndFills": f"{order.filled}/{order.quantity}",
            "orderDesc": f"{order.side.title()} {order.quantity} {order.order_type}, {order.tif}",
            "description1": contract["symbol"], "ticker": contract["symbol"], "secType": contract["instrument_type"],
            "listingExchange": contract["exchange"], "remainingQuantity": _number(order.quantity - order.filled),
            "filledQuantity": _number(order.filled), "totalSize": _number(order.quantity),
            "companyName": contract["company_name"], "status": order.status,
            "origOrderType": "LIMIT" if order.order_type == "LMT" else "MARKET", "supportsTaxOpt": "1",
            "orderType": "Limit" if order.order_type == "LMT" else "Market", "order_ref": order.coid,
            "timeInForce": order.tif, "side": order.side,
        }
        if order.price is not None:
            row["price"] = f"{order.price:f}"
        return row

    # --- middleware: auth, pacing, faults -----------------------------------------------------------------------

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "DELETE" or (request.method == "POST" and request.path.endswith("/orders")):
            self.write_calls += 1
        expected = f"Bearer {self.bearer_token}" if self.bearer_token else None
        if not self.logged_in or (expected and request.headers.get("Authorization") != expected):
            return _error(401, "not authenticated")
        if request.path == "/v1/api/ws":
            return await handler(request)
        if self._pacing is not None and not self._pacing.allow():
            self.paced_refusals += 1
            return _error(429, "Too many requests")
        if self._take(Fault.RATE_LIMIT):
            return _error(429, "Too many requests")
        if self._take(Fault.SERVER_ERROR):
            return _error(503, "Service Unavailable")
        if self._take(Fault.SLOW):
            await asyncio.sleep(self.slow_delay_s)
        if self._take(Fault.MALFORMED):
            return web.json_response({"unexpected": "shape"})
        gated = ("/v1/api/iserver/", "/v1/api/portfolio/")
        if request.path.startswith(gated) and request.path != "/v1/api/iserver/auth/status" and not self._usable():
            return _error(401, "not authenticated")
        return await handler(request)

    # --- session ------------------------------------------------------------------------------------------------

    async def _auth_status(self, request: web.Request) -> web.Response:
        return web.json_response({**self.auth, "message": "", "fail": "", "MAC": "00:00:5E:00:53:01",
                                  "serverInfo": {"serverName": "standin", "serverVersion": "Build 10.30"}})

    async def _tickle(self, request: web.Request) -> web.Response:
        self.tickles += 1
        return web.json_response({"session": SESSION_ID, "ssoExpires": 585695, "collission": False,
                                  "userId": 99996016, "hmds": {"error": "no bridge"},
                                  "iserver": {"authStatus": {**self.auth, "message": ""}}})

    async def _iserver_accounts(self, request: web.Request) -> web.Response:
        self.preflights["iserver"] += 1
        return web.json_response({"accounts": [self.account_id], "acctProps": {}, "aliases": {},
                                  "selectedAccount": self.account_id, "isPaper": True})

    async def _portfolio_accounts(self, request: web.Request) -> web.Response:
        self.preflights["portfolio"] += 1
        return web.json_response([{"id": self.account_id, "accountId": self.account_id, "type": "DEMO",
                                   "currency": "USD", "accountTitle": "Stand-in"}])

    # --- contracts ----------------------------------------------------------------------------------------------

    async def _stocks(self, request: web.Request) -> web.Response:
        known = resource("trsrv_stocks.json")
        return web.json_response({s: known.get(s, []) for s in request.query["symbols"].split(",")})

    async def _futures(self, request: web.Request) -> web.Response:
        known = resource("trsrv_futures.json")
        return web.json_response({s: known.get(s, []) for s in request.query["symbols"].split(",")})

    async def _secdef_search(self, request: web.Request) -> web.Response:
        symbol = request.query["symbol"]
        self._searched.add(symbol)
        return web.json_response(resource("secdef_search.json").get(symbol, []))

    async def _secdef_info(self, request: web.Request) -> web.Response:
        q = request.query
        underlying = self.contracts.get(q["conid"])
        if underlying is None or underlying["symbol"] not in self._searched:
            return _error(400, "Please query /iserver/secdef/search first")
        rows = [row for row in resource("secdef_info.json")
                if row["symbol"] == underlying["symbol"] and row["secType"] == q["sectype"]
                and row["right"] == q["right"] and Decimal(str(row["strike"])) == Decimal(q["strike"])
                and q["month"] == "DEC26" and row["maturityDate"].startswith("202612")]
        return web.json_response(rows)

    async def _contract_info(self, request: web.Request) -> web.Response:
        contract = self.contracts.get(request.match_info["conid"])
        return web.json_response(contract) if contract else _error(400, "Invalid conid")

    # --- market data --------------------------------------------------------------------------------------------

    async def _snapshot(self, request: web.Request) -> web.Response:
        if not self.preflights["iserver"]:
            return _error(400, "Please query /iserver/accounts first")
        rows = []
        for conid in request.query["conids"].split(","):
            if conid not in self.books:
                continue
            self._snapshots_served[conid] += 1
            fields = self._fields(conid)
            if self._snapshots_served[conid] <= self.empty_snapshots:
                # The first answer only starts the subscription.
                fields = {k: fields[k] for k in ("conid", "conidEx", "_updated", "server_id", "6119")}
            rows.append(fields)
        return web.json_response(rows)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = _Socket(ws, request)
        if self._take(Fault.DROP_WEBSOCKET):
            conn.drop()
            return ws
        self._sockets.add(conn)
        try:
            await ws.send_json({"topic": "system", "success": "standin", "isFT": False, "isPaper": True})
            await ws.send_json({"topic": "sts", "args": {**self.auth, "message": ""}})
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                text = message.data
                if text == "tic":
                    self.ws_keepalives += 1
                    await ws.send_json({"topic": "tic", "alive": True, "lastAccessed": int(time.time() * 1000)})
                elif text.startswith("{"):
                    self.ws_logins.append(json.loads(text).get("session", ""))
                elif text.startswith("smd+"):
                    conid = text.split("+", 2)[1]
                    if conid in self.books:
                        conn.subscriptions.add(conid)
                        await ws.send_json({"topic": f"smd+{conid}", **self._fields(conid)})
                elif text.startswith("umd+"):
                    conn.subscriptions.discard(text.split("+", 2)[1])
        finally:
            self._sockets.discard(conn)
        return ws

    # --- account ------------------------------------------------------------------------------------------------

    def _check_account(self, request: web.Request) -> web.Response | None:
        if request.match_info["acct"] != self.account_id:
            return _error(401, f"account {request.match_info['acct']} is not accessible")
        return None

    async def _ledger(self, request: web.Request) -> web.Response:
        if refused := self._check_account(request):
            return refused
        if not self.preflights["portfolio"]:
            return _error(400, "Please query /portfolio/accounts first")
        return web.json_response(self.ledger)

    async def _positions(self, request: web.Request) -> web.Response:
        if refused := self._check_account(request):
            return refused
        page = int(request.match_info["page"])
        return web.json_response(self.positions[page * 100:(page + 1) * 100])

    async def _live_orders(self, request: web.Request) -> web.Response:
        return web.json_response({"orders": [self._order_row(o) for o in self.orders.values()], "snapshot": True})

    async def _trades(self, request: web.Request) -> web.Response:
        return web.json_response(self.trades)

    # --- orders -------------------------------------------------------------------------------------------------

    async def _place(self, request: web.Request) -> web.StreamResponse:
        if refused := self._check_account(request):
            return refused
        body = await request.json()
        orders = body.get("orders") if isinstance(body, dict) else None
        if not isinstance(orders, list) or len(orders) != 1 or not isinstance(orders[0], dict):
            return _error(400, "Expected one order in 'orders'")
        spec = orders[0]
        if problem := self._invalid(spec) or self.refuse_orders:
            return _error(400, problem)
        if any(o.coid == spec["cOID"] for o in self.orders.values()):
            return web.json_response(
                {"error": f"Order couldn't be submitted: Local order ID={spec['cOID']} is already registered."},
                status=self.duplicate_refusal_status)
        return await self._question_or_accept(request, spec, self.questions)

    async def _reply(self, request: web.Request) -> web.StreamResponse:
        self.reply_calls += 1
        body = await request.json()
        pending = self._pending.pop(request.match_info["reply_id"], None)
        if pending is None:
            return _error(400, "Reply id not found or already answered")
        if body != {"confirmed": True}:
            return _error(400, "Order was not confirmed")
        spec, remaining = pending
        return await self._question_or_accept(request, spec, remaining)

    async def _question_or_accept(self, request: web.Request, spec: dict[str, Any],
                                  remaining: int) -> web.StreamResponse:
        if remaining:
            reply_id = f"standin-reply-{next(self._reply_ids)}"
            self._pending[reply_id] = (spec, remaining - 1)
            return web.json_response([{
                "id": reply_id, "isSuppressed": False, "messageIds": [f"o{100 + remaining}"],
                "message": [f"The following order \"{spec['side']} {spec['quantity']}\" exceeds the Size Limit.\n"
                            "Are you sure you want to submit this order?"]}])
        order = _Order(order_id=next(self._order_ids), coid=spec["cOID"], conid=str(spec["conid"]),
                       side=spec["side"], quantity=Decimal(str(spec["quantity"])),
                       price=Decimal(str(spec["price"])) if "price" in spec else None,
                       order_type=spec["orderType"], tif=spec["tif"])
        self.orders[order.order_id] = order
        if self._take(Fault.LOSE_ORDER_RESPONSE):
            if request.transport is not None:
                request.transport.close()
            return web.Response()
        return web.json_response([{"order_id": str(order.order_id), "order_status": order.status,
                                   "encrypt_message": "1"}])

    def _invalid(self, spec: dict[str, Any]) -> str | None:
        if spec.get("acctId") != self.account_id:
            return "acctId does not match the account"
        if not isinstance(spec.get("conid"), int) or str(spec["conid"]) not in self.contracts:
            return "conid must be the integer id of a known contract"
        if spec.get("orderType") not in ("MKT", "LMT", "STP", "STOP_LIMIT"):
            return f"invalid orderType {spec.get('orderType')!r}"
        if spec.get("side") not in ("BUY", "SELL") or spec.get("tif") not in ("DAY", "GTC", "IOC"):
            return "invalid side or tif"
        quantity, price = spec.get("quantity"), spec.get("price")
        if isinstance(quantity, bool) or not isinstance(quantity, (int, float)) or quantity <= 0:
            return "quantity must be a positive number"
        if spec["orderType"] == "LMT" and (isinstance(price, bool) or not isinstance(price, (int, float))):
            return "a limit order needs a numeric price"
        if not isinstance(spec.get("cOID"), str) or not spec["cOID"]:
            return "cOID is required"
        return None

    async def _cancel(self, request: web.Request) -> web.Response:
        if refused := self._check_account(request):
            return refused
        order = self.orders.get(int(request.match_info["order_id"]))
        if order is None:
            return _error(404, f"OrderID {request.match_info['order_id']} doesn't exist")
        if order.status not in ("Submitted", "PreSubmitted"):
            return _error(400, f"OrderID {order.order_id} is {order.status} and cannot be cancelled")
        order.status = "Cancelled"
        return web.json_response({"msg": "Request was submitted", "order_id": order.order_id,
                                  "conid": int(order.conid), "account": self.account_id})
