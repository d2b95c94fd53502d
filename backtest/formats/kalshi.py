"""Kalshi public trades: the body of `GET /markets/trades` in the 2026 format.

    {"trades": [{"trade_id": "...", "ticker": "KXHIGHNY-26JAN05-T60", "count_fp": "10.00",
                 "yes_price_dollars": "0.5600", "no_price_dollars": "0.4400", "taker_outcome_side": "yes",
                 "taker_book_side": "bid", "created_time": "2026-01-05T14:30:00.123Z"}], "cursor": "..."}

Each trade becomes a trade of the YES contract `event_contract:<ticker>` (the connector's instrument id) at
`yes_price_dollars` for `count_fp` contracts. Taker side in YES terms: outcome yes (book bid) bought YES, a buy;
outcome no (book ask) bought NO, which is selling YES. Kalshi documents the two fields as one bit in two
vocabularies, so a disagreement makes the row bad, as does a yes and no price pair that does not sum to 1.
Prices are strings with at most 6 decimals in [0, 1], counts strings with at most 2; a JSON number in their
place makes the row bad. Deprecated fields (count, yes_price, no_price, price, taker_side) and fields not
read here are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from backtest.formats.common import (
    FieldError,
    Parsed,
    Trade,
    decimal_field,
    instrument_field,
    make_trade,
    read_json_records,
    text_field,
    time_field,
)
from core.instruments import Venue
from core.types import Side

PRICE_PLACES = 6
COUNT_PLACES = 2
INSTRUMENT_PREFIX = "event_contract:"
_TAKER_SIDE = {("yes", "bid"): Side.BUY, ("no", "ask"): Side.SELL}


def read_trades(path: Path, instrument_id: str | None) -> Iterator[Parsed[Trade]]:
    """`instrument_id`, when given, is what every trade must be on: a trade of another market is a bad row."""

    def parse(trade: Mapping[str, Any]) -> Trade:
        own = instrument_field("ticker", INSTRUMENT_PREFIX + text_field("ticker", trade.get("ticker")))
        if instrument_id is not None and own != instrument_id:
            raise FieldError(f"trade on {own}, not the requested {instrument_id}")
        yes = _price("yes_price_dollars", trade)
        no = _price("no_price_dollars", trade)
        if yes + no != 1:
            raise FieldError(f"yes_price_dollars {yes} + no_price_dollars {no} is not 1")
        outcome = text_field("taker_outcome_side", trade.get("taker_outcome_side"))
        book = text_field("taker_book_side", trade.get("taker_book_side"))
        if outcome not in ("yes", "no") or book not in ("bid", "ask"):
            raise FieldError(f"unknown taker side: taker_outcome_side {outcome!r}, taker_book_side {book!r}")
        side = _TAKER_SIDE.get((outcome, book))
        if side is None:
            raise FieldError(f"taker_outcome_side {outcome} contradicts taker_book_side {book}")
        return make_trade(Venue.KALSHI.value, text_field("trade_id", trade.get("trade_id")), own,
                          time_field("created_time", trade.get("created_time")), yes,
                          decimal_field("count_fp", trade.get("count_fp"), max_places=COUNT_PLACES), side)

    return read_json_records(path, "trades", parse)


def _price(name: str, trade: Mapping[str, Any]) -> Decimal:
    price = decimal_field(name, trade.get(name), max_places=PRICE_PLACES)
    if not 0 <= price <= 1:
        raise FieldError(f"{name} {price} is outside [0, 1]")
    return price
