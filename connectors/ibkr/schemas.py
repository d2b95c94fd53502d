"""Frozen models of the IBKR Web API payloads we read. Required fields are enforced; fields we do not use are
ignored (IBKR answers carry dozens). Enum-like strings are checked in `parsing`, where unknown values raise.

IBKR sends numbers both as strings and as JSON numbers. A JSON number has already become a float in the shared
HTTP client; `repr` of a float is the shortest text that reads back as that float, which is the wire text for
any value of up to 15 significant digits, so `WireDecimal` takes it from there (see the report on the shared
client: parsing JSON with parse_float=Decimal would remove this step).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, SecretStr


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"not a number: {value!r}") from None
    raise ValueError(f"expected a number, got {type(value).__name__}")


def _finite(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


def _optional_decimal(value: Any) -> Decimal | None:
    # IBKR leaves some numeric fields empty ("") or null when they do not apply.
    return None if value is None or value == "" else _decimal(value)


def _identifier(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() == "":
        raise ValueError(f"expected an identifier, got {value!r}")
    return str(value).strip()


def _conid(value: Any) -> str:
    text = _identifier(value)
    if not text.isdigit():
        raise ValueError(f"a conid is a positive integer, got {value!r}")
    return text


def _field_text(value: Any) -> str:
    # Market data field values are strings, sometimes prefixed; a bare number is turned back into its text.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"expected a field value, got {value!r}")
    return repr(value) if isinstance(value, float) else str(value)


WireDecimal = Annotated[Decimal, BeforeValidator(_decimal), AfterValidator(_finite)]
OptionalWireDecimal = Annotated[Decimal | None, BeforeValidator(_optional_decimal)]
WireId = Annotated[str, BeforeValidator(_identifier)]
Conid = Annotated[str, BeforeValidator(_conid)]
FieldText = Annotated[str, BeforeValidator(_field_text)]


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


class AuthStatus(Payload):
    authenticated: bool
    competing: bool
    connected: bool

    @property
    def usable(self) -> bool:
        """The brokerage session can serve /iserver and /portfolio requests."""
        return self.authenticated and self.connected and not self.competing


class TickleIserver(Payload):
    auth_status: AuthStatus = Field(alias="authStatus")


class TickleReply(Payload):
    session: SecretStr
    iserver: TickleIserver


class IserverAccounts(Payload):
    accounts: list[str]


class PortfolioAccount(Payload):
    id: str


class StockContract(Payload):
    conid: Conid
    is_us: bool = Field(alias="isUS")


class StockListing(Payload):
    asset_class: str = Field(alias="assetClass")
    contracts: list[StockContract]


class FutureContract(Payload):
    symbol: str
    conid: Conid
    expiration_date: WireId = Field(alias="expirationDate")
    """YYYYMMDD, as a number or a string."""


class SearchSection(Payload):
    sec_type: str = Field(alias="secType")


class SearchResult(Payload):
    conid: WireId
    """Not always a plain conid (bond issuers, for example): checked when the entry is selected."""
    symbol: str | None = None
    sections: list[SearchSection] = []


class OptionContract(Payload):
    conid: Conid
    symbol: str
    sec_type: str = Field(alias="secType")
    right: str
    strike: WireDecimal
    maturity_date: WireId = Field(alias="maturityDate")
    multiplier: WireDecimal


class ContractInfo(Payload):
    con_id: Conid
    symbol: str
    instrument_type: str
    currency: str
    multiplier: OptionalWireDecimal = None
    expiry_full: WireId | None = None
    right: str | None = None
    strike: OptionalWireDecimal = None


class MarketDataFields(Payload):
    updated_ms: int | None = Field(default=None, alias="_updated")
    last: FieldText | None = Field(default=None, alias="31")
    bid: FieldText | None = Field(default=None, alias="84")
    ask: FieldText | None = Field(default=None, alias="86")
    bid_size: FieldText | None = Field(default=None, alias="88")
    ask_size: FieldText | None = Field(default=None, alias="85")


class SnapshotRow(MarketDataFields):
    conid: Conid


class StreamMessage(MarketDataFields):
    """A websocket market data message: `topic` is `smd+<conid>`; only the fields that changed are present."""

    topic: str


class LedgerEntry(Payload):
    currency: str
    cashbalance: WireDecimal
    settledcash: OptionalWireDecimal = None


class PositionRow(Payload):
    conid: Conid
    position: WireDecimal
    avg_price: OptionalWireDecimal = Field(default=None, alias="avgPrice")


class LiveOrder(Payload):
    acct: str
    order_id: WireId = Field(alias="orderId")
    conid: Conid
    status: str
    side: str
    total_size: WireDecimal = Field(alias="totalSize")
    filled_quantity: WireDecimal = Field(alias="filledQuantity")
    price: OptionalWireDecimal = None
    order_ref: str | None = None
    """The cOID the order was placed with."""


class LiveOrders(Payload):
    orders: list[LiveOrder]


class TradeRow(Payload):
    execution_id: str = Field(min_length=1)
    conid: Conid
    side: str
    size: WireDecimal
    price: WireDecimal
    trade_time_r: int
    """Execution time, milliseconds since the epoch."""
    order_id: WireId
    order_ref: str | None = None
    account: str | None = None
    commission: OptionalWireDecimal = None


class Question(Payload):
    """A warning the order must be confirmed past (POST /iserver/reply/{id})."""

    id: str = Field(min_length=1)
    message: list[str]
    message_ids: list[str] = Field(default_factory=list, alias="messageIds")


class Ack(Payload):
    order_id: WireId
    order_status: str


class CancelReply(Payload):
    order_id: WireId
