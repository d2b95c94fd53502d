"""The level2 book: snapshot, absolute-size updates, best-price tracking, refusing to trust updates before a
snapshot."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectors.coinbase.parsing import Level2Book
from connectors.coinbase.schemas import Envelope, L2Event

AT = datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


def event(kind: str, *updates: tuple[str, str, str], product_id: str = "BTC-USD") -> L2Event:
    return L2Event.model_validate({"type": kind, "product_id": product_id, "updates": [
        {"side": side, "event_time": "2026-03-02T14:05:00Z", "price_level": price, "new_quantity": size}
        for side, price, size in updates]})


def levels(book: Level2Book) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    snapshot = book.order_book(depth=100)
    return ([(str(b.price), str(b.size)) for b in snapshot.bids], [(str(a.price), str(a.size)) for a in snapshot.asks])


def test_recorded_snapshot_then_update_build_the_book(sample: Callable[[str], Any]) -> None:
    book = Level2Book("BTC-USD")
    for name in ("ws_l2_snapshot", "ws_l2_update"):
        envelope = Envelope.model_validate(sample(name))
        assert book.apply(L2Event.model_validate(envelope.events[0]), envelope.timestamp)
    assert levels(book) == ([("94999.50", "2"), ("94998", "3")],
                            [("95000.50", "0.05"), ("95001.00", "0.4"), ("95001.01", "0.1")])
    quote = book.quote(seq=3)
    assert (quote.bid, quote.bid_size, quote.ask, quote.ask_size) == (
        Decimal("94999.50"), Decimal("2"), Decimal("95000.50"), Decimal("0.05"))


def test_updates_before_a_snapshot_are_ignored() -> None:
    book = Level2Book("BTC-USD")
    assert not book.apply(event("update", ("bid", "100", "1")), AT)
    assert book.top() is None
    with pytest.raises(ValueError, match="not in sync"):
        book.order_book(depth=5)


def test_a_snapshot_replaces_everything() -> None:
    book = Level2Book("BTC-USD")
    book.apply(event("snapshot", ("bid", "100", "1"), ("offer", "101", "1")), AT)
    book.apply(event("snapshot", ("bid", "90", "2"), ("offer", "91", "2")), AT)
    assert levels(book) == ([("90", "2")], [("91", "2")])


def test_best_prices_follow_removals_to_the_next_level() -> None:
    book = Level2Book("BTC-USD")
    book.apply(event("snapshot", ("bid", "100", "1"), ("bid", "99", "2"), ("offer", "101", "1"),
                     ("offer", "102", "3")), AT)
    book.apply(event("update", ("bid", "100", "0"), ("offer", "101", "0")), AT)
    assert book.top() == (Decimal(99), Decimal(2), Decimal(102), Decimal(3))
    book.apply(event("update", ("bid", "99", "0")), AT)
    assert book.top() is None  # one side empty: no top of book


def test_removing_an_absent_level_is_harmless() -> None:
    book = Level2Book("BTC-USD")
    book.apply(event("snapshot", ("bid", "100", "1"), ("offer", "101", "1")), AT)
    book.apply(event("update", ("bid", "50", "0")), AT)
    assert book.top() == (Decimal(100), Decimal(1), Decimal(101), Decimal(1))


def test_a_crossed_book_is_reported() -> None:
    book = Level2Book("BTC-USD")
    book.apply(event("snapshot", ("bid", "100", "1"), ("offer", "101", "1")), AT)
    assert not book.crossed
    book.apply(event("update", ("bid", "102", "1")), AT)
    assert book.crossed


def test_invalidate_forgets_the_book_until_the_next_snapshot() -> None:
    book = Level2Book("BTC-USD")
    book.apply(event("snapshot", ("bid", "100", "1"), ("offer", "101", "1")), AT)
    book.invalidate()
    assert not book.synced and not book.apply(event("update", ("bid", "100", "5")), AT)


def test_an_event_for_another_product_is_refused() -> None:
    with pytest.raises(ValueError, match="ETH-USD"):
        Level2Book("BTC-USD").apply(event("snapshot", product_id="ETH-USD"), AT)


def test_depth_limits_each_side() -> None:
    book = Level2Book("BTC-USD")
    book.apply(event("snapshot", *[("bid", str(100 - i), "1") for i in range(10)],
                     *[("offer", str(101 + i), "1") for i in range(10)]), AT)
    snapshot = book.order_book(depth=3)
    assert [b.price for b in snapshot.bids] == [100, 99, 98] and [a.price for a in snapshot.asks] == [101, 102, 103]
