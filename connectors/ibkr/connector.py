"""The Interactive Brokers connector (Client Portal Web API): fills in the shared Connector's hooks.

conid is IBKR's canonical contract id; our instruments carry it as their IBKR venue symbol. The configured watch
list names the instruments served (and tradeable); contracts seen in positions, orders or fills outside it are
named from their contract info.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Coroutine, Sequence
from decimal import Decimal
from itertools import count
from typing import Any

import httpx
from websockets.exceptions import WebSocketException

from connectors.base import Connector
from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    MalformedResponseError,
    OrderRejectedError,
    RetryableError,
    UnsupportedError,
    VenueClientError,
    VenueUnavailableError,
)
from connectors.ibkr import constants as c
from connectors.ibkr.auth import SessionKeeper
from connectors.ibkr.client import IbkrRestClient, MarketDataSocket, malformed
from connectors.ibkr.config import IbkrConfig, WatchEntry
from connectors.ibkr.parsing import (
    ContractSpec,
    balances_from_ledger,
    fill_cursor,
    fill_from_trade,
    fill_key,
    instrument_from_contract,
    merge_fields,
    new_executions,
    one_level_book,
    order_request,
    order_status,
    parse_fill_cursor,
    parse_place_reply,
    position_from_row,
    quote_from_fields,
    search_conids,
    secdef_month,
    select_future,
    select_option,
    select_search_result,
    select_us_stock,
    spec_from_contract_info,
    stream_conid,
    trade_days,
    utc_from_ms,
    venue_order_from_row,
)
from connectors.ibkr.schemas import Ack, ContractInfo, MarketDataFields, TradeRow
from connectors.resilience import BackoffPolicy
from connectors.streaming import Reconnection, reconnect_forever
from core.clock import Clock, WallClock
from core.fees import IbkrFixedFees
from core.instruments import AssetClass, Instrument, Venue
from core.market import Quote
from core.orders import Order, OrderStatus
from core.types import Liquidity
from core.venue import (
    Balance,
    Capabilities,
    ConnectorHealth,
    FillPage,
    MarketDataMode,
    OrderBook,
    PlaceResult,
    VenueFill,
    VenueOrder,
    VenuePosition,
)
from tradestream.logging import get_logger

log = get_logger(__name__)

# The socket is down (or could not log in: the gateway unreachable for /tickle): poll meanwhile.
_SOCKET_FAILURES = (WebSocketException, OSError, TimeoutError, RetryableError)


class IbkrConnector(Connector):
    venue = Venue.IBKR

    def __init__(self, config: IbkrConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 backoff: BackoffPolicy | None = None, rng: random.Random | None = None,
                 clock: Clock | None = None, fees: IbkrFixedFees | None = None) -> None:
        self._config = config
        self._rest = IbkrRestClient(config, transport=transport, backoff=backoff, rng=rng,
                                    on_unauthenticated=lambda: self._session.lost())
        self._session = SessionKeeper(self._rest.auth_status, self._rest.tickle, config.tickle_interval_s)
        self._socket = MarketDataSocket(config)
        self._clock = clock or WallClock()
        self._fees = fees or IbkrFixedFees()
        self._rng = rng or random.Random()
        self._reconnect = BackoffPolicy(base_s=config.reconnect_base_s, cap_s=config.reconnect_cap_s)
        self._watch: dict[str, WatchEntry] = {e.instrument_id: e for e in config.watchlist}
        self._instruments: dict[str, Instrument] = {}
        self._contracts: dict[str, ContractInfo] = {}
        self._instrument_ids: dict[str, str] = {}
        """conid -> instrument id, for every contract met so far."""
        self._preflights: dict[str, int] = {}
        """Preflight endpoint -> session generation it was called in (IBKR wants them again after a re-login)."""
        self._quote_seq: dict[str, int] = {}
        self._polling_streams: set[int] = set()
        self._stream_ids = count()
        self._tasks: set[asyncio.Task[None]] = set()
        self.capabilities = Capabilities(
            venue=Venue.IBKR, asset_classes=frozenset(c.SEC_TYPES), order_types=frozenset(c.ORDER_TYPES),
            time_in_force=frozenset(c.TIME_IN_FORCE), streaming_market_data=True, streaming_fills=False,
            fractional_quantities=False,
            fallbacks=("market_data: REST snapshot polling while the websocket is down",
                       "order_book: one level, built from the snapshot (the Web API has no public depth)"))

    @property
    def is_paper(self) -> bool:
        return self._config.is_paper

    # --- session ------------------------------------------------------------------------------------------------

    async def _ready(self, *preflights: str) -> None:
        """Start the keep-alive, require a usable session, and make the preflight calls IBKR wants first."""
        self._session.start()
        await self._session.require()
        for path in preflights:
            if self._preflights.get(path) == self._session.generation:
                continue
            if path == c.ISERVER_ACCOUNTS:
                visible = (await self._rest.iserver_accounts()).accounts
            else:
                visible = [account.id for account in await self._rest.portfolio_accounts()]
            if self._config.account_id not in visible:
                raise AuthenticationError(Venue.IBKR, f"account {self._config.account_id} is not visible to this "
                                          f"session ({path})")
            self._preflights[path] = self._session.generation

    async def health(self) -> ConnectorHealth:
        started = time.monotonic()
        mode = MarketDataMode.POLLING if self._polling_streams else MarketDataMode.STREAMING
        try:
            status = await self._rest.auth_status(retry=False)
        except AuthenticationError:
            return ConnectorHealth(venue=Venue.IBKR, reachable=True, authenticated=False, market_data_mode=mode,
                                   latency_ms=(time.monotonic() - started) * 1000,
                                   detail="gateway refused the session (not logged in)", checked_at=self._clock.now())
        except ConnectorError as exc:
            return ConnectorHealth(venue=Venue.IBKR, reachable=False, authenticated=False, market_data_mode=mode,
                                   latency_ms=None, detail=f"unreachable: {type(exc).__name__}",
                                   checked_at=self._clock.now())
        self._session.observe(status)
        return ConnectorHealth(
            venue=Venue.IBKR, reachable=status.connected, authenticated=status.authenticated and not status.competing,
            market_data_mode=mode, latency_ms=(time.monotonic() - started) * 1000, checked_at=self._clock.now(),
            detail=(f"authenticated={status.authenticated} competing={status.competing} connected={status.connected} "
                    f"account={'paper' if self.is_paper else 'live'}"))

    # --- contracts ----------------------------------------------------------------------------------------------

    async def instruments(self) -> list[Instrument]:
        return [await self._instrument(instrument_id) for instrument_id in self._watch]

    async def _instrument(self, instrument_id: str) -> Instrument:
        if (known := self._instruments.get(instrument_id)) is not None:
            return known
        entry = self._watch.get(instrument_id)
        if entry is None:
            raise UnsupportedError(Venue.IBKR, f"{instrument_id} is not in the configured watch list")
        await self._ready()
        instrument = await self._resolve(entry)
        self._instruments[instrument_id] = instrument
        self._instrument_ids[self._conid(instrument)] = instrument_id
        return instrument

    async def _resolve(self, entry: WatchEntry) -> Instrument:
        spec = entry.spec
        multiplier: Decimal | None = None
        try:
            match spec.asset_class:
                case AssetClass.EQUITY:
                    conid = select_us_stock(spec.symbol, await self._rest.stocks(spec.symbol))
                case AssetClass.OPTION:
                    conid, multiplier = await self._resolve_option(spec)
                case AssetClass.FUTURE:
                    conid = select_future(spec, await self._rest.futures(spec.symbol))
                    # IBKR wants a secdef search before market data on a derivative (not confirmed for futures
                    # found through /trsrv/futures): made once, here.
                    await self._rest.secdef_search(spec.symbol)
                case _:
                    conid = select_search_result(spec, await self._rest.secdef_search(spec.symbol))
            return instrument_from_contract(spec, conid, await self._contract_info(conid), entry.tick, multiplier)
        except ValueError as exc:
            raise UnsupportedError(Venue.IBKR, f"cannot resolve {entry.instrument_id}: {exc}") from None

    async def _resolve_option(self, spec: ContractSpec) -> tuple[str, Decimal]:
        assert spec.expiry is not None and spec.strike is not None and spec.right is not None
        underlying = select_us_stock(spec.symbol, await self._rest.stocks(spec.symbol))
        # IBKR wants /iserver/secdef/search before /iserver/secdef/info for derivatives.
        opt = c.SEC_TYPES[AssetClass.OPTION]
        search = await self._rest.secdef_search(spec.symbol, c.SEC_TYPES[AssetClass.EQUITY])
        if underlying not in search_conids(search, spec.symbol, opt):
            raise ValueError(f"{spec.instrument_id}: {spec.symbol} ({underlying}) lists no options")
        contracts = await self._rest.secdef_info(underlying, opt, secdef_month(spec.expiry),
                                                 format(spec.strike.normalize(), "f"), spec.right)
        option = select_option(spec, contracts)
        return option.conid, option.multiplier

    async def _contract_info(self, conid: str) -> ContractInfo:
        if (info := self._contracts.get(conid)) is None:
            info = self._contracts[conid] = await self._rest.contract_info(conid)
        return info

    async def _instrument_id(self, conid: str) -> str:
        if (known := self._instrument_ids.get(conid)) is None:
            info = await self._contract_info(conid)
            try:
                known = self._instrument_ids[conid] = spec_from_contract_info(info).instrument_id
            except ValueError as exc:
                raise UnsupportedError(Venue.IBKR, f"conid {conid}: {exc}") from None
        return known

    @staticmethod
    def _conid(instrument: Instrument) -> str:
        return instrument.venue_symbols[Venue.IBKR]

    # --- market data --------------------------------------------------------------------------------------------

    async def order_book(self, instrument_id: str, depth: int = 10) -> OrderBook:
        instrument = await self._instrument(instrument_id)
        await self._ready(c.ISERVER_ACCOUNTS)
        conid = self._conid(instrument)
        for attempt in range(self._config.snapshot_attempts):
            # The first snapshot of a contract is often empty: IBKR starts the subscription then. Ask again.
            if attempt:
                await asyncio.sleep(self._config.snapshot_retry_delay_s)
            for row in await self._rest.snapshot([conid]):
                if row.conid == conid and (quote := self._quote(instrument, merge_fields({}, row), row)):
                    return one_level_book(quote)
        raise VenueUnavailableError(Venue.IBKR, f"{instrument_id}: no two-sided quote after "
                                    f"{self._config.snapshot_attempts} snapshots")

    async def quotes(self, instrument_ids: Sequence[str]) -> AsyncGenerator[Quote, None]:
        instruments = {self._conid(i): i for i in [await self._instrument(iid) for iid in instrument_ids]}
        await self._ready(c.ISERVER_ACCOUNTS)
        queue: asyncio.Queue[Quote | BaseException] = asyncio.Queue()
        producer = self._spawn(self._produce_quotes(instruments, queue))
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            producer.cancel()

    async def _produce_quotes(self, instruments: dict[str, Instrument],
                              queue: asyncio.Queue[Quote | BaseException]) -> None:
        """Stream from the websocket; while it is down, poll REST snapshots and retry it with backoff."""
        stream_id = next(self._stream_ids)
        fields: dict[str, dict[str, str]] = {conid: {} for conid in instruments}
        last: dict[str, Quote] = {}

        def take(conid: str, update: MarketDataFields) -> None:
            fields[conid] = merge_fields(fields[conid], update)
            quote = self._quote(instruments[conid], fields[conid], update, last.get(conid))
            if quote is not None:
                last[conid] = quote
                queue.put_nowait(quote)

        def streaming() -> None:
            self._polling_streams.discard(stream_id)

        # Exponent from 0, a step below the other venues: the wait polls REST, so the socket is tried sooner.
        reconnection = Reconnection(self._reconnect, self._rng, first_exponent=0)

        async def session() -> None:
            session_id = await self._session.session_id()
            async for message in self._socket.messages(list(instruments), session_id, on_open=streaming):
                reconnection.progressed()
                if (conid := stream_conid(message.topic)) in instruments:
                    take(conid, message)

        def dropped(exc: Exception | None) -> None:
            if exc is None:
                log.warning("ibkr.ws_closed")
            else:
                log.warning("ibkr.ws_down", error=type(exc).__name__)
            self._polling_streams.add(stream_id)

        async def poll_for(delay: float) -> None:
            """Poll REST snapshots until it is time to try the websocket again."""
            deadline = asyncio.get_running_loop().time() + delay
            while True:
                try:
                    for row in await self._rest.snapshot(list(instruments)):
                        if row.conid in instruments:
                            take(row.conid, row)
                except RetryableError as exc:
                    log.warning("ibkr.poll_failed", error=type(exc).__name__)
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return
                await asyncio.sleep(min(self._config.poll_interval_s, remaining))

        try:
            await reconnect_forever(session, dropped, reconnection, recoverable=_SOCKET_FAILURES, wait=poll_for)
        except asyncio.CancelledError:
            # Closed under a consumer still reading (connector.close()): end its stream rather than leave it waiting.
            queue.put_nowait(VenueUnavailableError(Venue.IBKR, "quote stream closed"))
            raise
        except Exception as exc:
            queue.put_nowait(exc)
        finally:
            self._polling_streams.discard(stream_id)

    def _quote(self, instrument: Instrument, fields: dict[str, str], update: MarketDataFields,
               previous: Quote | None = None) -> Quote | None:
        """The quote these fields make, numbered per instrument; None when incomplete or unchanged."""
        instrument_id = instrument.instrument_id
        lot = self._config.us_stock_size_lot if instrument.asset_class is AssetClass.EQUITY else Decimal(1)
        ts = utc_from_ms(update.updated_ms) if update.updated_ms is not None else self._clock.now()
        seq = self._quote_seq.get(instrument_id, 0) + 1
        try:
            quote = quote_from_fields(instrument_id, fields, lot, seq, ts)
        except ValueError as exc:
            raise malformed(f"market data for {instrument_id}", fields, exc) from None
        if quote is None or (previous is not None and (quote.bid, quote.ask, quote.bid_size, quote.ask_size)
                             == (previous.bid, previous.ask, previous.bid_size, previous.ask_size)):
            return None
        self._quote_seq[instrument_id] = seq
        return quote

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- account ------------------------------------------------------------------------------------------------

    async def balances(self) -> list[Balance]:
        await self._ready(c.PORTFOLIO_ACCOUNTS)
        return balances_from_ledger(await self._rest.ledger(self._config.account_id))

    async def positions(self) -> list[VenuePosition]:
        await self._ready(c.PORTFOLIO_ACCOUNTS)
        rows = []
        # Pages of up to 100; read until an empty page rather than trusting the page size.
        for page in range(c.POSITIONS_MAX_PAGES):
            batch = await self._rest.positions(self._config.account_id, page)
            if not batch:
                break
            rows.extend(batch)
        else:
            raise MalformedResponseError(Venue.IBKR, f"positions: still not empty after {c.POSITIONS_MAX_PAGES} "
                                         "pages", raw_body="")
        # A position closed today stays listed at zero: flat is no position.
        return [position_from_row(row, await self._instrument_id(row.conid)) for row in rows if row.position != 0]

    async def open_orders(self) -> list[VenueOrder]:
        await self._ready(c.ISERVER_ACCOUNTS)
        orders = await self._orders()
        return [order for order in orders if not order.status.is_terminal]

    async def _orders(self) -> list[VenueOrder]:
        """Today's orders of our account (any status)."""
        live = await self._rest.live_orders()
        orders = []
        for row in live.orders:
            if row.acct != self._config.account_id:
                continue
            instrument_id = await self._instrument_id(row.conid)
            try:
                orders.append(venue_order_from_row(row, instrument_id))
            except ValueError as exc:
                raise malformed("GET /iserver/account/orders", row.model_dump(by_alias=True), exc) from None
        return orders

    async def fills_since(self, cursor: str | None) -> FillPage:
        after = parse_fill_cursor(cursor) if cursor is not None else None
        await self._ready(c.ISERVER_ACCOUNTS)
        rows = await self._rest.trades(trade_days(after, self._clock.now()))
        fresh = new_executions((r for r in rows if r.account in (None, self._config.account_id)), after)
        fills = []
        for row in fresh:
            if row.side == c.TRADE_SIDE_EXPIRED:
                log.info("ibkr.option_expired", execution_id=row.execution_id, conid=row.conid)
                continue
            fills.append(await self._fill(row))
        return FillPage(fills=tuple(fills), cursor=fill_cursor(fill_key(fresh[-1])) if fresh else cursor)

    async def _fill(self, row: TradeRow) -> VenueFill:
        instrument_id = await self._instrument_id(row.conid)
        fee = row.commission
        if fee is None:
            fee = self._fees.fee(await self._fee_instrument(instrument_id, row.conid), row.size, row.price,
                                 Liquidity.TAKER)
        try:
            return fill_from_trade(row, instrument_id, fee)
        except ValueError as exc:
            raise malformed("GET /iserver/account/trades", row.model_dump(), exc) from None

    async def _fee_instrument(self, instrument_id: str, conid: str) -> Instrument:
        if (known := self._instruments.get(instrument_id)) is not None:
            return known
        info = await self._contract_info(conid)
        try:
            # Outside the watch list the tick is unknown; it does not enter the fee, so 1 stands in for it here
            # and this instrument is used for the fee only.
            return instrument_from_contract(spec_from_contract_info(info), conid, info, Decimal(1))
        except ValueError as exc:
            raise UnsupportedError(Venue.IBKR, f"conid {conid}: no fee schedule: {exc}") from None

    # --- writes -------------------------------------------------------------------------------------------------

    async def _place_order(self, order: Order) -> PlaceResult:
        instrument = await self._instrument(order.instrument_id)
        await self._ready(c.ISERVER_ACCOUNTS)
        try:
            body = {"orders": [order_request(self._config.account_id, self._conid(instrument), order)]}
        except ValueError as exc:
            raise UnsupportedError(Venue.IBKR, f"order {order.client_order_id}: {exc}") from None
        confirmed: list[str] = []
        try:
            ack = await self._confirm(order, await self._rest.place_orders(self._config.account_id, body), confirmed)
        except (AuthenticationError, OrderRejectedError):
            # OrderRejectedError comes only from our own cap on confirmations: never confirmed, never placed.
            raise
        except ConnectorError as exc:
            return await self._recover(order, exc)
        return PlaceResult(venue_order_id=ack.order_id, client_order_id=order.client_order_id,
                           status=order_status(ack.order_status, Decimal(0)),
                           venue_response={"order_id": ack.order_id, "order_status": ack.order_status,
                                           "confirmed": confirmed})

    async def _confirm(self, order: Order, payload: object, confirmed: list[str]) -> Ack:
        """Answer IBKR's order warnings ("are you sure?") until it acknowledges, at most max_confirmations."""
        while True:
            try:
                reply = parse_place_reply(payload)
            except ValueError as exc:
                raise malformed(f"order {order.client_order_id}", payload, exc) from None
            if isinstance(reply, Ack):
                return reply
            if len(confirmed) >= self._config.max_confirmations:
                raise OrderRejectedError(Venue.IBKR, f"order {order.client_order_id}: still asked to confirm after "
                                         f"{len(confirmed)} answers; not confirmed further")
            log.info("ibkr.order_question", client_order_id=order.client_order_id, message_ids=reply.message_ids,
                     messages=reply.message)
            confirmed.append(reply.id)
            payload = await self._rest.reply(reply.id)

    async def _recover(self, order: Order, cause: ConnectorError) -> PlaceResult:
        """The placement failed or its answer was lost. IBKR refuses a second order with the same cOID, so the
        order may exist already: look it up by cOID before saying it failed; never place it again. The exact
        refusal of a reused cOID (status, text) is not confirmed, so no refusal is recognised by its text: every
        failure gets the lookup."""
        # A few looks: a lost answer may still be in flight, and IBKR's order list is not confirmed to show a
        # new order at once.
        for look in range(self._config.order_lookup_attempts):
            if look:
                await asyncio.sleep(self._config.order_lookup_delay_s)
            found = next((o for o in await self._orders() if o.client_order_id == order.client_order_id), None)
            if found is not None:
                log.warning("ibkr.order_recovered", client_order_id=order.client_order_id,
                            venue_order_id=found.venue_order_id, cause=type(cause).__name__)
                return PlaceResult(venue_order_id=found.venue_order_id, client_order_id=order.client_order_id,
                                   status=found.status, recovered=True,
                                   venue_response={"order_id": found.venue_order_id,
                                                   "order_status": found.venue_status,
                                                   "recovered_from": type(cause).__name__})
        if isinstance(cause, VenueClientError):
            raise OrderRejectedError(Venue.IBKR, f"order {order.client_order_id} refused: {cause}",
                                     status=cause.status) from cause
        raise cause

    async def _cancel_order(self, venue_order_id: str) -> None:
        await self._ready(c.ISERVER_ACCOUNTS)
        try:
            await self._rest.cancel(self._config.account_id, venue_order_id)
        except AuthenticationError:
            raise
        except ConnectorError:
            # A retried cancel whose first answer was lost is refused once the order is cancelled: look first.
            current = next((o for o in await self._orders() if o.venue_order_id == venue_order_id), None)
            if current is None or current.status not in (OrderStatus.CANCELLED, OrderStatus.PENDING_CANCEL):
                raise
            log.info("ibkr.cancel_already_done", venue_order_id=venue_order_id, status=current.venue_status)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._session.stop()
        await self._rest.close()
