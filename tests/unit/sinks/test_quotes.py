"""The tick path's quote validation gives the pydantic `Quote` model's verdict on every input, faster."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import sinks.quotes
from core.market import Quote
from sinks.quotes import QuoteRow, UnstorableError, quote_row
from sinks.schema import TICKS, storable_problem
from streams.records import RecordError, encode
from tests.kit.builders import T0, quote

FIELDS = ("schema_version", "instrument_id", "bid", "ask", "bid_size", "ask_size", "ts", "seq")
_COPY_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in _COPY_UNESCAPES:
            out.append(_COPY_UNESCAPES[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def assert_row_is_the_quote(row: QuoteRow, model: Quote) -> None:
    """Every column of the COPY line holds exactly the model's value (numeric scale included)."""
    assert row.copy_line.endswith(b"\n")
    ts, instrument_id, *numbers, seq = row.copy_line[:-1].decode().split("\t")
    assert datetime.fromisoformat(ts) == model.ts
    assert _unescape(instrument_id) == model.instrument_id == row.instrument_id
    for text, value in zip(numbers, (model.bid, model.ask, model.bid_size, model.ask_size), strict=True):
        assert Decimal(text).as_tuple() == value.as_tuple()
    assert int(seq) == model.seq
    assert Quote.model_validate_json(row.quote_json) == model


# -- input strategies: canonical encodings (the fast path) mixed with every kind of near miss ----------

canonical_decimals = st.from_regex(r"\A\d{1,42}(\.\d{1,42})?(E[+-]?\d{1,5})?\Z")
decimals = st.one_of(
    canonical_decimals, canonical_decimals,
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["-1", "-0", "1_000", " 1.5", "1.5 ", "+1", ".5", "5.", "1e5", "NaN", "Infinity", "", "0x10"]),
    st.integers(min_value=-10, max_value=10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(), st.none(),
)
offsets = st.integers(min_value=-24 * 60 + 1, max_value=24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
# hypothesis takes naive bounds and attaches `timezones` itself
aware = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)  # noqa: DTZ001
timestamps = st.one_of(
    aware.map(lambda d: d.isoformat()), aware.map(lambda d: d.astimezone(UTC).isoformat().replace("+00:00", "Z")),
    st.datetimes().map(lambda d: d.isoformat()),  # naive
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}[T t]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|z|[+-]\d{2}:?\d{2})?\Z"),
    st.integers(min_value=0, max_value=4_000_000_000), st.text(max_size=30),
)
instrument_ids = st.one_of(st.text(max_size=30), st.text(alphabet="AZaz09:-_ ", min_size=1, max_size=30),
                           st.integers())
seqs = st.one_of(st.integers(min_value=-3, max_value=2**64), st.integers(min_value=0, max_value=1000),
                 st.floats(allow_nan=False), st.text(alphabet="0123456789", max_size=3), st.booleans())
versions = st.sampled_from([1, 1, 1, 2, 0, 1.0, True, "1", None])


@st.composite
def valid_quotes(draw: st.DrawFn) -> Quote:
    """Quotes as a feed makes them: Decimal shapes as str(Decimal) writes them (1E-8, 100.10, 7), seq < 10**18."""
    prices = st.decimals(min_value=0, max_value=10**9, places=draw(st.integers(0, 10)), allow_nan=False)
    bid, ask = sorted((draw(prices), draw(prices)))
    size = st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False)
    return Quote(instrument_id=draw(st.text(alphabet="ABCXYZ:-_./0123456789", min_size=1, max_size=24)),
                 bid=bid, ask=ask, bid_size=draw(size), ask_size=draw(size),
                 ts=draw(st.datetimes(timezones=st.just(UTC))), seq=draw(st.integers(0, 10**18 - 1)))


FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "schema_version": versions, "instrument_id": instrument_ids, "bid": decimals, "ask": decimals,
    "bid_size": decimals, "ask_size": decimals, "ts": timestamps, "seq": seqs,
}


@st.composite
def quote_messages(draw: st.DrawFn) -> bytes:
    """A valid quote's JSON with up to three fields replaced by anything, in various JSON shapes."""
    body: dict[str, Any] = json.loads(encode(draw(valid_quotes())))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        body[field] = draw(FIELD_VALUES[field])
    shape = draw(st.sampled_from(["canonical", "canonical", "canonical", "drop", "extra", "shuffle", "spaced"]))
    if shape == "drop":
        del body[draw(st.sampled_from(FIELDS))]
    elif shape == "extra":
        body["venue"] = "x"
    elif shape == "shuffle":
        body = dict(draw(st.permutations(list(body.items()))))
    separators = (", ", ": ") if shape == "spaced" else (",", ":")
    return json.dumps(body, separators=separators, ensure_ascii=draw(st.booleans())).encode()


