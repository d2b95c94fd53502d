"""Pure translation between Coinbase payloads (schemas.py) and core records. No I/O.

A venue value we cannot map raises (ValueError or a typed connector error): the caller turns it into a
MalformedResponseError carrying the raw body. Nothing here guesses.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from connectors.coinbase.constants import SIDE_MAP, STATUS_MAP, VENUE_SIDE
from connectors.coinbase.schemas import (
    Account,
    BookSide,
    EventType,
    Fill,
    HistoricalOrder,
    L2Event,
    LiquidityIndicator,
    MarketTrade,
    PriceBook,
    Product,
    ProductType,
    TradeType,
    TransactionSummary,
    UserOrder,
    VenueOrderStatus,
)
from connectors.errors import UnsupportedError
from core.fees import RateFees
from core.instruments import AssetClass, Instrument, Venue
from core.market import Quote
from core.orders import Order, OrderStatus
from core.types import ZERO, Frozen, Liquidity, OrderType, Positive, Side, TimeInForce, UtcDatetime
from core.venue import Balance, BookLevel, OrderBook, VenueFill, VenueOrder, VenuePosition

VENUE = Venue.COINBASE
INSTRUMENT_PREFIX = f"{AssetClass.CRYPTO_SPOT.value}:"


class TradeTick(Frozen):
    """One public trade from the market_trades channel."""

    instrument_id: str
    trade_id: str
    price: Positive
    size: Positive
    side: Side
    """The venue's `side` field as sent; venues.md does not say whether it is the maker's or the taker's."""
    ts: UtcDatetime


# ---- symbols ------------------------------------------------------------------------------------------------


def instrument_id_for(product_id: str) -> str:
    return f"{INSTRUMENT_PREFIX}{product_id}"


def product_id_for(instrument_id: str) -> str:
    if not instrument_id.startswith(INSTRUMENT_PREFIX) or len(instrument_id) == len(INSTRUMENT_PREFIX):
        raise UnsupportedError(VENUE, f"{instrument_id!r} is not a Coinbase spot instrument")
    return instrument_id[len(INSTRUMENT_PREFIX):]


def _currencies(product: Product) -> tuple[str, str]:
    """(base, quote): the explicit ids when present, else the documented BASE-QUOTE product id."""
    if product.base_currency_id and product.quote_currency_id:
        return product.base_currency_id, product.quote_currency_id
    base, sep, quote = product.product_id.partition("-")
    if not sep or not base or not quote:
        raise ValueError(f"product_id {product.product_id!r} is not BASE-QUOTE")
    return base, quote


# ---- market data --------------------------------------------------------------------------------------------


def instruments_from_products(products: Iterable[Product]) -> list[Instrument]:
    """Spot products only: this connector trades nothing else."""
    instruments = []
    for product in products:
        if product.product_type is not ProductType.SPOT:
            continue
        _, quote = _currencies(product)
        instruments.append(Instrument(
            instrument_id=instrument_id_for(product.product_id), asset_class=AssetClass.CRYPTO_SPOT, venue=VENUE,
            quote_currency=quote, tick_size=product.quote_increment, lot_size=product.base_increment,
            venue_symbols={VENUE: product.product_id}, tradeable=not product.trading_disabled,
            status="trading_disabled" if product.trading_disabled else product.status))
    return instruments


def spot_products_by_base(products: Iterable[Product], quote_currency: str) -> dict[str, str]:
    """base currency -> product id, for spot products quoted in `quote_currency`."""
    mapping = {}
    for product in products:
        if product.product_type is ProductType.SPOT:
            base, quote = _currencies(product)
            if quote == quote_currency:
                mapping[base] = product.product_id
    return mapping


def _levels(levels: Iterable[tuple[Decimal, Decimal]], descending: bool, depth: int) -> tuple[BookLevel, ...]:
    ordered = sorted(levels, key=lambda level: level[0], reverse=descending)
    return tuple(BookLevel(price=price, size=size) for price, size in ordered[:depth])


