from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from backtest.data import DataError, load_bars, load_quotes, market_data
from core.market import Bar, Quote
from tests.kit.builders import T0, quote

HEADER = "ts,instrument_id,open,high,low,close,volume\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_bars_from_csv_cover_the_inferred_interval_and_are_delivered_at_their_end(tmp_path: Path) -> None:
    path = write(tmp_path, "bars.csv", HEADER + "2026-01-05T14:30:00Z,equity:AAPL,10,11.00,9.5,10.5,100\n"
                                               "2026-01-05T14:35:00+00:00,equity:AAPL,10.5,10.6,10,10.2,50\n"
                                               "2026-01-05T14:45:00Z,equity:AAPL,10.2,10.2,10.2,10.2,0\n")
    bars = load_bars([path])
    assert bars[0] == Bar("equity:AAPL", Decimal(10), Decimal(11), Decimal("9.5"), Decimal("10.5"), Decimal(100), T0,
                          T0 + timedelta(minutes=5))
    assert [str(b.high) for b in bars] == ["11", "10.6", "10.2"]
    assert [b.ts_end - b.ts_start for b in bars] == [timedelta(minutes=5)] * 3
    assert [b.ts_end for b in load_bars([path], timedelta(minutes=1))][:1] == [T0 + timedelta(minutes=1)]


def test_bars_from_parquet(tmp_path: Path) -> None:
    table = pa.table({
        "ts": pa.array([T0, T0 + timedelta(minutes=1)], pa.timestamp("us", tz="UTC")),
        "instrument_id": ["equity:AAPL", "equity:AAPL"],
        **{c: pa.array([Decimal("10.25"), Decimal("10.50")], pa.decimal128(38, 18))
           for c in ("open", "high", "low", "close")},
        "volume": pa.array([1, 2], pa.int64()),
    })
    pq.write_table(table, tmp_path / "bars.parquet")
    bars = load_bars([tmp_path / "bars.parquet"])
    assert [(str(b.close), str(b.volume), b.ts_start, b.ts_end) for b in bars] == [
        ("10.25", "1", T0, T0 + timedelta(minutes=1)),
        ("10.5", "2", T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))]  # no trailing zeros from decimal128


@pytest.mark.parametrize(("rows", "message"), [
    ("2026-01-05T14:30:00,equity:AAPL,10,11,9,10,1\n", "UTC offset"),
    ("2026-01-05T14:30:00Z,equity:AAPL,10,11,9,12,1\n", "outside"),
    ("2026-01-05T14:30:00Z,equity:AAPL,ten,11,9,10,1\n", "not a plain decimal"),
])
def test_a_bad_bar_row_stops_the_load_with_its_file_and_line(tmp_path: Path, rows: str, message: str) -> None:
    path = write(tmp_path, "bad.csv", HEADER + "2026-01-05T14:29:00Z,equity:AAPL,10,11,9,10,1\n" + rows)
    with pytest.raises(DataError, match=rf"bad\.csv.*line 3.*{message}"):
        load_bars([path])


def test_a_second_bar_for_the_same_instrument_and_time_is_refused(tmp_path: Path) -> None:
    row = "2026-01-05T14:30:00Z,equity:AAPL,10,11,9,10,1\n"
    with pytest.raises(DataError, match="more than one bar"):
        load_bars([write(tmp_path, "a.csv", HEADER + row), write(tmp_path, "b.csv", HEADER + row)],
                  timedelta(minutes=1))


def test_the_interval_cannot_be_inferred_from_a_single_bar(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot infer the bar interval"):
        load_bars([write(tmp_path, "one.csv", HEADER + "2026-01-05T14:30:00Z,equity:AAPL,10,11,9,10,1\n")])


def test_quotes_from_csv_number_themselves_per_instrument(tmp_path: Path) -> None:
    path = write(tmp_path, "quotes.csv", "ts,instrument_id,bid,ask,bid_size,ask_size\n"
                                         "2026-01-05T14:30:00Z,equity:AAPL,10.00,10.02,5,7\n"
                                         "2026-01-05T14:30:01Z,equity:AAPL,10.01,10.03,5,7\n")
    quotes = load_quotes([path])
    assert quotes[1] == Quote(instrument_id="equity:AAPL", bid=Decimal("10.01"), ask=Decimal("10.03"),
                              bid_size=Decimal(5), ask_size=Decimal(7), ts=T0 + timedelta(seconds=1), seq=1)


def test_a_crossed_quote_stops_the_load(tmp_path: Path) -> None:
    path = write(tmp_path, "quotes.csv", "ts,instrument_id,bid,ask,bid_size,ask_size\n"
                                         "2026-01-05T14:30:00Z,equity:AAPL,10.05,10.02,5,7\n")
    with pytest.raises(DataError, match=r"quotes\.csv line 2.*crossed quote"):
        load_quotes([path])


def test_the_timeline_orders_bars_by_their_end_and_puts_bars_before_quotes_at_the_same_time() -> None:
    one = Decimal(1)
    late = Bar("equity:AAPL", one, one, one, one, one, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2))
    early = Bar("equity:AAPL", one, one, one, one, one, T0, T0 + timedelta(minutes=1))
    same_time = quote("equity:AAPL", ts=T0 + timedelta(minutes=1))
    data = market_data([late, early], [same_time])
    assert data.events == [early, same_time, late]
    assert (data.quoted, data.bar_count, data.quote_count) == (frozenset({"equity:AAPL"}), 2, 1)
