"""Pure conversions between Kalshi's wire format and core records. No I/O here.

Our event-contract instrument is the YES contract of a market: prices are YES prices, a buy is a YES bid and a
sell a YES ask. Kalshi's book lists bids only on both legs; a NO bid at q is a YES ask at 1 - q.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    DuplicateClientOrderIdError,
    MalformedResponseError,
    RateLimitedError,
    UnsupportedError,
    VenueClientError,
    VenueServerError,
)
from connectors.http import redact
from connectors.kalshi.constants import (
    BOOK_SIDE_FOR,
    COUNT_PLACES,
    FRACTIONAL_LOT,
    OUTCOME_FOR,
    PRICE_PLACES,
    QUOTE_CURRENCY,
    SETTLEMENT_PRICES,
    SIDE_FOR,
    TERMINAL_ORDER_STATUS,
    TIME_IN_FORCE,
    TRADEABLE_MARKET_STATUSES,
    WHOLE_LOT,
    BookSide,
    FeeType,
    KalshiOrderStatus,
    MarketResult,
    MarketStatus,
    OutcomeSide,
    SelfTradePrevention,
)
from connectors.kalshi.schemas import (
    BalanceBody,
    CreateOrderResponse,
    ErrorBody,
    Event,
    Fill,
    Level,
    Market,
    MarketPosition,
    NestedErrorBody,
    PriceRange,
    Series,
    Trade,
    WsFill,
    WsTicker,
)
from connectors.kalshi.schemas import Order as KalshiOrder
from core.fees import KalshiFees
from core.instruments import AssetClass, Instrument, Venue
from core.market import Quote
from core.orders import Order, OrderStatus
from core.types import ZERO, Amount, Frozen, Liquidity, NonNegative, OrderType, Positive, Side, UtcDatetime
from core.venue import Balance, BookLevel, OrderBook, VenueFill, VenueOrder, VenuePosition

VENUE = Venue.KALSHI
INSTRUMENT_PREFIX = f"{AssetClass.EVENT_CONTRACT.value}:"
ONE = Decimal(1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

M = TypeVar("M", bound=BaseModel)


# --- Decoding -----------------------------------------------------------------------------------------------

def raw_text(payload: Any) -> str:
    """The payload as it came, credentials removed, for logs and MalformedResponseError."""
    return redact(json.dumps(payload, default=str, separators=(",", ":")))


def decode(model: type[M], payload: Any, what: str) -> M:
    """Validate a venue payload against its documented shape; anything else is a MalformedResponseError."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise MalformedResponseError(VENUE, f"{what}: answer does not match the documented format: {problems}",
                                     raw_body=raw_text(payload)) from None


def inconsistent(model: BaseModel, problem: str) -> MalformedResponseError:
    return MalformedResponseError(VENUE, problem, raw_body=raw_text(model.model_dump(mode="json")))


def read_error(status: int, payload: Any) -> ConnectorError:
    """Map an error answer to a typed error. Kalshi documents `{code, message, details}`; bodies nested under
    `error` have been seen: both are read. The status decides the type, the body only the message."""
    body = _error_body(payload)
    if body is None:
        text, code = f"HTTP {status}: {raw_text(payload)[:300]}", None
    else:
        details = f" ({body.details})" if body.details else ""
        text, code = redact(f"HTTP {status} {body.code}: {body.message}{details}"), body.code
    if status in (401, 403):
        return AuthenticationError(VENUE, text, status=status, code=code)
    if status == 409:
        # Kalshi's 409 is "resource already exists": for an order, the client order id was used already (the
        # exact body is not confirmed, so only the status is trusted).
        return DuplicateClientOrderIdError(VENUE, text, status=status, code=code)
    if status == 429:
        # Kalshi sends no Retry-After: the shared backoff with jitter picks the delay.
        return RateLimitedError(VENUE, text)
    if status >= 500:
        return VenueServerError(VENUE, text, status=status, code=code)
    return VenueClientError(VENUE, text, status=status, code=code)


def _error_body(payload: Any) -> ErrorBody | None:
    for model in (ErrorBody, NestedErrorBody):
        try:
            parsed = model.model_validate(payload)
        except ValidationError:
            continue
        return parsed.error if isinstance(parsed, NestedErrorBody) else parsed
    return None


# --- Instruments --------------------------------------------------------------------------------------------

def instrument_id_for(ticker: str) -> str:
    return f"{INSTRUMENT_PREFIX}{ticker}"


def ticker_for(instrument_id: str) -> str:
    ticker = instrument_id.removeprefix(INSTRUMENT_PREFIX)
    if ticker == instrument_id or not ticker:
        raise UnsupportedError(VENUE, f"{instrument_id!r} is not a Kalshi event contract")
    return ticker