def order_book_from_pricebook(book: PriceBook, depth: int) -> OrderBook:
    return OrderBook(
        instrument_id=instrument_id_for(book.product_id),
        bids=_levels(((level.price, level.size) for level in book.bids), True, depth),
        asks=_levels(((level.price, level.size) for level in book.asks), False, depth),
        ts=book.time)


def quote_from_pricebook(book: PriceBook, seq: int) -> Quote | None:
    """None when a side is empty. A crossed answer raises (Quote refuses it)."""
    if not book.bids or not book.asks:
        return None
    bid = max(book.bids, key=lambda level: level.price)
    ask = min(book.asks, key=lambda level: level.price)
    return Quote(instrument_id=instrument_id_for(book.product_id), bid=bid.price, ask=ask.price,
                 bid_size=bid.size, ask_size=ask.size, ts=book.time, seq=seq)


def trade_tick(trade: MarketTrade) -> TradeTick:
    return TradeTick(instrument_id=instrument_id_for(trade.product_id), trade_id=trade.trade_id, price=trade.price,
                     size=trade.size, side=SIDE_MAP[trade.side.value], ts=trade.time)


class Level2Book:
    """The level2 book of one product, rebuilt from a snapshot and kept by absolute-size updates.

    Updates that arrive before a snapshot (or after `invalidate`) are ignored: only a snapshot makes the book
    trustworthy. The best prices are tracked incrementally so a deep book costs O(1) per update in the usual case.
    """

    def __init__(self, product_id: str) -> None:
        self.product_id = product_id
        self.synced = False
        self.updated_at: datetime | None = None
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._best_bid: Decimal | None = None
        self._best_ask: Decimal | None = None

    def invalidate(self) -> None:
        self.synced = False
        self._bids.clear()
        self._asks.clear()
        self._best_bid = self._best_ask = None

    def apply(self, event: L2Event, at: datetime) -> bool:
        """Apply one l2_data event; True when the book is in sync afterwards."""
        if event.product_id != self.product_id:
            raise ValueError(f"l2 event for {event.product_id} applied to the book of {self.product_id}")
        if event.type is EventType.SNAPSHOT:
            self.invalidate()
            self.synced = True
        elif not self.synced:
            return False
        for update in event.updates:
            self._set(update.side, update.price_level, update.new_quantity)
        self.updated_at = at
        return True

    def _set(self, side: BookSide, price: Decimal, size: Decimal) -> None:
        levels = self._bids if side is BookSide.BID else self._asks
        if size == 0:
            levels.pop(price, None)
        else:
            levels[price] = size
        if side is BookSide.BID:
            if size and (self._best_bid is None or price > self._best_bid):
                self._best_bid = price
            elif not size and price == self._best_bid:
                self._best_bid = max(self._bids, default=None)
        elif size and (self._best_ask is None or price < self._best_ask):
            self._best_ask = price
        elif not size and price == self._best_ask:
            self._best_ask = min(self._asks, default=None)

    @property
    def crossed(self) -> bool:
        return self._best_bid is not None and self._best_ask is not None and self._best_bid > self._best_ask

    def top(self) -> tuple[Decimal, Decimal, Decimal, Decimal] | None:
        """(bid, bid size, ask, ask size), or None while out of sync or one side is empty."""
        if not self.synced or self._best_bid is None or self._best_ask is None:
            return None
        return self._best_bid, self._bids[self._best_bid], self._best_ask, self._asks[self._best_ask]

    def quote(self, seq: int) -> Quote:
        top = self.top()
        if top is None or self.updated_at is None:
            raise ValueError(f"the {self.product_id} book has no top of book")
        bid, bid_size, ask, ask_size = top
        return Quote(instrument_id=instrument_id_for(self.product_id), bid=bid, ask=ask, bid_size=bid_size,
                     ask_size=ask_size, ts=self.updated_at, seq=seq)

    def order_book(self, depth: int) -> OrderBook:
        if not self.synced or self.updated_at is None:
            raise ValueError(f"the {self.product_id} book is not in sync")
        return OrderBook(instrument_id=instrument_id_for(self.product_id),
                         bids=_levels(self._bids.items(), True, depth), asks=_levels(self._asks.items(), False, depth),
                         ts=self.updated_at)


# ---- account ------------------------------------------------------------------------------------------------