def _model(raw: bytes) -> Quote | None:
    try:
        return Quote.model_validate_json(raw)
    except ValidationError:
        return None


# -- properties --------------------------------------------------------------------------------------------

@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(quote_messages())
@example(encode(quote()))
@example(encode(quote()).replace(b'"bid":"100.00"', b'"bid":"200.00"'))  # crossed
@example(encode(quote()).replace(b"2026-01-05", b"2026-02-30"))  # no such day
@example(encode(quote()).replace(b"Z", b"+00:75"))  # speedate refuses minutes >= 60; Python's parser would not
@example(encode(quote()).replace(b'"seq":1', b'"seq":99999999999999999999'))  # valid, beyond bigint
@example(encode(quote(instrument_id="a\x00b")))  # valid, NUL cannot be stored
@example(encode(quote()).replace(b'"bid":"100.00"', b'"bid":"1E-20000"'))  # valid, beyond numeric's scale
def test_quote_row_accepts_and_rejects_exactly_what_the_model_does(raw: bytes) -> None:
    model = _model(raw)
    event("fast path accepts" if sinks.quotes._fast_row(raw) else "model decides")
    event("valid" if model else "invalid")
    try:
        row = quote_row(raw)
    except UnstorableError:
        assert model is not None, "only a quote the model accepts can be unstorable"
        values = (model.ts, model.instrument_id, model.bid, model.ask, model.bid_size, model.ask_size, model.seq)
        assert storable_problem(TICKS, values) is not None
        return
    except RecordError:
        assert model is None, f"the model accepts what quote_row rejected: {raw!r}"
        return
    assert model is not None, f"quote_row accepted what the model rejects: {raw!r}"
    assert_row_is_the_quote(row, model)


@settings(max_examples=1000)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_get_the_models_verdict(raw: bytes) -> None:
    model = _model(raw)
    try:
        row = quote_row(raw)
    except RecordError:
        assert model is None or storable_problem(
            TICKS, (model.ts, model.instrument_id, model.bid, model.ask, model.bid_size, model.ask_size,
                    model.seq)) is not None
        return
    assert model is not None
    assert_row_is_the_quote(row, model)


@settings(max_examples=500)
@given(valid_quotes())
def test_quotes_as_the_feed_encodes_them_take_the_fast_path(feed_quote: Quote) -> None:
    raw = encode(feed_quote)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sinks.quotes, "decode", _model_must_not_be_called)
        row = quote_row(raw)
    assert_row_is_the_quote(row, feed_quote)


def _model_must_not_be_called(*_: object) -> Quote:
    raise AssertionError("the fast path should have decided this quote")


def test_empty_value_is_rejected_with_the_models_reason() -> None:
    with pytest.raises(RecordError, match="empty message value"):
        quote_row(None)


def test_non_canonical_but_valid_quote_is_accepted_through_the_model() -> None:
    raw = json.dumps({"seq": 3, "ts": "2026-01-05 14:30:00+01:00", "ask": 101, "bid": "100.5", "bid_size": "1",
                      "ask_size": "2", "instrument_id": "crypto_spot:BTC-USD", "schema_version": 1}).encode()
    row = quote_row(raw)
    assert row.copy_line == b"2026-01-05T13:30:00+00:00\tcrypto_spot:BTC-USD\t100.5\t101\t1\t2\t3\n"
    assert Quote.model_validate_json(row.quote_json).ts == T0 - timedelta(hours=1)


def test_instrument_id_with_copy_special_characters_is_escaped() -> None:
    row = quote_row(encode(quote(instrument_id="a\tb\\c\nd")))
    assert row.copy_line.split(b"\t")[1:5] == [b"a\\tb\\\\c\\nd", b"100.00", b"100.10", b"5"]


@pytest.mark.parametrize(("raw", "reason"), [
    (encode(quote()).replace(b'"bid":"100.00"', b'"bid":"200.00"'), "crossed quote"),
    (encode(quote()).replace(b'"bid":"100.00"', b'"bid":100.0'), "float is not accepted"),
    (encode(quote()).replace(b"Z", b""), "timezone-aware"),
    (b"{", "Invalid JSON"),
])
def test_rejections_carry_the_models_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        quote_row(raw)
