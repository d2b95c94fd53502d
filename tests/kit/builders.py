"""Builders for core records with sensible defaults; tests override only what the case is about."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.accounts import Account, Owner
from core.instruments import AssetClass, Instrument, Venue
from core.market import Quote
from core.orders import IntentSource, OrderIntent
from core.risk import RiskContext, RiskPolicy
from core.types import ExecutionMode, OrderType, Side

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
OWNER = Owner(org_id="acme", user_id="alice")


def account(mode: ExecutionMode = ExecutionMode.PAPER, account_id: str = "acct-1", cash: str = "100000") -> Account:
    return Account(account_id=account_id, owner=OWNER, mode=mode, starting_cash=Decimal(cash))


def btc(**overrides: Any) -> Instrument:
    fields: dict[str, Any] = {
        "instrument_id": "crypto_spot:BTC-USD", "asset_class": AssetClass.CRYPTO_SPOT, "venue": Venue.COINBASE,
        "quote_currency": "USD", "tick_size": Decimal("0.01"), "lot_size": Decimal("0.0001"),
        "venue_symbols": {Venue.COINBASE: "BTC-USD"},
    }
    return Instrument(**{**fields, **overrides})


def es_future() -> Instrument:
    return Instrument(instrument_id="future:ES-202612", asset_class=AssetClass.FUTURE, venue=Venue.IBKR,
                      quote_currency="USD", tick_size=Decimal("0.25"), lot_size=Decimal(1), multiplier=Decimal(50))


def quote(instrument_id: str = "crypto_spot:BTC-USD", bid: str = "100.00", ask: str = "100.10", size: str = "5",
          seq: int = 1, ts: datetime = T0) -> Quote:
    return Quote(instrument_id=instrument_id, bid=Decimal(bid), ask=Decimal(ask), bid_size=Decimal(size),
                 ask_size=Decimal(size), ts=ts, seq=seq)


def intent(quantity: str = "1", side: Side = Side.BUY, key: str | None = None,
           instrument_id: str = "crypto_spot:BTC-USD", limit_price: str | None = None,
           mode: ExecutionMode = ExecutionMode.PAPER, acct: Account | None = None) -> OrderIntent:
    acct = acct or account(mode)
    return OrderIntent(
        trace_id=uuid.uuid4().hex, account_id=acct.account_id, owner=acct.owner, strategy_id="strat-1",
        idempotency_key=key or uuid.uuid4().hex, instrument_id=instrument_id, side=side,
        order_type=OrderType.LIMIT if limit_price else OrderType.MARKET, quantity=Decimal(quantity),
        limit_price=Decimal(limit_price) if limit_price else None, requested_mode=mode,
        source=IntentSource.API, created_at=T0,
    )


def policy(max_notional: str = "1000000", max_position: str = "1000") -> RiskPolicy:
    return RiskPolicy(policy_id="test", version=1, max_order_notional=Decimal(max_notional),
                      max_position_quantity=Decimal(max_position))


def risk_context(position: str = "0", with_quote: bool = True, **overrides: Any) -> RiskContext:
    """A context in which a small BTC order passes: a quote, a flat position, equity of 100,000."""
    fields: dict[str, Any] = {"instrument": btc(), "position_quantity": Decimal(position),
                              "quote": quote() if with_quote else None, "equity": Decimal(100_000)}
    return RiskContext(**{**fields, **overrides})
