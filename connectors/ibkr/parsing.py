"""Pure functions between IBKR payloads and core records. No I/O; unknown enum values raise ValueError (the
client turns it into MalformedResponseError with the raw body)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from connectors.ibkr.constants import (
    ASSET_CLASS_OF_SEC_TYPE,
    FIELD_ASK,
    FIELD_ASK_SIZE,
    FIELD_BID,
    FIELD_BID_SIZE,
    FIELD_LAST,
    LAST_PRICE_CLOSING,
    LAST_PRICE_HALTED,
    ORDER_SIDE_OF,
    ORDER_SIDES,
    ORDER_STATUSES,
    ORDER_TYPES,
    SEC_TYPES,
    TIME_IN_FORCE,
    TRADE_SIDES,
    TRADES_MAX_DAYS,
)
from connectors.ibkr.schemas import (
    Ack,
    ContractInfo,
    FutureContract,
    LedgerEntry,
    LiveOrder,
    MarketDataFields,
    OptionContract,
    PositionRow,
    Question,
    SearchResult,
    StockListing,
    TradeRow,
)
from core.instruments import AssetClass, Instrument, Venue
from core.market import Quote
from core.orders import Order, OrderStatus
from core.types import Liquidity
from core.venue import Balance, BookLevel, OrderBook, VenueFill, VenueOrder, VenuePosition

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_SYMBOL = r"[A-Za-z0-9.]+"
_OPTION = re.compile(rf"^(?P<symbol>{_SYMBOL})-(?P<expiry>\d{{8}})-(?P<right>[CP])-(?P<strike>\d+(?:\.\d+)?)$")
_FUTURE = re.compile(rf"^(?P<symbol>{_SYMBOL})-(?P<month>\d{{6}})$")
_PLAIN = re.compile(rf"^{_SYMBOL}$")
_PRICE = re.compile(r"^(?P<prefix>[A-Z]?)(?P<number>\d[\d,]*(?:\.\d+)?)$")
_SIZE = re.compile(r"^(?P<number>\d[\d,]*(?:\.\d+)?)(?P<suffix>[KM]?)$")
_SIZE_SUFFIX = {"": Decimal(1), "K": Decimal(1000), "M": Decimal(1_000_000)}
_RIGHTS = {"C": "C", "P": "P", "CALL": "C", "PUT": "P"}


# --- canonical ids ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ContractSpec:
    """What a canonical IBKR instrument id names:
    `equity:AAPL`, `option:AAPL-20261218-C-250` (expiry date, right, strike), `future:ES-202612` (the month of
    the contract's expiration date, as /trsrv/futures reports it), `metal:XAUUSD` (spot, CMDTY SMART USD)."""

    asset_class: AssetClass
    symbol: str
    expiry: date | None = None
    right: str | None = None
    strike: Decimal | None = None
    month: str | None = None

    @property
    def instrument_id(self) -> str:
        match self.asset_class:
            case AssetClass.OPTION:
                assert self.expiry is not None and self.right is not None and self.strike is not None
                strike = format(self.strike.normalize(), "f")
                return f"option:{self.symbol}-{self.expiry:%Y%m%d}-{self.right}-{strike}"
            case AssetClass.FUTURE:
                return f"future:{self.symbol}-{self.month}"
            case _:
                return f"{self.asset_class.value}:{self.symbol}"


def parse_yyyymmdd(text: str) -> date:
    if not re.fullmatch(r"\d{8}", text):
        raise ValueError(f"expected a YYYYMMDD date, got {text!r}")
    return datetime.strptime(text, "%Y%m%d").replace(tzinfo=UTC).date()


def parse_instrument_id(instrument_id: str) -> ContractSpec:
    prefix, _, rest = instrument_id.partition(":")
    try:
        asset_class = AssetClass(prefix)
    except ValueError:
        raise ValueError(f"{instrument_id!r}: unknown asset class {prefix!r}") from None
    if asset_class not in SEC_TYPES:
        raise ValueError(f"{instrument_id!r}: IBKR does not serve {asset_class.value}")
    if asset_class is AssetClass.OPTION:
        if not (m := _OPTION.match(rest)):
            raise ValueError(f"{instrument_id!r}: expected option:<SYMBOL>-<YYYYMMDD>-<C|P>-<STRIKE>")
        return ContractSpec(asset_class, m["symbol"], expiry=parse_yyyymmdd(m["expiry"]), right=m["right"],
                            strike=Decimal(m["strike"]))
    if asset_class is AssetClass.FUTURE:
        if not (m := _FUTURE.match(rest)) or not 1 <= int(m["month"][4:]) <= 12:
            raise ValueError(f"{instrument_id!r}: expected future:<SYMBOL>-<YYYYMM>")
        return ContractSpec(asset_class, m["symbol"], month=m["month"])
    if not _PLAIN.match(rest):
        raise ValueError(f"{instrument_id!r}: expected {asset_class.value}:<SYMBOL>")
    return ContractSpec(asset_class, rest)


def secdef_month(expiry: date) -> str:
    """The `month` parameter of /iserver/secdef/info: DEC26."""
    return f"{_MONTHS[expiry.month - 1]}{expiry:%y}"


def spec_from_contract_info(info: ContractInfo) -> ContractSpec:
    """Name a contract we were not asked to watch (seen in positions, orders or fills) from its contract info."""
    asset_class = ASSET_CLASS_OF_SEC_TYPE.get(info.instrument_type)
    if asset_class is None:
        raise ValueError(f"conid {info.con_id}: instrument type {info.instrument_type!r} is not served")
    if asset_class is AssetClass.OPTION:
        if info.expiry_full is None or info.right is None or info.strike is None:
            raise ValueError(f"conid {info.con_id}: option without expiry, right or strike")
        return ContractSpec(asset_class, info.symbol, expiry=parse_yyyymmdd(info.expiry_full),
                            right=_right(info.right), strike=info.strike)
    if asset_class is AssetClass.FUTURE:
        if info.expiry_full is None:
            raise ValueError(f"conid {info.con_id}: future without expiry")
        return ContractSpec(asset_class, info.symbol, month=parse_yyyymmdd(info.expiry_full).strftime("%Y%m"))
    return ContractSpec(asset_class, info.symbol)


def _right(raw: str) -> str:
    # Contract info is seen with C/P and with CALL/PUT (not confirmed which): both are accepted, nothing else.
    if raw.upper() not in _RIGHTS:
        raise ValueError(f"unknown option right {raw!r}")
    return _RIGHTS[raw.upper()]


# --- contract resolution ----------------------------------------------------------------------------------------

def select_us_stock(symbol: str, listings: Sequence[StockListing]) -> str:
    """The one US listing of a stock in /trsrv/stocks (AAPL also trades in Mexico and as CDRs)."""
    conids = {c.conid for listing in listings if listing.asset_class == SEC_TYPES[AssetClass.EQUITY]
              for c in listing.contracts if c.is_us}
    if len(conids) != 1:
        raise ValueError(f"{symbol}: expected one US stock listing, found {sorted(conids) or 'none'}")
    return conids.pop()


def select_future(spec: ContractSpec, contracts: Sequence[FutureContract]) -> str:
    matches = {c.conid for c in contracts if c.symbol == spec.symbol and c.expiration_date[:6] == spec.month}
    if len(matches) != 1:
        raise ValueError(f"{spec.instrument_id}: expected one future expiring in {spec.month}, "
                         f"found {sorted(matches) or 'none'}")
    return matches.pop()


def select_option(spec: ContractSpec, contracts: Sequence[OptionContract]) -> OptionContract:
    """secdef/info answers every expiry of the month (weeklies too): keep the one expiring on the named day."""
    assert spec.expiry is not None and spec.strike is not None
    matches = [c for c in contracts if c.sec_type == SEC_TYPES[AssetClass.OPTION]
               and parse_yyyymmdd(c.maturity_date) == spec.expiry and _right(c.right) == spec.right
               and c.strike == spec.strike]
    if len(matches) != 1:
        raise ValueError(f"{spec.instrument_id}: expected one contract, found {len(matches)}")
    return matches[0]


def search_conids(results: Sequence[SearchResult], symbol: str, sec_type: str) -> set[str]:
    """The conids /iserver/secdef/search gives for `symbol` with `sec_type` among their sections."""
    return {r.conid for r in results if r.conid.isdigit() and r.symbol in (None, symbol)
            and any(s.sec_type == sec_type for s in r.sections)}


def select_search_result(spec: ContractSpec, results: Sequence[SearchResult]) -> str:
    """The one contract of the spec's type in a search (spot XAUUSD: the CMDTY entry; how IBKR lists spot
    metals in a search is not confirmed, so exactly one such entry is required and contract info checks it)."""
    sec_type = SEC_TYPES[spec.asset_class]
    conids = search_conids(results, spec.symbol, sec_type)
    if len(conids) != 1:
        raise ValueError(f"{spec.instrument_id}: expected one {sec_type} contract, found {sorted(conids) or 'none'}")
    return conids.pop()


def instrument_from_contract(spec: ContractSpec, conid: str, info: ContractInfo, tick_size: Decimal,
                             multiplier: Decimal | None = None) -> Instrument:
    """The canonical instrument. `multiplier` overrides the contract info's (options carry theirs on secdef/info);
    stocks and spot metals without one are 1; a future or option without one is an error."""
    expected = SEC_TYPES[spec.asset_class]
    if info.instrument_type != expected or info.con_id != conid:
        raise ValueError(f"{spec.instrument_id}: conid {conid} is {info.instrument_type} {info.con_id}, "
                         f"expected {expected}")
    multiplier = multiplier if multiplier is not None else info.multiplier
    if multiplier is None or multiplier == 0:
        if spec.asset_class in (AssetClass.OPTION, AssetClass.FUTURE):
            raise ValueError(f"{spec.instrument_id}: the contract gives no multiplier")
        multiplier = Decimal(1)
    expiry = None
    if spec.asset_class in (AssetClass.OPTION, AssetClass.FUTURE) and info.expiry_full is not None:
        # The venue gives a date, not a time: the end of that date in UTC, never before the real expiry, so the
        # registry does not refuse a contract on its last trading day (the venue refuses orders past its cut-off).
        expiry = datetime.combine(parse_yyyymmdd(info.expiry_full), time.max, tzinfo=UTC)
    return Instrument(instrument_id=spec.instrument_id, asset_class=spec.asset_class, venue=Venue.IBKR,
                      quote_currency=info.currency, tick_size=tick_size, lot_size=Decimal(1),
                      multiplier=multiplier, expiry=expiry, venue_symbols={Venue.IBKR: conid})


# --- market data ------------------------------------------------------------------------------------------------

def parse_price_field(raw: str) -> tuple[Decimal, str]:
    """A price field's value and its prefix. IBKR documents prefixes on field 31 (C: previous close, H: halted);
    they are accepted on every price field, thousands separators are dropped, anything else raises."""
    m = _PRICE.match(raw.strip())
    if not m or m["prefix"] not in ("", LAST_PRICE_CLOSING, LAST_PRICE_HALTED):
        raise ValueError(f"unreadable price field {raw!r}")
    return Decimal(m["number"].replace(",", "")), m["prefix"]


def parse_size_field(raw: str) -> Decimal:
    """Sizes may carry thousands separators or a K/M suffix (IBKR formats volumes so); a suffixed size is as
    rounded as the venue shows it."""
    m = _SIZE.match(raw.strip())
    if not m:
        raise ValueError(f"unreadable size field {raw!r}")
    return Decimal(m["number"].replace(",", "")) * _SIZE_SUFFIX[m["suffix"]]


def merge_fields(current: Mapping[str, str], update: MarketDataFields) -> dict[str, str]:
    """Streamed messages carry only the fields that changed: fold them into what we know."""
    merged = dict(current)
    for field_id, value in ((FIELD_LAST, update.last), (FIELD_BID, update.bid), (FIELD_ASK, update.ask),
                            (FIELD_BID_SIZE, update.bid_size), (FIELD_ASK_SIZE, update.ask_size)):
        if value is not None:
            merged[field_id] = value
    return merged


def quote_from_fields(instrument_id: str, fields: Mapping[str, str], size_lot: Decimal, seq: int,
                      ts: datetime) -> Quote | None:
    """A top-of-book quote, or None while a side or size is missing (the first snapshot is often empty), while
    trading is halted, or while the book is crossed (real market data, but not a valid Quote)."""
    if any(fields.get(f) is None for f in (FIELD_BID, FIELD_ASK, FIELD_BID_SIZE, FIELD_ASK_SIZE)):
        return None
    if FIELD_LAST in fields and parse_price_field(fields[FIELD_LAST])[1] == LAST_PRICE_HALTED:
        return None
    bid, _ = parse_price_field(fields[FIELD_BID])
    ask, _ = parse_price_field(fields[FIELD_ASK])
    if bid > ask:
        return None
    return Quote(instrument_id=instrument_id, bid=bid, ask=ask,
                 bid_size=parse_size_field(fields[FIELD_BID_SIZE]) * size_lot,
                 ask_size=parse_size_field(fields[FIELD_ASK_SIZE]) * size_lot, ts=ts, seq=seq)


def one_level_book(quote: Quote) -> OrderBook:
    """The Web API has no public depth of book in our reference: the book is the snapshot's top level."""
    return OrderBook(instrument_id=quote.instrument_id, bids=(BookLevel(price=quote.bid, size=quote.bid_size),),
                     asks=(BookLevel(price=quote.ask, size=quote.ask_size),), ts=quote.ts)


def stream_conid(topic: str) -> str | None:
    """`smd+265598` -> `265598`; None for other topics (system, sts, act, tic...)."""
    channel, _, conid = topic.partition("+")
    return conid if channel == "smd" and conid.isdigit() else None


def utc_from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- account ----------------------------------------------------------------------------------------------------

def balances_from_ledger(ledger: Mapping[str, LedgerEntry]) -> list[Balance]:
    """One balance per currency. `BASE` is the account's total in its base currency, not a currency of its own.
    Available is the settled cash when IBKR reports it, else the cash balance."""
    return [Balance(currency=entry.currency, total=entry.cashbalance,
                    available=entry.settledcash if entry.settledcash is not None else entry.cashbalance)
            for key, entry in sorted(ledger.items()) if key != "BASE"]


def position_from_row(row: PositionRow, instrument_id: str) -> VenuePosition:
    return VenuePosition(instrument_id=instrument_id, venue_symbol=row.conid, quantity=row.position,
                         average_price=row.avg_price)


def order_status(venue_status: str, filled: Decimal) -> OrderStatus:
    if venue_status not in ORDER_STATUSES:
        raise ValueError(f"unknown IBKR order status {venue_status!r}")
    status = ORDER_STATUSES[venue_status]
    return OrderStatus.PARTIALLY_FILLED if status is OrderStatus.OPEN and filled > 0 else status


def venue_order_from_row(row: LiveOrder, instrument_id: str) -> VenueOrder:
    if row.side not in ORDER_SIDE_OF:
        raise ValueError(f"order {row.order_id}: unknown side {row.side!r}")
    return VenueOrder(venue_order_id=row.order_id, client_order_id=row.order_ref, instrument_id=instrument_id,
                      side=ORDER_SIDE_OF[row.side], quantity=row.total_size, filled_quantity=row.filled_quantity,
                      limit_price=row.price, status=order_status(row.status, row.filled_quantity),
                      venue_status=row.status)


def fill_from_trade(row: TradeRow, instrument_id: str, fee: Decimal) -> VenueFill:
    if row.side not in TRADE_SIDES:
        raise ValueError(f"execution {row.execution_id}: unknown side {row.side!r}")
    # The trades endpoint reports no maker/taker flag; IBKR's fixed commissions do not depend on it, so the
    # fill is recorded as taker, the side that never understates cost.
    return VenueFill(venue=Venue.IBKR, venue_trade_id=row.execution_id, venue_order_id=row.order_id,
                     client_order_id=row.order_ref, instrument_id=instrument_id, side=TRADE_SIDES[row.side],
                     quantity=row.size, price=row.price, fee=fee, liquidity=Liquidity.TAKER,
                     ts=utc_from_ms(row.trade_time_r))


# --- fill cursor ------------------------------------------------------------------------------------------------
# IBKR gives no cursor for executions. Ours is the (execution time, execution id) of the last fill returned;
# the next page holds executions after it in that order, each execution id once. An execution IBKR reports
# late with a time before the cursor would be missed by a cursor read: a read from None covers the whole
# 7-day window, and fills are de-duplicated by venue trade id downstream.

def fill_key(row: TradeRow) -> tuple[int, str]:
    return row.trade_time_r, row.execution_id


def fill_cursor(key: tuple[int, str]) -> str:
    return f"{key[0]}:{key[1]}"


def parse_fill_cursor(cursor: str) -> tuple[int, str]:
    ms, _, execution_id = cursor.partition(":")
    if not ms.isdigit() or not execution_id:
        raise ValueError(f"not an IBKR fill cursor: {cursor!r}")
    return int(ms), execution_id


def new_executions(rows: Iterable[TradeRow], after: tuple[int, str] | None) -> list[TradeRow]:
    """Executions after the cursor, oldest first, each execution id once (IBKR can report one twice)."""
    seen: set[str] = set()
    fresh = []
    for row in sorted(rows, key=fill_key):
        if row.execution_id in seen or (after is not None and fill_key(row) <= after):
            continue
        seen.add(row.execution_id)
        fresh.append(row)
    return fresh


def trade_days(after: tuple[int, str] | None, now: datetime) -> int:
    """How many days of executions to ask for: back to the cursor's day with a day of margin for the venue's
    day boundary, all 7 when there is no cursor."""
    if after is None:
        return TRADES_MAX_DAYS
    return max(1, min(TRADES_MAX_DAYS, (now.date() - utc_from_ms(after[0]).date()).days + 2))


# --- orders -----------------------------------------------------------------------------------------------------

def wire_number(value: Decimal) -> int | float:
    """IBKR takes prices and quantities as JSON numbers. An integral value goes as an int; any other only when
    the float's shortest text is exactly the decimal, so what is sent is what was meant."""
    if value == value.to_integral_value():
        return int(value)
    number = float(value)
    if Decimal(repr(number)) != value:
        raise ValueError(f"{value} cannot be sent exactly as a JSON number")
    return number


def order_request(account_id: str, conid: str, order: Order) -> dict[str, object]:
    request: dict[str, object] = {
        "acctId": account_id, "conid": int(conid), "orderType": ORDER_TYPES[order.order_type],
        "side": ORDER_SIDES[order.side], "quantity": wire_number(order.quantity),
        "tif": TIME_IN_FORCE[order.time_in_force], "cOID": order.client_order_id,
    }
    if order.limit_price is not None:
        request["price"] = wire_number(order.limit_price)
    return request


def parse_place_reply(payload: object) -> Question | Ack:
    """The answer to a placement or a reply: one question to confirm, or one acknowledgement."""
    if not isinstance(payload, list) or len(payload) != 1 or not isinstance(payload[0], dict):
        raise ValueError("expected a list holding one question or one acknowledgement")
    item = payload[0]
    if "id" in item and "message" in item:
        return Question.model_validate(item)
    ack = Ack.model_validate(item)
    if ack.order_status not in ORDER_STATUSES:
        raise ValueError(f"unknown IBKR order status {ack.order_status!r}")
    return ack
