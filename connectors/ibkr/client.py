"""Thin IBKR clients: REST over the shared VenueHttpClient, and the market data websocket. Each REST method
returns validated payload models; a body that does not match raises MalformedResponseError with the redacted
raw body."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr, TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    MalformedResponseError,
    RateLimitedError,
    VenueClientError,
    VenueServerError,
)
from connectors.http import VenueHttpClient, redact
from connectors.ibkr import constants as c
from connectors.ibkr.auth import bearer_signer
from connectors.ibkr.config import IbkrConfig
from connectors.ibkr.schemas import (
    AuthStatus,
    CancelReply,
    ContractInfo,
    FutureContract,
    IserverAccounts,
    LedgerEntry,
    LiveOrders,
    OptionContract,
    PortfolioAccount,
    PositionRow,
    SearchResult,
    SnapshotRow,
    StockListing,
    StreamMessage,
    TickleReply,
    TradeRow,
)
from connectors.resilience import BackoffPolicy, TokenBucket
from core.instruments import Venue
from tradestream.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

_SECRET_KEYS = frozenset({"session", "oauth_token", "access_token"})


def raw_body(payload: Any) -> str:
    """The payload as text for an error or a log line, with the session id and anything credential-like masked."""
    def mask(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "***" if k in _SECRET_KEYS else mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mask(v) for v in value]
        return value

    return redact(json.dumps(mask(payload), default=str))


def malformed(what: str, payload: Any, exc: ValueError) -> MalformedResponseError:
    if isinstance(exc, ValidationError):
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(body)'}: {e['msg']}" for e in exc.errors()[:3])
    else:
        reason = str(exc) or type(exc).__name__
    return MalformedResponseError(Venue.IBKR, f"{what}: {reason}", raw_body=raw_body(payload))


def read_error(status: int, body: Any) -> ConnectorError | None:
    """IBKR errors are `{"error": "..."}` with an HTTP status; other bodies get the shared generic mapping."""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None
    detail = f"HTTP {status}: {redact(body['error'])[:300]}"
    if status in (401, 403):
        return AuthenticationError(Venue.IBKR, detail, status=status)
    if status == 429:
        return RateLimitedError(Venue.IBKR, detail)
    if status >= 500:
        return VenueServerError(Venue.IBKR, detail, status=status)
    return VenueClientError(Venue.IBKR, detail, status=status)


def tls_context(config: IbkrConfig) -> ssl.SSLContext:
    if not config.tls_verify:
        # Explicitly configured for the local gateway's self-signed certificate (loopback only, see config).
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=str(config.tls_ca_file) if config.tls_ca_file else None)


_AUTH_STATUS = TypeAdapter(AuthStatus)
_TICKLE = TypeAdapter(TickleReply)
_ISERVER_ACCOUNTS = TypeAdapter(IserverAccounts)
_PORTFOLIO_ACCOUNTS = TypeAdapter(list[PortfolioAccount])
_STOCKS = TypeAdapter(dict[str, list[StockListing]])
_FUTURES = TypeAdapter(dict[str, list[FutureContract]])
_SEARCH = TypeAdapter(list[SearchResult])
_OPTIONS = TypeAdapter(list[OptionContract])
_CONTRACT_INFO = TypeAdapter(ContractInfo)
_SNAPSHOT = TypeAdapter(list[SnapshotRow])
_LEDGER = TypeAdapter(dict[str, LedgerEntry])
_POSITIONS = TypeAdapter(list[PositionRow])
_LIVE_ORDERS = TypeAdapter(LiveOrders)
_TRADES = TypeAdapter(list[TradeRow])
_CANCEL = TypeAdapter(CancelReply)
_ANY = TypeAdapter(Any)


class IbkrRestClient:
    def __init__(self, config: IbkrConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: BackoffPolicy | None = None, rng: random.Random | None = None,
                 on_unauthenticated: Callable[[], None] | None = None) -> None:
        self._on_unauthenticated = on_unauthenticated
        # One bucket for reads and writes: the gateway paces the session as a whole.
        bucket = TokenBucket(config.requests_per_s, config.requests_per_s)
        self._http = VenueHttpClient(
            venue=Venue.IBKR, base_url=config.base_url,
            signer=bearer_signer(config.oauth_token) if config.oauth_token is not None else None,
            read_bucket=bucket, write_bucket=bucket, read_error=read_error, timeout_s=config.request_timeout_s,
            backoff=backoff or BackoffPolicy(), rng=rng or random.Random(),
            transport=transport or httpx.AsyncHTTPTransport(verify=tls_context(config)))
        self._paced = {path: TokenBucket(1 / interval, 1)
                       for path, interval in config.endpoint_min_interval_s.items() if interval > 0}

    async def close(self) -> None:
        await self._http.close()

    async def _call(self, adapter: TypeAdapter[T], method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, write: bool = False, retry: bool = True) -> T:
        if (paced := self._paced.get(path)) is not None:
            await paced.acquire()
        try:
            payload = await self._http.request(method, path, params=params, body=body, write=write, retry=retry)
        except AuthenticationError:
            if self._on_unauthenticated is not None:
                self._on_unauthenticated()
            raise
        what = f"{method} {path}"
        if isinstance(payload, dict) and isinstance(payload.get("error"), str):
            # Some refusals come with a 2xx status and an error body (not confirmed which): a refusal all the same.
            raise VenueClientError(Venue.IBKR, f"{what}: {redact(payload['error'])[:300]}")
        try:
            return adapter.validate_python(payload)
        except ValueError as exc:
            raise malformed(what, payload, exc) from None

    async def auth_status(self, *, retry: bool = True) -> AuthStatus:
        return await self._call(_AUTH_STATUS, "POST", c.AUTH_STATUS, retry=retry)

    async def tickle(self) -> TickleReply:
        return await self._call(_TICKLE, "POST", c.TICKLE, retry=False)

    async def iserver_accounts(self) -> IserverAccounts:
        return await self._call(_ISERVER_ACCOUNTS, "GET", c.ISERVER_ACCOUNTS)

    async def portfolio_accounts(self) -> list[PortfolioAccount]:
        return await self._call(_PORTFOLIO_ACCOUNTS, "GET", c.PORTFOLIO_ACCOUNTS)

    async def stocks(self, symbol: str) -> list[StockListing]:
        return (await self._call(_STOCKS, "GET", c.STOCKS, params={"symbols": symbol})).get(symbol, [])

    async def futures(self, symbol: str) -> list[FutureContract]:
        return (await self._call(_FUTURES, "GET", c.FUTURES, params={"symbols": symbol})).get(symbol, [])

    async def secdef_search(self, symbol: str, sec_type: str | None = None) -> list[SearchResult]:
        params = {"symbol": symbol, **({"secType": sec_type} if sec_type else {})}
        return await self._call(_SEARCH, "GET", c.SECDEF_SEARCH, params=params)

    async def secdef_info(self, underlying_conid: str, sec_type: str, month: str, strike: str,
                          right: str) -> list[OptionContract]:
        params = {"conid": underlying_conid, "sectype": sec_type, "month": month, "strike": strike, "right": right}
        return await self._call(_OPTIONS, "GET", c.SECDEF_INFO, params=params)

    async def contract_info(self, conid: str) -> ContractInfo:
        return await self._call(_CONTRACT_INFO, "GET", c.contract_info_path(conid))

    async def snapshot(self, conids: Sequence[str]) -> list[SnapshotRow]:
        params = {"conids": ",".join(conids), "fields": ",".join(c.QUOTE_FIELDS)}
        return await self._call(_SNAPSHOT, "GET", c.SNAPSHOT, params=params)

    async def ledger(self, account_id: str) -> dict[str, LedgerEntry]:
        return await self._call(_LEDGER, "GET", c.ledger_path(account_id))

    async def positions(self, account_id: str, page: int) -> list[PositionRow]:
        return await self._call(_POSITIONS, "GET", c.positions_path(account_id, page))

    async def live_orders(self) -> LiveOrders:
        return await self._call(_LIVE_ORDERS, "GET", c.LIVE_ORDERS)

    async def trades(self, days: int) -> list[TradeRow]:
        return await self._call(_TRADES, "GET", c.TRADES, params={"days": days})

    async def place_orders(self, account_id: str, body: Mapping[str, object]) -> Any:
        """The raw answer (a question or an acknowledgement): see parsing.parse_place_reply."""
        return await self._call(_ANY, "POST", c.place_orders_path(account_id), body=body, write=True)

    async def reply(self, reply_id: str) -> Any:
        return await self._call(_ANY, "POST", c.reply_path(reply_id), body={"confirmed": True}, write=True)

    async def cancel(self, account_id: str, order_id: str) -> CancelReply:
        return await self._call(_CANCEL, "DELETE", c.cancel_path(account_id, order_id), write=True)


class _NoDebugLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets logs the handshake headers (the bearer token) and every frame (the session login) at DEBUG;
    for this socket it never does, whatever the logging level."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - overrides logging's own name
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOGGER = _NoDebugLogger(logging.getLogger("websockets.client"))


class MarketDataSocket:
    """The market data websocket: subscribe `smd+<conid>+{"fields":[...]}`, keep alive with `tic`, unsubscribe
    `umd+<conid>+{}`. Yields the `smd` messages; the others (system, sts, act, tic...) are not market data."""

    def __init__(self, config: IbkrConfig) -> None:
        self._url = config.ws_url
        self._ssl = tls_context(config) if config.ws_url.startswith("wss:") else None
        self._token = config.oauth_token
        self._timeout_s = config.request_timeout_s
        self._keepalive_s = config.ws_keepalive_interval_s

    async def messages(self, conids: Sequence[str], session_id: SecretStr,
                       on_open: Callable[[], None]) -> AsyncIterator[StreamMessage]:
        """Connect, log in, subscribe (then `on_open`), and yield market data until the socket closes."""
        headers = {"Authorization": f"Bearer {self._token.get_secret_value()}"} if self._token else None
        async with connect(self._url, additional_headers=headers, ssl=self._ssl, open_timeout=self._timeout_s,
                           close_timeout=self._timeout_s, logger=_WS_LOGGER) as ws:
            # The socket logs in with the gateway session id from /tickle, as ibind does (not confirmed as
            # required by every gateway build; harmless where it is not).
            await ws.send(json.dumps({"session": session_id.get_secret_value()}))
            fields = json.dumps({"fields": list(c.QUOTE_FIELDS)})
            for conid in conids:
                await ws.send(f"{c.WS_MARKET_DATA_TOPIC}+{conid}+{fields}")
            on_open()
            keepalive = asyncio.create_task(self._keep_alive(ws))
            try:
                async for raw in ws:
                    if (message := self._decode(raw)) is not None:
                        yield message
            finally:
                keepalive.cancel()
                with suppress(ConnectionClosed):
                    for conid in conids:
                        await ws.send(f"umd+{conid}+{{}}")

    async def _keep_alive(self, ws: ClientConnection) -> None:
        with suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self._keepalive_s)
                await ws.send(c.WS_KEEPALIVE)

    @staticmethod
    def _decode(raw: str | bytes) -> StreamMessage | None:
        try:
            message = json.loads(raw)
        except ValueError:
            raise MalformedResponseError(Venue.IBKR, "websocket: a message is not JSON",
                                         raw_body=redact(raw if isinstance(raw, str) else repr(raw))) from None
        if not isinstance(message, dict):
            raise malformed("websocket", message, ValueError("a message is not a JSON object"))
        topic = message.get("topic")
        if isinstance(topic, str) and topic.startswith(f"{c.WS_MARKET_DATA_TOPIC}+"):
            try:
                return StreamMessage.model_validate(message)
            except ValueError as exc:
                raise malformed("websocket", message, exc) from None
        if "error" in message:
            log.warning("ibkr.ws_error", body=raw_body(message)[:300])
        elif topic == "sts" and isinstance(message.get("args"), dict) and message["args"].get("authenticated") is False:
            log.warning("ibkr.ws_session_unauthenticated")
        return None