def check_price_ranges(ranges: Sequence[PriceRange]) -> None:
    for r in ranges:
        if r.step <= 0 or r.start >= r.end or (r.end - r.start) % r.step != 0:
            raise ValueError(f"invalid price range start={r.start} end={r.end} step={r.step}")


def tick_size(ranges: Sequence[PriceRange]) -> Decimal:
    """The finest step: every valid price is a multiple of it (prices are then checked against the ranges)."""
    return min(r.step for r in ranges)


def check_price(price: Decimal, ranges: Sequence[PriceRange]) -> None:
    for r in ranges:
        if r.start <= price <= r.end and (price - r.start) % r.step == 0:
            return
    raise ValueError(f"price {price} is not a valid tick of the market's price ranges "
                     + ", ".join(f"[{r.start}..{r.end} step {r.step}]" for r in ranges))


def settlement_price(market: Market) -> Decimal | None:
    """What the YES contract settled at: 1 for result `yes`, 0 for `no`, once the market is finalized; None
    before. A finalized market without a yes/no result cannot be settled as one of our contracts."""
    if market.status is not MarketStatus.FINALIZED:
        return None
    if market.result is MarketResult.SCALAR:
        raise UnsupportedError(VENUE, f"market {market.ticker} settled as a scalar market, which an event contract "
                                      "instrument does not model")
    if market.result is MarketResult.UNDETERMINED:
        raise inconsistent(market, f"market {market.ticker} is finalized without a result")
    return SETTLEMENT_PRICES[market.result]


def to_instrument(market: Market) -> Instrument:
    """Raises MalformedResponseError for unusable price ranges or a finalized market without a result,
    UnsupportedError for a scalar result and ValidationError for a ticker that cannot be an instrument id."""
    try:
        check_price_ranges(market.price_ranges)
    except ValueError as exc:
        raise inconsistent(market, f"market {market.ticker}: {exc}") from None
    return Instrument(
        instrument_id=instrument_id_for(market.ticker), asset_class=AssetClass.EVENT_CONTRACT, venue=VENUE,
        quote_currency=QUOTE_CURRENCY, tick_size=tick_size(market.price_ranges),
        lot_size=FRACTIONAL_LOT if market.fractional_trading_enabled else WHOLE_LOT, multiplier=ONE,
        expiry=market.close_time, venue_symbols={VENUE: market.ticker},
        tradeable=market.status in TRADEABLE_MARKET_STATUSES, status=market.status.value,
        settlement_price=settlement_price(market),
    )


def fee_model(series: Series, event: Event) -> KalshiFees:
    """The series' fee schedule, unless the event overrides it."""
    if event.series_ticker != series.ticker:
        raise inconsistent(event, f"event {event.event_ticker} belongs to {event.series_ticker}, not {series.ticker}")
    fee_type = event.fee_type_override or series.fee_type
    multiplier = series.fee_multiplier
    if event.fee_type_override is not None and event.fee_multiplier_override is not None:
        multiplier = event.fee_multiplier_override
    if fee_type is FeeType.FLAT:
        raise UnsupportedError(VENUE, f"series {series.ticker} uses the flat fee table, which KalshiFees does not "
                                      "model")
    return KalshiFees(charges_makers=fee_type is FeeType.QUADRATIC_WITH_MAKER_FEES, fee_multiplier=multiplier)


# --- Market data --------------------------------------------------------------------------------------------

class CrossedBookError(ValueError):
    """The best YES bid is at or above the best YES ask: no venue book rests like that."""


def yes_book(instrument_id: str, yes_bids: Iterable[Level], no_bids: Iterable[Level], *, ts: datetime,
             depth: int | None = None, seq: int | None = None) -> OrderBook:
    """The YES book best first: bids are YES bids, asks are NO bids seen from the YES side (1 - price).
    The venue's own ordering of the ladders is not relied on."""
    bids = sorted(_ladder(yes_bids).items(), reverse=True)[:depth]
    asks = sorted((ONE - price, size) for price, size in _ladder(no_bids).items())[:depth]
    if bids and asks and bids[0][0] >= asks[0][0]:
        raise CrossedBookError(f"crossed book for {instrument_id}: best YES bid {bids[0][0]} >= best YES ask "
                               f"{asks[0][0]}")
    return OrderBook(instrument_id=instrument_id, bids=tuple(BookLevel(price=p, size=s) for p, s in bids),
                     asks=tuple(BookLevel(price=p, size=s) for p, s in asks), ts=ts, seq=seq)


def _ladder(levels: Iterable[Level]) -> dict[Decimal, Decimal]:
    ladder: dict[Decimal, Decimal] = {}
    for price, size in levels:
        if size < 0:
            raise ValueError(f"negative size {size} at {price}")
        ladder[price] = ladder.get(price, ZERO) + size
    return {price: size for price, size in ladder.items() if size > 0}


