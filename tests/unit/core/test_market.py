from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from core.market import Bar
from tests.kit.builders import T0


def parse(**overrides: Any) -> Bar:
    fields: dict[str, Any] = {"instrument_id": "equity:AAPL", "open": Decimal(10), "high": Decimal(12),
                              "low": Decimal(9), "close": Decimal(11), "volume": Decimal(100), "ts_start": T0,
                              "ts_end": T0 + timedelta(minutes=1)}
    return Bar.parse(**{**fields, **overrides})


def test_parse_accepts_a_consistent_bar_and_normalises_times_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    bar = parse(ts_start=datetime(2026, 1, 5, 15, 30, tzinfo=paris), ts_end=datetime(2026, 1, 5, 15, 31, tzinfo=paris))
    assert bar.ts_start == datetime(2026, 1, 5, 14, 30, tzinfo=UTC) and bar.ts_start.tzinfo is UTC
    assert (bar.open, bar.high, bar.low, bar.close) == (Decimal(10), Decimal(12), Decimal(9), Decimal(11))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"close": 11.0}, "close must be a finite Decimal"),
    ({"open": Decimal("NaN")}, "open must be a finite Decimal"),
    ({"close": Decimal(13)}, "within \\[low, high\\]"),
    ({"low": Decimal(-1)}, "negative"),
    ({"volume": Decimal(-1)}, "negative"),
    ({"ts_start": datetime(2026, 1, 5, 14, 30)}, "timezone-aware"),  # noqa: DTZ001
    ({"ts_end": T0}, "must follow"),
    ({"instrument_id": ""}, "empty instrument_id"),
])
def test_parse_refuses_inconsistent_input(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(**overrides)


def test_a_bar_is_immutable() -> None:
    with pytest.raises(AttributeError):
        parse().close = Decimal(1)  # type: ignore[misc]
