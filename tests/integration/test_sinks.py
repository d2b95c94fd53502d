"""The sinks against the real Kafka, Postgres and Redis: rows, dead letters, exactly-once offsets, the runner."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from pydantic import BaseModel

from agents.reconciliation import publish_reports
from core.fills import Fill
from core.instruments import Venue
from core.ledger import PnlSnapshot, Position
from core.market import Quote
from core.orders import Order, OrderStatus, new_order
from core.reconcile import ReadOutcome, ReconciliationReport, VenueSnapshot, reconcile
from core.types import ExecutionMode, Liquidity
from core.venue import VenuePosition
from sinks.base import build_dead_letter
from sinks.dead_letters import DeadLetterSink
from sinks.instruments import InstrumentSink
from sinks.orders import OrderEventSink
from sinks.portfolio import PortfolioSink
from sinks.reconciliation import ReconciliationSink
from sinks.runner import SinkFailedError, run_sinks
from sinks.ticks import TickBatch, TickSink
from streams.kafka import consumer_config, ensure_topics, headers, producer_config
from streams.records import (
    DeadLetter,
    FillReported,
    InstrumentListed,
    OrderUpdated,
    PositionUpdated,
    decode,
    encode,
)
from streams.shared_state import heartbeat_key, heartbeat_pattern, latest_quotes_key
from streams.topics import (
    ALL_TOPICS,
    DEAD_LETTER,
    MD_QUOTES,
    ORDER_EVENTS,
    PNL,
    POSITIONS,
    RECONCILIATION,
    REFERENCE_INSTRUMENTS,
    TopicSpec,
    topic_name,
)
from tests.kit.builders import OWNER, T0, account, btc, es_future, intent, quote
from tests.kit.sinks import running
from tests.kit.waiting import eventually
from tradestream.config import Settings

pytestmark = pytest.mark.integration

BTC = "crypto_spot:BTC-USD"
ETH = "crypto_spot:ETH-USD"


# -- kit -------------------------------------------------------------------------------------------------

@pytest.fixture
def env(settings: Settings) -> Iterator[Settings]:
    """The module's database with empty tables, and topics, consumer groups and Redis keys of this test only."""
    tag = uuid.uuid4().hex[:8]
    isolated = settings.model_copy(update={"topic_prefix": f"s{tag}.", "app_id": f"s-{tag}"})
    ensure_topics(isolated)
    with psycopg.connect(isolated.dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE ticks, orders, fills, positions, pnl_snapshots, dead_letters, reconciliation_reports,"
                     " instruments, sink_offsets")
    yield isolated
    admin = AdminClient({"bootstrap.servers": isolated.bootstrap_servers})
    for future in admin.delete_topics([topic_name(spec, isolated.topic_prefix) for spec in ALL_TOPICS]).values():
        future.result(timeout=30)
    with redis.Redis.from_url(isolated.redis) as cache:
        cache.delete(latest_quotes_key(isolated), *cache.keys(heartbeat_pattern(isolated)))


def produce(settings: Settings, spec: TopicSpec, items: Sequence[tuple[str, BaseModel | bytes | None]]) -> None:
    """Send (key, record-or-raw-bytes) pairs in order; records carry the trace header when they have one."""
    producer = Producer(producer_config(settings))
    for key, value in items:
        trace_id = _trace_id(value)
        raw = encode(value) if isinstance(value, BaseModel) else value
        producer.produce(topic_name(spec, settings.topic_prefix), key=key.encode(), value=raw,
                         headers=headers(trace_id, type(value).__name__))
    assert producer.flush(30) == 0, "messages not acknowledged"


def _trace_id(value: BaseModel | bytes | None) -> str | None:
    if isinstance(value, OrderUpdated):
        return value.order.trace_id
    if isinstance(value, FillReported):
        return value.fill.trace_id
    return None


def query(settings: Settings, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.dsn) as conn:
        return conn.execute(sql, params).fetchall()


def count(settings: Settings, table: str) -> int:
    return int(query(settings, f"SELECT count(*) FROM {table}")[0][0])


