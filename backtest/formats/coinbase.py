"""Coinbase Advanced Trade candles: the body of `GET /products/{product_id}/candles`.

    {"candles": [{"start": "1735689600", "low": "93100.5", "high": "93411.12", "open": "93200",
                  "close": "93350.01", "volume": "12.5031"}]}

`start` is the bar's start in unix seconds; every value is a string, and a JSON number in its place makes the row
bad. The body does not name the product, so the import must (instrument_id, e.g. crypto_spot:BTC-USD). Coinbase
lists the newest candle first; order does not matter here. The newest candle of a download may still have been
forming: importing it again once complete reports it as a conflict with the stored bar, never overwrites it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from backtest.formats.common import (
    Bar,
    FileFormatError,
    Parsed,
    decimal_field,
    make_bar,
    read_json_records,
    unix_seconds_field,
)


def read_candles(path: Path, instrument_id: str | None) -> Iterator[Parsed[Bar]]:
    if instrument_id is None:
        raise FileFormatError(f"{path}: Coinbase candles do not name their product: pass instrument_id")
    product = instrument_id

    def parse(candle: Mapping[str, Any]) -> Bar:
        return make_bar(product, unix_seconds_field("start", candle.get("start")),
                        *(decimal_field(name, candle.get(name)) for name in ("open", "high", "low", "close", "volume")))

    return read_json_records(path, "candles", parse)
