"""Frozen models of the Coinbase Advanced Trade payloads we read (venues.md, 2026 format).

Required fields are enforced and enum values outside the documented set are refused; fields we do not use are
allowed through (the venue adds fields over time). Numbers arrive as decimal strings: a JSON number where a
string is documented is refused, since a float has already lost precision.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator


class VenueModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


def _string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"expected a decimal string, got {type(value).__name__}")
    return value


def _string_or_empty(value: Any) -> Any:
    # The venue writes "" for numbers that do not apply (a market order's limit price, say).
    if value is None or value == "":
        return None
    return _string(value)


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be > 0")
    return value


# Pydantic parses the string as a Decimal and refuses NaN and infinities.
DecimalStr = Annotated[Decimal, BeforeValidator(_string)]
NonNegativeStr = Annotated[Decimal, BeforeValidator(_string), AfterValidator(_non_negative)]
PositiveStr = Annotated[Decimal, BeforeValidator(_string), AfterValidator(_positive)]
OptionalDecimalStr = Annotated[Decimal | None, BeforeValidator(_string_or_empty)]


class VenueSide(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class ProductType(StrEnum):
    SPOT = "SPOT"
    FUTURE = "FUTURE"


class VenueOrderStatus(StrEnum):
    PENDING = "PENDING"
    OPEN = "OPEN"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"
    QUEUED = "QUEUED"
    CANCEL_QUEUED = "CANCEL_QUEUED"
    UNKNOWN_ORDER_STATUS = "UNKNOWN_ORDER_STATUS"


class LiquidityIndicator(StrEnum):
    MAKER = "MAKER"
    TAKER = "TAKER"
    UNKNOWN_LIQUIDITY_INDICATOR = "UNKNOWN_LIQUIDITY_INDICATOR"


class TradeType(StrEnum):
    """Fill entry kinds (from the official SDK; venues.md does not list the field)."""

    FILL = "FILL"
    REVERSAL = "REVERSAL"
    CORRECTION = "CORRECTION"
    SYNTHETIC = "SYNTHETIC"


class BookSide(StrEnum):
    BID = "bid"
    OFFER = "offer"


class EventType(StrEnum):
    SNAPSHOT = "snapshot"
    UPDATE = "update"


# ---- REST: errors -------------------------------------------------------------------------------------------


class ErrorBody(VenueModel):
    error: str = Field(min_length=1)
    error_details: str = ""
    message: str = ""


# ---- REST: market data --------------------------------------------------------------------------------------


class Product(VenueModel):
    product_id: str = Field(min_length=1)
    price: OptionalDecimalStr = None
    base_increment: PositiveStr
    quote_increment: PositiveStr
    base_min_size: NonNegativeStr
    base_max_size: NonNegativeStr
    status: str
    trading_disabled: bool
    product_type: ProductType
    base_currency_id: str | None = None
    quote_currency_id: str | None = None


class ProductsResponse(VenueModel):
    products: list[Product]
    num_products: int = Field(ge=0)


class PriceLevel(VenueModel):
    price: PositiveStr
    size: NonNegativeStr


class PriceBook(VenueModel):
    product_id: str = Field(min_length=1)
    bids: list[PriceLevel]
    asks: list[PriceLevel]
    time: AwareDatetime


class ProductBookResponse(VenueModel):
    pricebook: PriceBook


class BestBidAskResponse(VenueModel):
    pricebooks: list[PriceBook]


# ---- REST: account ------------------------------------------------------------------------------------------


class Money(VenueModel):
    value: DecimalStr
    currency: str = Field(min_length=1)


class Account(VenueModel):
    uuid: str = Field(min_length=1)
    currency: str = Field(min_length=1)
    available_balance: Money
    hold: Money


class AccountsResponse(VenueModel):
    accounts: list[Account]
    has_next: bool
    cursor: str = ""


class OrderConfigurationBody(VenueModel):
    """One order configuration (limit_limit_gtc, market_market_ioc...): the sizes and prices we read."""

    base_size: OptionalDecimalStr = None
    quote_size: OptionalDecimalStr = None
    limit_price: OptionalDecimalStr = None


class HistoricalOrder(VenueModel):
    order_id: str = Field(min_length=1)
    client_order_id: str
    product_id: str = Field(min_length=1)
    side: VenueSide
    status: VenueOrderStatus
    order_configuration: dict[str, OrderConfigurationBody]
    filled_size: OptionalDecimalStr = None
    created_time: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_configuration(self) -> HistoricalOrder:
        if len(self.order_configuration) != 1:
            raise ValueError(f"order_configuration must hold exactly one kind, got {len(self.order_configuration)}")
        return self


class OrdersResponse(VenueModel):
    orders: list[HistoricalOrder]
    has_next: bool
    cursor: str = ""


class Fill(VenueModel):
    entry_id: str = Field(min_length=1)
    trade_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    trade_time: AwareDatetime
    price: PositiveStr
    size: PositiveStr
    commission: NonNegativeStr
    liquidity_indicator: LiquidityIndicator
    side: VenueSide
    product_id: str = Field(min_length=1)
    size_in_quote: bool = False
    """Not in venues.md (the SDK and live answers carry it): when true, `size` is in the quote currency."""
    trade_type: TradeType = TradeType.FILL


class FillsResponse(VenueModel):
    fills: list[Fill]
    cursor: str = ""


class FeeTier(VenueModel):
    maker_fee_rate: NonNegativeStr
    taker_fee_rate: NonNegativeStr
    pricing_tier: str = ""


class TransactionSummary(VenueModel):
    fee_tier: FeeTier


# ---- REST: orders -------------------------------------------------------------------------------------------


class SuccessResponse(VenueModel):
    order_id: str = Field(min_length=1)
    client_order_id: str
    product_id: str | None = None
    side: VenueSide | None = None


class CreateOrderError(VenueModel):
    error: str = ""
    message: str = ""
    error_details: str = ""
    preview_failure_reason: str = ""
    new_order_failure_reason: str = ""


class CreateOrderResponse(VenueModel):
    success: bool
    success_response: SuccessResponse | None = None
    error_response: CreateOrderError | None = None
    failure_reason: str = ""

    @model_validator(mode="after")
    def _answer_matches_outcome(self) -> CreateOrderResponse:
        if self.success and self.success_response is None:
            raise ValueError("success without success_response")
        if not self.success and self.error_response is None and not self.failure_reason:
            raise ValueError("failure without error_response or failure_reason")
        return self

    @property
    def failure_code(self) -> str | None:
        """The most specific reason given: the venue fills the generic fields with UNKNOWN_* placeholders."""
        candidates = [self.failure_reason]
        if self.error_response is not None:
            candidates[:0] = [self.error_response.new_order_failure_reason,
                              self.error_response.preview_failure_reason, self.error_response.error]
        given = [code for code in candidates if code]
        return next((code for code in given if not code.startswith("UNKNOWN_")), given[0] if given else None)

    @property
    def failure_codes(self) -> frozenset[str]:
        codes = {self.failure_reason}
        if self.error_response is not None:
            codes |= {self.error_response.error, self.error_response.new_order_failure_reason,
                      self.error_response.preview_failure_reason}
        return frozenset(code for code in codes if code)


class CancelResult(VenueModel):
    success: bool
    failure_reason: str = ""
    order_id: str = Field(min_length=1)


class CancelResponse(VenueModel):
    results: list[CancelResult]


# ---- Websocket ----------------------------------------------------------------------------------------------


class Envelope(VenueModel):
    channel: str = Field(min_length=1)
    timestamp: AwareDatetime
    sequence_num: int = Field(ge=0)
    events: list[dict[str, Any]]


class L2Update(VenueModel):
    side: BookSide
    event_time: AwareDatetime
    price_level: PositiveStr
    new_quantity: NonNegativeStr
    """The new absolute size at this price; zero removes the level."""


class L2Event(VenueModel):
    type: EventType
    product_id: str = Field(min_length=1)
    updates: list[L2Update]


class Ticker(VenueModel):
    product_id: str = Field(min_length=1)
    price: PositiveStr
    best_bid: NonNegativeStr
    best_bid_quantity: NonNegativeStr
    best_ask: NonNegativeStr
    best_ask_quantity: NonNegativeStr


class TickerEvent(VenueModel):
    type: EventType
    tickers: list[Ticker]


class MarketTrade(VenueModel):
    trade_id: str = Field(min_length=1)
    product_id: str = Field(min_length=1)
    price: PositiveStr
    size: PositiveStr
    side: VenueSide
    time: AwareDatetime


class MarketTradesEvent(VenueModel):
    type: EventType
    trades: list[MarketTrade]


class UserOrder(VenueModel):
    order_id: str = Field(min_length=1)
    client_order_id: str
    product_id: str = Field(min_length=1)
    order_side: VenueSide
    status: VenueOrderStatus
    cumulative_quantity: NonNegativeStr
    leaves_quantity: NonNegativeStr
    limit_price: OptionalDecimalStr = None


class UserEvent(VenueModel):
    type: EventType
    orders: list[UserOrder]