def balances_from_accounts(accounts: Iterable[Account]) -> list[Balance]:
    """One balance per currency (the venue may list several accounts in one currency); total = available + hold."""
    available: dict[str, Decimal] = {}
    held: dict[str, Decimal] = {}
    for account in accounts:
        for money in (account.available_balance, account.hold):
            if money.currency != account.currency:
                raise ValueError(f"account {account.uuid}: {money.currency} amount in a {account.currency} account")
        available[account.currency] = available.get(account.currency, ZERO) + account.available_balance.value
        held[account.currency] = held.get(account.currency, ZERO) + account.hold.value
    return [Balance(currency=currency, total=available[currency] + held[currency], available=available[currency])
            for currency in sorted(available)]


def positions_from_balances(balances: Iterable[Balance], products_by_base: Mapping[str, str],
                            quote_currency: str) -> tuple[list[VenuePosition], list[str]]:
    """Spot positions: non-zero balances of base currencies. Returns (positions, currencies with a non-zero
    balance but no product quoted in `quote_currency`)."""
    positions, unmapped = [], []
    for balance in balances:
        if balance.currency == quote_currency or balance.total == 0:
            continue
        product_id = products_by_base.get(balance.currency)
        if product_id is None:
            unmapped.append(balance.currency)
            continue
        positions.append(VenuePosition(instrument_id=instrument_id_for(product_id), venue_symbol=product_id,
                                       quantity=balance.total))
    return positions, unmapped


def order_status_for(status: VenueOrderStatus, filled: Decimal) -> OrderStatus:
    mapped = STATUS_MAP.get(status.value)
    if mapped is None:
        raise ValueError(f"order status {status.value} names no state we can act on")
    if mapped is OrderStatus.OPEN and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return mapped


def venue_order_from_historical(order: HistoricalOrder) -> VenueOrder:
    (kind, config), = order.order_configuration.items()
    if config.base_size is None:
        # A quote-sized order (market buy in USD) has no base quantity to report; we never place one.
        raise ValueError(f"order {order.order_id}: {kind} has no base_size")
    filled = order.filled_size or ZERO
    return VenueOrder(
        venue_order_id=order.order_id, client_order_id=order.client_order_id or None,
        instrument_id=instrument_id_for(order.product_id), side=SIDE_MAP[order.side.value],
        quantity=config.base_size, filled_quantity=filled, limit_price=config.limit_price,
        status=order_status_for(order.status, filled), venue_status=order.status.value)


def venue_order_from_user_order(order: UserOrder) -> VenueOrder:
    filled = order.cumulative_quantity
    return VenueOrder(
        venue_order_id=order.order_id, client_order_id=order.client_order_id or None,
        instrument_id=instrument_id_for(order.product_id), side=SIDE_MAP[order.order_side.value],
        quantity=filled + order.leaves_quantity, filled_quantity=filled, limit_price=order.limit_price,
        status=order_status_for(order.status, filled), venue_status=order.status.value)


# The fee charged is the fill's commission whatever the label; taker is the conservative label for analytics
# when the venue does not know which side of the trade we were.
_LIQUIDITY = {LiquidityIndicator.MAKER: Liquidity.MAKER, LiquidityIndicator.TAKER: Liquidity.TAKER,
              LiquidityIndicator.UNKNOWN_LIQUIDITY_INDICATOR: Liquidity.TAKER}


def venue_fill_from_fill(fill: Fill) -> VenueFill:
    if fill.trade_type is not TradeType.FILL:
        # A reversal or correction changes a past fill; booking it as a new fill would be wrong, dropping it too.
        raise UnsupportedError(VENUE, f"fill entry {fill.entry_id} is a {fill.trade_type.value}: reconcile by hand")
    quantity = fill.size / fill.price if fill.size_in_quote else fill.size
    return VenueFill(
        # entry_id identifies our fill; trade_id names the match, which both legs of a self-trade share.
        venue=VENUE, venue_trade_id=fill.entry_id, venue_order_id=fill.order_id, client_order_id=None,
        instrument_id=instrument_id_for(fill.product_id), side=SIDE_MAP[fill.side.value], quantity=quantity,
        price=fill.price, fee=fill.commission, liquidity=_LIQUIDITY[fill.liquidity_indicator], ts=fill.trade_time)