def read_topic(settings: Settings, spec: TopicSpec, expected: int) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) on a topic, waiting until there are `expected` of them."""
    consumer = Consumer(consumer_config(settings, f"test-read-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic_name(spec, settings.topic_prefix)])
    seen: list[tuple[bytes | None, bytes | None]] = []
    try:
        def enough() -> bool:
            seen.extend((m.key(), m.value()) for m in consumer.consume(100, timeout=0.2) if m.error() is None)
            return len(seen) >= expected

        eventually(enough, timeout=30, what=f"{expected} messages on {spec.name}")
    finally:
        consumer.close()
    return seen


def quotes_for(instrument_id: str, n: int, start: int = 0) -> list[tuple[str, BaseModel | bytes | None]]:
    return [(instrument_id, quote(instrument_id=instrument_id, seq=s, bid=f"{100 + s}.00", ask=f"{100 + s}.50",
                                  ts=T0 + timedelta(seconds=s)))
            for s in range(start, start + n)]


# -- TickSink --------------------------------------------------------------------------------------------

def test_tick_sink_writes_quotes_to_ticks_and_the_newest_per_instrument_to_redis(env: Settings) -> None:
    btc1 = quote(BTC, bid="100.00", ask="100.10", size="1.5", seq=1)
    btc2 = quote(BTC, bid="101.00", ask="101.25", size="0.00000001", seq=2, ts=T0 + timedelta(seconds=1))
    eth1 = quote(ETH, bid="3000.5", ask="3001", size="10", seq=1)
    produce(env, MD_QUOTES, [(BTC, btc1), (BTC, btc2), (ETH, eth1)])

    with running(TickSink(env)) as sink:
        eventually(lambda: count(env, "ticks") == 3, what="3 ticks")
        eventually(lambda: redis.Redis.from_url(env.redis).exists(heartbeat_key(env, "sink:ticks")),
                   what="the sink's heartbeat")

    rows = query(env, "SELECT ts, instrument_id, bid, ask, bid_size, ask_size, seq FROM ticks"
                      " ORDER BY instrument_id, seq")
    assert rows == [
        (T0, BTC, Decimal("100.00"), Decimal("100.10"), Decimal("1.5"), Decimal("1.5"), 1),
        (T0 + timedelta(seconds=1), BTC, Decimal("101.00"), Decimal("101.25"), Decimal("0.00000001"),
         Decimal("0.00000001"), 2),
        (T0, ETH, Decimal("3000.5"), Decimal("3001"), Decimal("10"), Decimal("10"), 1),
    ]
    with redis.Redis.from_url(env.redis) as cache:
        latest = cache.hgetall(latest_quotes_key(env))
        beat = json.loads(cache.get(heartbeat_key(env, "sink:ticks")) or b"{}")
    assert {k.decode(): Quote.model_validate_json(v) for k, v in latest.items()} == {BTC: btc2, ETH: eth1}
    assert beat["component"] == "sink:ticks" and beat["pid"] > 0
    assert sink.stats.rows == 3
    assert sum(r[0] for r in query(env, "SELECT next_offset FROM sink_offsets WHERE consumer = %s",
                                   (sink.group_id,))) == 3


def test_malformed_quotes_go_to_the_dead_letter_topic_and_the_next_good_one_is_written(env: Settings) -> None:
    crossed = encode(quote(BTC, seq=2)).replace(b'"bid":"100.00"', b'"bid":"200.00"')
    good = quote(BTC, seq=4)
    produce(env, MD_QUOTES, [(BTC, quote(BTC, seq=1)), (BTC, b"not json"), (BTC, crossed), (BTC, None), (BTC, good)])

    with running(TickSink(env)) as sink:
        eventually(lambda: count(env, "ticks") == 2, what="the two good quotes")
        letters = [decode(DeadLetter, value) for _, value in read_topic(env, DEAD_LETTER, 3)]

    assert [r[0] for r in query(env, "SELECT seq FROM ticks ORDER BY seq")] == [1, 4]
    source = topic_name(MD_QUOTES, env.topic_prefix)
    assert [(d.source_topic, d.offset, d.key, d.consumer) for d in letters] == [
        (source, 1, BTC, "sink:ticks"), (source, 2, BTC, "sink:ticks"), (source, 3, BTC, "sink:ticks")]
    assert len({d.partition for d in letters}) == 1
    assert [d.raw_value for d in letters] == [b"not json", crossed, b""]
    assert "Invalid JSON" in letters[0].error
    assert "crossed quote" in letters[1].error
    assert letters[2].error == "empty message value"
    assert sink.stats.dead_letters == 3


def test_restarted_sink_resumes_from_sink_offsets_even_when_kafka_commits_were_lost(env: Settings) -> None:
    produce(env, MD_QUOTES, quotes_for(BTC, 20) + quotes_for(ETH, 20))
    with running(TickSink(env)) as first:
        eventually(lambda: count(env, "ticks") == 40, what="the first 40 ticks")
    # A crash after the database commit and before the Kafka commit: Kafka's committed offsets lag behind.
    rewind = Consumer(consumer_config(env, first.group_id))
    topic = topic_name(MD_QUOTES, env.topic_prefix)
    rewind.commit(offsets=[TopicPartition(topic, p, 0) for p in range(env.topic_partitions)], asynchronous=False)
    rewind.close()
    produce(env, MD_QUOTES, quotes_for(BTC, 20, start=20) + quotes_for(ETH, 20, start=20))

    with running(TickSink(env)) as second:
        eventually(lambda: second.stats.messages >= 40, what="the second run to read the new quotes")

    assert second.stats.messages == 40
    assert query(env, "SELECT count(*), count(DISTINCT (instrument_id, seq)) FROM ticks") == [(80, 80)]


def test_a_consumer_whose_stored_offset_moved_on_rolls_back_and_reseeks(env: Settings) -> None:
    produce(env, MD_QUOTES, quotes_for(BTC, 10))
    with running(TickSink(env)) as sink:
        eventually(lambda: count(env, "ticks") == 10, what="10 ticks")
        # Another consumer took the partition over meanwhile and wrote offsets 10..14 itself.
        with psycopg.connect(env.dsn, autocommit=True) as conn:
            conn.execute("UPDATE sink_offsets SET next_offset = next_offset + 5 WHERE consumer = %s",
                         (sink.group_id,))
        produce(env, MD_QUOTES, quotes_for(BTC, 10, start=10))
        eventually(lambda: count(env, "ticks") == 15, what="offsets 15..19 after the re-seek")
        eventually(lambda: query(env, "SELECT next_offset FROM sink_offsets") == [(20,)], what="next offset 20")

    assert sink.stats.fenced >= 1
    assert [r[0] for r in query(env, "SELECT seq FROM ticks ORDER BY seq")] == [*range(10), *range(15, 20)]


def test_a_consumer_that_finds_its_new_partition_already_started_rolls_back_and_reseeks(env: Settings) -> None:
    def assigned_partitions() -> int:
        with redis.Redis.from_url(env.redis) as cache:
            return int(json.loads(cache.get(heartbeat_key(env, "sink:ticks")) or b"{}").get("partitions", 0))

    with running(TickSink(env, heartbeat_interval_s=0.1)) as sink:
        eventually(lambda: assigned_partitions() == env.topic_partitions, what="the partitions assigned")
        # Another consumer wrote offsets 0..2 of every partition before this one's first batch.
        topic = topic_name(MD_QUOTES, env.topic_prefix)
        with psycopg.connect(env.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO sink_offsets VALUES (%s, %s, %s, 3)",
                            [(sink.group_id, topic, p) for p in range(env.topic_partitions)])
        produce(env, MD_QUOTES, quotes_for(BTC, 5))
        eventually(lambda: count(env, "ticks") == 2, what="offsets 3 and 4 after the re-seek")

    assert sink.stats.fenced == 1
    assert [r[0] for r in query(env, "SELECT seq FROM ticks ORDER BY seq")] == [3, 4]


# -- OrderEventSink ----------------------------------------------------------------------------------------

def order_flow() -> tuple[Order, Order, Order, Fill]:
    i = intent(quantity="2", limit_price="100.5")
    placed = new_order(i, "APPROVED", "", T0)
    submitted = placed.transition(OrderStatus.PENDING_SUBMIT, T0 + timedelta(seconds=1),
                                  effective_mode=ExecutionMode.PAPER, reason_code="PAPER_SIMULATED",
                                  venue_response={"accepted": True, "queue": [1, "a"]})
    filled = submitted.with_fill(Decimal("2"), Decimal("100.4"), T0 + timedelta(seconds=2))
    fill = Fill(venue="paper", venue_trade_id="t-1", order_id=placed.order_id, trace_id=i.trace_id,
                account_id=i.account_id, owner=i.owner, strategy_id=i.strategy_id, instrument_id=i.instrument_id,
                side=i.side, quantity=Decimal("2"), price=Decimal("100.4"), fee=Decimal("0.0100"),
                liquidity=Liquidity.TAKER, mode=ExecutionMode.PAPER, ts=T0 + timedelta(seconds=2))
    return placed, submitted, filled, fill


def test_order_event_sink_keeps_the_newest_version_and_each_fill_once_even_when_redelivered(env: Settings) -> None:
    placed, submitted, filled, fill = order_flow()
    account = placed.account_id
    # Out of order, the fill twice, then the whole batch delivered again.
    batch: list[tuple[str, BaseModel | bytes | None]] = [
        (account, OrderUpdated(order=placed)), (account, OrderUpdated(order=filled)),
        (account, OrderUpdated(order=submitted)), (account, FillReported(fill=fill)),
        (account, FillReported(fill=fill))]
    produce(env, ORDER_EVENTS, batch)

    with running(OrderEventSink(env)) as sink:
        eventually(lambda: sink.stats.messages == 5, what="the first delivery")
        produce(env, ORDER_EVENTS, batch)
        eventually(lambda: sink.stats.messages == 10, what="the redelivery")

    assert query(env, "SELECT order_id, status, version, filled_quantity, average_fill_price, effective_mode,"
                      " reason_code, venue_response, org_id, user_id, trace_id FROM orders") == [
        (placed.order_id, "filled", 2, Decimal("2"), Decimal("100.4"), "paper", "PAPER_SIMULATED",
         {"accepted": True, "queue": [1, "a"]}, OWNER.org_id, OWNER.user_id, placed.trace_id)]
    assert query(env, "SELECT venue, venue_trade_id, order_id, quantity, price, fee, org_id, user_id, trace_id,"
                      " ts FROM fills") == [
        ("paper", "t-1", placed.order_id, Decimal("2"), Decimal("100.4"), Decimal("0.0100"), OWNER.org_id,
         OWNER.user_id, fill.trace_id, fill.ts)]


def test_an_order_postgres_cannot_store_is_dead_lettered_and_the_rest_written(env: Settings) -> None:
    placed, _, _, _ = order_flow()
    poison = placed.model_copy(update={"reason_detail": "nul \x00 inside"})
    other = new_order(intent(key="other"), "APPROVED", "", T0)
    produce(env, ORDER_EVENTS, [(placed.account_id, OrderUpdated(order=poison)),
                                (other.account_id, OrderUpdated(order=other))])

    with running(OrderEventSink(env)):
        eventually(lambda: count(env, "orders") == 1, what="the storable order")
        (letter,) = [decode(DeadLetter, value) for _, value in read_topic(env, DEAD_LETTER, 1)]

    assert query(env, "SELECT order_id FROM orders") == [(other.order_id,)]
    assert letter.error == "orders.reason_detail: NUL characters cannot be stored in text"
    assert letter.consumer == "sink:order_events"


# -- PortfolioSink and DeadLetterSink ----------------------------------------------------------------------

def position_update(instrument_id: str, quantity: str, at_seconds: int) -> PositionUpdated:
    return PositionUpdated(account_id="acct-1", owner_org_id=OWNER.org_id, owner_user_id=OWNER.user_id,
                           mode="paper", ts=T0 + timedelta(seconds=at_seconds),
                           position=Position(instrument_id=instrument_id, quantity=Decimal(quantity),
                                             average_price=Decimal("100.25"), realized_pnl=Decimal("-1.5"),
                                             fees_paid=Decimal("0.02"), last_trace_id=f"trace-{at_seconds}"))


def snapshot(at_seconds: int, equity: str, trace_id: str | None) -> PnlSnapshot:
    return PnlSnapshot(account_id="acct-1", owner=OWNER, mode=ExecutionMode.PAPER,
                       ts=T0 + timedelta(seconds=at_seconds), cash=Decimal("99000"), realized_pnl=Decimal("-1.5"),
                       unrealized_pnl=Decimal("3.25"), fees=Decimal("0.02"), equity=Decimal(equity),
                       unmarked_instruments=(ETH,), trace_id=trace_id)


def test_portfolio_sink_upserts_the_newest_positions_and_appends_pnl_snapshots(env: Settings) -> None:
    produce(env, POSITIONS, [("acct-1", position_update(BTC, "2", 2)), ("acct-1", position_update(BTC, "1", 1)),
                             ("acct-1", position_update(ETH, "-3", 1))])
    produce(env, PNL, [("acct-1", snapshot(1, "100001.75", "trace-1")), ("acct-1", snapshot(2, "100002", None))])

    with running(PortfolioSink(env)) as sink:
        eventually(lambda: sink.stats.messages == 5, what="5 portfolio records")
        produce(env, POSITIONS, [("acct-1", position_update(BTC, "5", 3))])
        eventually(lambda: sink.stats.messages == 6, what="a later position")

    assert query(env, "SELECT account_id, instrument_id, org_id, user_id, mode, quantity, average_price, multiplier,"
                      " realized_pnl, fees_paid, trace_id, updated_at FROM positions ORDER BY instrument_id") == [
        ("acct-1", BTC, OWNER.org_id, OWNER.user_id, "paper", Decimal("5"), Decimal("100.25"), Decimal("1"),
         Decimal("-1.5"), Decimal("0.02"), "trace-3", T0 + timedelta(seconds=3)),
        ("acct-1", ETH, OWNER.org_id, OWNER.user_id, "paper", Decimal("-3"), Decimal("100.25"), Decimal("1"),
         Decimal("-1.5"), Decimal("0.02"), "trace-1", T0 + timedelta(seconds=1)),
    ]
    assert query(env, "SELECT ts, org_id, user_id, mode, cash, realized_pnl, unrealized_pnl, fees, equity,"
                      " unmarked_instruments, trace_id FROM pnl_snapshots ORDER BY ts") == [
        (T0 + timedelta(seconds=1), OWNER.org_id, OWNER.user_id, "paper", Decimal("99000"), Decimal("-1.5"),
         Decimal("3.25"), Decimal("0.02"), Decimal("100001.75"), [ETH], "trace-1"),
        (T0 + timedelta(seconds=2), OWNER.org_id, OWNER.user_id, "paper", Decimal("99000"), Decimal("-1.5"),
         Decimal("3.25"), Decimal("0.02"), Decimal("100002"), [ETH], None),
    ]


def test_dead_letter_sink_files_each_dead_letter_once_and_its_own_undecodable_records(env: Settings) -> None:
    letter = build_dead_letter(topic="x.md.quotes", partition=2, offset=7, key=b"k", value=b"\x00raw", error="why",
                               consumer="sink:ticks", at=T0)
    produce(env, DEAD_LETTER, [("x.md.quotes", letter), ("x.md.quotes", letter), ("x.md.quotes", b"garbage")])

    with running(DeadLetterSink(env)) as sink:
        eventually(lambda: sink.stats.messages == 3, what="3 dead-letter records")

    rows = query(env, "SELECT source_topic, partition, \"offset\", key, error, consumer, value_b64, at"
                      " FROM dead_letters ORDER BY consumer DESC")
    assert rows[0] == ("x.md.quotes", 2, 7, "k", "why", "sink:ticks", letter.value_b64, T0)
    own = rows[1]
    assert own[0] == topic_name(DEAD_LETTER, env.topic_prefix) and own[2] == 2 and own[5] == "sink:dead_letters"
    assert "Invalid JSON" in own[4]
    assert len(rows) == 2


# -- ReconciliationSink ------------------------------------------------------------------------------------

LIVE = account(ExecutionMode.LIVE, account_id="live-1")
OK = ReadOutcome(ok=True)


def reconciled(at_seconds: int, theirs: str | None, read_error: str = "HTTP 503") -> ReconciliationReport:
    """live-1 holds 1.5 BTC in its ledger; the venue reports `theirs`, or its positions read fails (None)."""
    positions = None if theirs is None else (
        VenuePosition(instrument_id=BTC, venue_symbol="BTC-USD", quantity=Decimal(theirs)),)
    snapshot = VenueSnapshot(positions=positions, positions_read=OK if theirs is not None else
                             ReadOutcome(ok=False, error=read_error), balances=(), balances_read=OK, open_orders=(),
                             orders_read=OK)
    return reconcile(LIVE, "coinbase", T0 + timedelta(seconds=at_seconds), {BTC: Decimal("1.5")}, {}, [], snapshot)


def report_rows(settings: Settings) -> list[tuple[Any, ...]]:
    return query(settings, "SELECT account_id, venue, at, org_id, user_id, mode, status, discrepancies"
                           " FROM reconciliation_reports ORDER BY at")


def test_reconciliation_sink_stores_each_report_once_with_its_owner_and_differences(env: Settings) -> None:
    reports = [reconciled(1, "1.5"), reconciled(2, "1.25")]
    publish_reports(env, reports)

    with running(ReconciliationSink(env)) as sink:
        eventually(lambda: sink.stats.messages == 2, what="the first delivery")
        publish_reports(env, reports)  # a producer retry or a re-run of the publisher
        eventually(lambda: sink.stats.messages == 4, what="the redelivery")

    assert report_rows(env) == [
        ("live-1", "coinbase", T0 + timedelta(seconds=1), OWNER.org_id, OWNER.user_id, "live", "matched", []),
        ("live-1", "coinbase", T0 + timedelta(seconds=2), OWNER.org_id, OWNER.user_id, "live", "mismatched",
         [{"kind": "position_mismatch", "subject": BTC, "ours": "1.5", "theirs": "1.25", "detail": ""}]),
    ]


def test_a_report_whose_venue_read_failed_is_stored_as_unknown_never_as_flat(env: Settings) -> None:
    publish_reports(env, [reconciled(1, None)])

    with running(ReconciliationSink(env)):
        eventually(lambda: count(env, "reconciliation_reports") == 1, what="the unknown report")

    ((status, discrepancies),) = query(env, "SELECT status, discrepancies FROM reconciliation_reports")
    assert status == "unknown"
    # The ledger's 1.5 BTC is not compared with a position the venue never reported: no "flat" is stored.
    assert discrepancies == [{"kind": "read_failed", "subject": "positions", "ours": None, "theirs": None,
                              "detail": "HTTP 503"}]


def test_malformed_reports_are_dead_lettered_and_the_good_one_stored(env: Settings) -> None:
    unknown = encode(reconciled(1, None))
    claims_flat = unknown.replace(b'"status":"unknown"', b'"status":"matched"')
    version_1 = json.dumps({**json.loads(unknown), "schema_version": 1}).encode()
    nul = reconciled(2, None, read_error="venue said \x00")
    good = reconciled(3, "1.5")
    produce(env, RECONCILIATION, [("live-1", b"not json"), ("live-1", claims_flat), ("live-1", version_1),
                                  ("live-1", nul), ("live-1", good)])

    with running(ReconciliationSink(env)) as sink:
        eventually(lambda: count(env, "reconciliation_reports") == 1, what="the good report")
        letters = [decode(DeadLetter, value) for _, value in read_topic(env, DEAD_LETTER, 4)]

    assert [r[2] for r in report_rows(env)] == [good.at]
    assert [(d.offset, d.consumer) for d in letters] == [(o, "sink:reconciliation") for o in range(4)]
    assert "Invalid JSON" in letters[0].error
    assert "status matched contradicts its discrepancies (they make it unknown)" in letters[1].error
    assert letters[2].error.startswith("schema_version: Input should be 2")
    assert letters[3].error == "reconciliation_reports.discrepancies: NUL characters cannot be stored in text"
    assert sink.stats.dead_letters == 4


# -- InstrumentSink ----------------------------------------------------------------------------------------

def test_instrument_sink_upserts_the_newest_record_per_instrument_and_a_late_older_one_never_wins(
        env: Settings) -> None:
    older = InstrumentListed(instrument=btc(), listed_by=("simulated",), updated_at=T0)
    newer = InstrumentListed(
        instrument=btc(tick_size=Decimal("0.1"), tradeable=False, status="trading_disabled",
                       venue_symbols={Venue.COINBASE: "BTC-USD", Venue.SIMULATED: "btc"}),
        listed_by=("simulated", "coinbase"), updated_at=T0 + timedelta(seconds=1))
    expiring = es_future().model_copy(update={"expiry": T0 + timedelta(days=300)})
    future = InstrumentListed(instrument=expiring, listed_by=("ibkr:DU1",), updated_at=T0)
    produce(env, REFERENCE_INSTRUMENTS, [(BTC, newer), (BTC, older), (expiring.instrument_id, future),
                                         (ETH, b"garbage")])

    with running(InstrumentSink(env)) as sink:
        eventually(lambda: sink.stats.messages == 4, what="4 instrument records")
        produce(env, REFERENCE_INSTRUMENTS, [(BTC, older)])  # a late, older record in a later batch
        eventually(lambda: sink.stats.messages == 5, what="the late record")
        (letter,) = [decode(DeadLetter, value) for _, value in read_topic(env, DEAD_LETTER, 1)]

    assert query(env, "SELECT instrument_id, asset_class, venue, quote_currency, tick_size, lot_size, multiplier,"
                      " expiry, venue_symbols, tradeable, status, listed_by, updated_at FROM instruments"
                      " ORDER BY instrument_id") == [
        (BTC, "crypto_spot", "coinbase", "USD", Decimal("0.1"), Decimal("0.0001"), Decimal("1"), None,
         {"coinbase": "BTC-USD", "simulated": "btc"}, False, "trading_disabled", ["simulated", "coinbase"],
         T0 + timedelta(seconds=1)),
        ("future:ES-202612", "future", "ibkr", "USD", Decimal("0.25"), Decimal("1"), Decimal("50"),
         T0 + timedelta(days=300), {}, True, "", ["ibkr:DU1"], T0),
    ]
    assert (letter.consumer, letter.key) == ("sink:instruments", ETH)


# -- runner ------------------------------------------------------------------------------------------------

def test_run_sinks_runs_every_sink_with_heartbeats_and_stops_cleanly(env: Settings) -> None:
    placed, *_ = order_flow()
    produce(env, MD_QUOTES, [(BTC, quote(BTC))])
    produce(env, ORDER_EVENTS, [(placed.account_id, OrderUpdated(order=placed)), (placed.account_id, b"{}")])
    produce(env, POSITIONS, [("acct-1", position_update(BTC, "1", 1))])
    produce(env, RECONCILIATION, [("live-1", reconciled(1, "1.5"))])
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            run_sinks(env, stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        eventually(lambda: [count(env, t) for t in ("ticks", "orders", "positions", "dead_letters", "audit_log",
                                                    "reconciliation_reports")]
                   == [1, 1, 1, 2, 1, 1], what="a row in each table (two dead letters: two consumers refuse it)")
        with redis.Redis.from_url(env.redis) as cache:
            eventually(lambda: len(cache.keys(heartbeat_pattern(env))) == 7, what="7 heartbeats")
            names = sorted(json.loads(cache.get(k) or b"{}")["component"] for k in cache.keys(heartbeat_pattern(env)))
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive() and not failures
    assert names == ["sink:audit", "sink:dead_letters", "sink:instruments", "sink:order_events", "sink:portfolio",
                     "sink:reconciliation", "sink:ticks"]
    # both consumers of orders.events refuse the malformed message, each with its own dead letter
    assert query(env, "SELECT consumer, source_topic FROM dead_letters ORDER BY consumer") == [
        ("sink:audit", topic_name(ORDER_EVENTS, env.topic_prefix)),
        ("sink:order_events", topic_name(ORDER_EVENTS, env.topic_prefix))]


class _BrokenTickSink(TickSink):
    def write(self, cur: psycopg.Cursor[Any], batch: TickBatch) -> int:
        raise RuntimeError("disk on fire")


def test_run_sinks_stops_the_others_and_raises_when_a_sink_dies(env: Settings) -> None:
    produce(env, MD_QUOTES, [(BTC, quote(BTC))])
    stop = threading.Event()
    give_up = threading.Timer(60, stop.set)  # a hang fails the test instead of blocking the run
    give_up.start()
    try:
        with pytest.raises(SinkFailedError, match="sink:ticks") as raised:
            run_sinks(env, stop, sinks=[_BrokenTickSink(env), DeadLetterSink(env)])
    finally:
        give_up.cancel()
    assert not stop.is_set(), "run_sinks returned because of the failure, not the timeout"
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert count(env, "ticks") == 0
    assert query(env, "SELECT count(*) FROM sink_offsets") == [(0,)]
    # The restarted sink picks the batch up again: nothing was lost with the failed transaction.
    with running(TickSink(env)):
        eventually(lambda: count(env, "ticks") == 1, what="the quote after the restart")
