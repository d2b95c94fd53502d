import pytest

from core.market import Quote
from core.orders import OrderIntent, new_order
from streams.records import FillReported, OrderUpdated, RecordError, decode, decode_order_event, encode
from streams.topics import ALL_TOPICS, DEAD_LETTER, Key
from tests.kit.builders import T0, intent, quote


def test_records_round_trip_through_json() -> None:
    q = quote()
    assert decode(Quote, encode(q)) == q
    i = intent(limit_price="100.5")
    assert decode(OrderIntent, encode(i)) == i
    event = OrderUpdated(order=new_order(i, "APPROVED", "", T0))
    assert decode_order_event(encode(event)) == event


@pytest.mark.parametrize(("raw", "reason"), [
    (b"not json", "Invalid JSON"),
    (b'{"schema_version": 2}', "schema_version"),
    (None, "empty message value"),
])
def test_malformed_values_raise_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        decode(Quote, raw)


def test_crossed_quote_is_invalid() -> None:
    bad = encode(quote()).replace(b'"bid":"100.00"', b'"bid":"200.00"')
    with pytest.raises(RecordError, match="crossed quote"):
        decode(Quote, bad)


def test_order_event_discriminates_on_kind() -> None:
    with pytest.raises(RecordError):
        decode_order_event(b'{"kind": "nonsense"}')
    assert FillReported.model_fields["kind"].default == "fill"


def test_topic_names_are_unique_and_control_topics_are_compacted() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(names) == len(set(names))
    for spec in ALL_TOPICS:
        if spec.name.startswith("control."):
            assert spec.compacted and spec.config()["cleanup.policy"] == "compact"
        if spec.key is Key.ACCOUNT:
            assert not spec.single_partition  # order flow is co-partitioned by account
    assert DEAD_LETTER.config()["cleanup.policy"] == "delete"