def rate_fees_from_summary(summary: TransactionSummary) -> RateFees:
    return RateFees(maker_rate=summary.fee_tier.maker_fee_rate, taker_rate=summary.fee_tier.taker_fee_rate)


# ---- orders -------------------------------------------------------------------------------------------------


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def order_configuration_for(order: Order) -> dict[str, dict[str, object]]:
    """The venue's order_configuration for our (type, time in force); any other combination is unsupported."""
    size = _decimal_text(order.quantity)
    if order.order_type is OrderType.MARKET:
        if order.time_in_force is TimeInForce.IOC:
            return {"market_market_ioc": {"base_size": size}}
        raise UnsupportedError(VENUE, f"market orders are immediate-or-cancel on Coinbase, not "
                                      f"{order.time_in_force.value}")
    if order.limit_price is None:
        raise UnsupportedError(VENUE, "a limit order needs a limit price")
    price = _decimal_text(order.limit_price)
    match order.time_in_force:
        case TimeInForce.GTC:
            return {"limit_limit_gtc": {"base_size": size, "limit_price": price, "post_only": False}}
        case TimeInForce.FOK:
            return {"limit_limit_fok": {"base_size": size, "limit_price": price}}
        case TimeInForce.IOC:
            # The limit IOC configuration is named in the official SDK, not in venues.md.
            return {"sor_limit_ioc": {"base_size": size, "limit_price": price}}
        case _:
            raise UnsupportedError(VENUE, f"limit orders with time in force {order.time_in_force.value} are not "
                                          "supported (Coinbase has no trading day)")


def create_order_body(order: Order) -> dict[str, object]:
    return {"client_order_id": order.client_order_id, "product_id": product_id_for(order.instrument_id),
            "side": VENUE_SIDE[order.side], "order_configuration": order_configuration_for(order)}


# ---- fill cursor --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FillCursor:
    """Our own cursor for `fills_since`: the latest fill time seen and the fills seen within the look-back window
    behind it. The venue's cursor pages through one listing; it cannot say "after these", this can."""

    high_water: datetime
    seen: Mapping[str, datetime]

    def encode(self) -> str:
        document = {"v": 1, "t": self.high_water.isoformat(),
                    "seen": sorted([entry, ts.isoformat()] for entry, ts in self.seen.items())}
        return base64.urlsafe_b64encode(json.dumps(document, separators=(",", ":")).encode()).decode()

    @classmethod
    def decode(cls, text: str) -> FillCursor:
        try:
            document = json.loads(base64.urlsafe_b64decode(text.encode()))
            if document["v"] != 1:
                raise ValueError("unknown cursor version")
            high_water = datetime.fromisoformat(document["t"])
            seen = {str(entry): datetime.fromisoformat(ts) for entry, ts in document["seen"]}
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise ValueError("not a Coinbase fills cursor") from None
        if high_water.tzinfo is None or any(ts.tzinfo is None for ts in seen.values()):
            raise ValueError("not a Coinbase fills cursor")
        return cls(high_water=high_water, seen=seen)

    def since(self, lookback: timedelta) -> datetime:
        return self.high_water - lookback


def fills_after(cursor: FillCursor | None, fills: Iterable[VenueFill],
                lookback: timedelta) -> tuple[list[VenueFill], FillCursor | None]:
    """The fills not seen before (each once, oldest first) and the cursor that follows them."""
    seen = dict(cursor.seen) if cursor else {}
    floor = cursor.since(lookback) if cursor else None
    fresh: list[VenueFill] = []
    for fill in fills:
        if fill.venue_trade_id in seen or (floor is not None and fill.ts < floor):
            continue
        seen[fill.venue_trade_id] = fill.ts
        fresh.append(fill)
    if not seen:
        return [], cursor
    high_water = max([*seen.values(), *([cursor.high_water] if cursor else [])])
    kept = {entry: ts for entry, ts in seen.items() if ts >= high_water - lookback}
    return sorted(fresh, key=lambda fill: fill.ts), FillCursor(high_water=high_water, seen=kept)