def quote_from_book(book: OrderBook, seq: int) -> Quote:
    """Top of the YES book. An empty side quotes as Kalshi does: no bid is 0, no ask is 1, with size 0."""
    bid = book.bids[0] if book.bids else BookLevel(price=ZERO, size=ZERO)
    ask = book.asks[0] if book.asks else BookLevel(price=ONE, size=ZERO)
    return Quote(instrument_id=book.instrument_id, bid=bid.price, ask=ask.price, bid_size=bid.size,
                 ask_size=ask.size, ts=book.ts, seq=seq)


def quote_from_market(market: Market, ts: datetime, seq: int) -> Quote:
    # A side with no size has no price (whatever placeholder the venue puts there): quote it as an empty side.
    bid = market.yes_bid_dollars if market.yes_bid_size_fp > 0 else ZERO
    ask = market.yes_ask_dollars if market.yes_ask_size_fp > 0 else ONE
    try:
        return Quote(instrument_id=instrument_id_for(market.ticker), bid=bid, ask=ask,
                     bid_size=market.yes_bid_size_fp, ask_size=market.yes_ask_size_fp, ts=ts, seq=seq)
    except ValidationError:
        raise inconsistent(market, f"market {market.ticker}: crossed or invalid top of book") from None


class TradePrint(Frozen):
    """A public trade on the YES contract. (Core has no trade record yet; this one is shaped to become it.)"""

    instrument_id: str
    venue_trade_id: str = Field(min_length=1)
    price: Amount
    quantity: Positive
    taker_side: Side
    ts: UtcDatetime


class TickerUpdate(Frozen):
    instrument_id: str
    last_price: Amount
    yes_bid: Amount
    yes_ask: Amount
    volume: NonNegative
    ts: UtcDatetime


def to_trade(trade: Trade) -> TradePrint:
    return TradePrint(instrument_id=instrument_id_for(trade.ticker), venue_trade_id=trade.trade_id,
                      price=trade.yes_price_dollars, quantity=trade.count_fp,
                      taker_side=_side(trade, trade.taker_book_side, trade.taker_outcome_side),
                      ts=trade.created_time)


def to_ticker_update(msg: WsTicker) -> TickerUpdate:
    return TickerUpdate(instrument_id=instrument_id_for(msg.market_ticker), last_price=msg.price_dollars,
                        yes_bid=msg.yes_bid_dollars, yes_ask=msg.yes_ask_dollars, volume=msg.volume_fp,
                        ts=from_epoch_ms(msg.ts_ms))


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def epoch_s(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(seconds=1)


# --- Account ------------------------------------------------------------------------------------------------

def to_balance(body: BalanceBody) -> Balance:
    """`available` is the cash Kalshi lets us trade with; `total` adds the value of open positions."""
    return Balance(currency=QUOTE_CURRENCY, total=body.balance_dollars + Decimal(body.portfolio_value) / 100,
                   available=body.balance_dollars)


def to_position(position: MarketPosition) -> VenuePosition:
    return VenuePosition(instrument_id=instrument_id_for(position.ticker), venue_symbol=position.ticker,
                         quantity=position.position_fp)


def order_status(status: KalshiOrderStatus, filled: Decimal) -> OrderStatus:
    if status is KalshiOrderStatus.RESTING:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN
    return TERMINAL_ORDER_STATUS[status]


def to_venue_order(order: KalshiOrder) -> VenueOrder:
    return VenueOrder(
        venue_order_id=order.order_id, client_order_id=order.client_order_id or None,
        instrument_id=instrument_id_for(order.ticker), side=_side(order, order.book_side, order.outcome_side),
        quantity=order.initial_count_fp, filled_quantity=order.fill_count_fp, limit_price=order.yes_price_dollars,
        status=order_status(order.status, order.fill_count_fp), venue_status=order.status.value,
    )


def to_fill(fill: Fill | WsFill, client_order_id: str | None) -> VenueFill:
    if isinstance(fill, WsFill):
        ticker, ts = fill.market_ticker, from_epoch_ms(fill.ts_ms)
    else:
        ticker = fill.ticker
        if fill.created_time is not None:
            ts = fill.created_time
        elif fill.ts is not None:
            ts = _EPOCH + timedelta(seconds=fill.ts)
        else:
            raise inconsistent(fill, f"fill {fill.trade_id} has no time")
    return VenueFill(
        venue=VENUE, venue_trade_id=fill.trade_id, venue_order_id=fill.order_id,
        client_order_id=fill.client_order_id or client_order_id, instrument_id=instrument_id_for(ticker),
        side=_side(fill, fill.book_side, fill.outcome_side), quantity=fill.count_fp, price=fill.yes_price_dollars,
        fee=fill.fee_cost, liquidity=Liquidity.TAKER if fill.is_taker else Liquidity.MAKER, ts=ts,
    )


def _side(model: BaseModel, book_side: BookSide, outcome_side: OutcomeSide) -> Side:
    # Both fields carry the same bit (bid = yes); disagreement means the payload cannot be trusted.
    if OUTCOME_FOR[book_side] is not outcome_side:
        raise inconsistent(model, f"book_side {book_side.value} contradicts outcome_side {outcome_side.value}")
    return SIDE_FOR[book_side]


# --- Orders -------------------------------------------------------------------------------------------------

def format_count(quantity: Decimal) -> str:
    return _fixed(quantity, COUNT_PLACES, "count")


def format_price(price: Decimal) -> str:
    """Four places when they suffice ("0.5600"), six for sub-penny prices."""
    if not 0 < price < 1:
        raise UnsupportedError(VENUE, f"price {price} is outside (0, 1)")
    places = 4 if price == price.quantize(Decimal(1).scaleb(-4)) else PRICE_PLACES
    return _fixed(price, places, "price")


def _fixed(value: Decimal, places: int, what: str) -> str:
    quantum = Decimal(1).scaleb(-places)
    if value != value.quantize(quantum):
        raise UnsupportedError(VENUE, f"{what} {value} has more than {places} decimal places")
    return str(value.quantize(quantum))


def order_body(order: Order, ticker: str, self_trade_prevention: SelfTradePrevention) -> dict[str, Any]:
    """The V2 create-order body. Market orders no longer exist on Kalshi."""
    if order.order_type is not OrderType.LIMIT or order.limit_price is None:
        raise UnsupportedError(VENUE, "Kalshi has no market orders: send a limit order")
    time_in_force = TIME_IN_FORCE.get(order.time_in_force)
    if time_in_force is None:
        raise UnsupportedError(VENUE, f"time in force {order.time_in_force.value} is not supported")
    return {
        "ticker": ticker,
        "side": BOOK_SIDE_FOR[order.side].value,
        "count": format_count(order.quantity),
        "price": format_price(order.limit_price),
        "time_in_force": time_in_force,
        "self_trade_prevention_type": self_trade_prevention.value,
        "client_order_id": order.client_order_id,
    }


def placed_status(answer: CreateOrderResponse) -> OrderStatus:
    if answer.remaining_count > 0:
        return OrderStatus.PARTIALLY_FILLED if answer.fill_count > 0 else OrderStatus.OPEN
    # Nothing left: filled, or an IOC/FOK that found nothing to trade with.
    return OrderStatus.FILLED if answer.fill_count > 0 else OrderStatus.CANCELLED


# --- Fills cursor -------------------------------------------------------------------------------------------

class FillCursor(Frozen):
    """Where a fills reader stands: the newest fill second seen, and the trade ids seen in the last two seconds
    (fills of the same second can become visible later, and `min_ts` may be inclusive or not)."""

    newest_s: int
    seen: tuple[tuple[str, int], ...]

    @property
    def min_ts(self) -> int:
        return self.newest_s - 1


def encode_cursor(cursor: FillCursor) -> str:
    return base64.urlsafe_b64encode(cursor.model_dump_json().encode()).decode()


def decode_cursor(text: str) -> FillCursor:
    try:
        return FillCursor.model_validate_json(base64.urlsafe_b64decode(text.encode()))
    except (ValueError, binascii.Error):
        raise ValueError("not a Kalshi fills cursor") from None


def new_fills(cursor: FillCursor | None, fetched: Iterable[VenueFill]) -> tuple[tuple[VenueFill, ...],
                                                                              FillCursor | None]:
    """The fills not reported before (each trade id once, oldest first) and the cursor after them."""
    seen = {trade_id for trade_id, _ in cursor.seen} if cursor else set()
    fresh: dict[str, VenueFill] = {}
    for fill in fetched:
        if fill.venue_trade_id in seen or fill.venue_trade_id in fresh:
            continue
        if cursor is not None and epoch_s(fill.ts) < cursor.min_ts:
            continue  # before the window the cursor covers: already reported
        fresh[fill.venue_trade_id] = fill
    ordered = tuple(sorted(fresh.values(), key=lambda f: (f.ts, f.venue_trade_id)))
    if not ordered:
        return (), cursor
    entries = [*(cursor.seen if cursor else ()), *((f.venue_trade_id, epoch_s(f.ts)) for f in ordered)]
    newest = max(second for _, second in entries)
    window = tuple(sorted(entry for entry in entries if entry[1] >= newest - 1))
    return ordered, FillCursor(newest_s=newest, seen=window)
