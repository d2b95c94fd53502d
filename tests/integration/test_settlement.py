"""Settlement of event contracts through the running platform (worker, sinks and API against the real Kafka,
Postgres and Redis) with the Kalshi stand-in: a paper account buys YES contracts, the venue finalizes the market,
the registry learns its result and the portfolio closes the position at 1 (`yes`) or 0 (`no`), once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer

from core.ledger import Settlement
from streams.kafka import ensure_topics, headers, producer_config
from streams.records import encode
from streams.topics import SETTLEMENTS, topic_name
from tests.integration.test_registry import instrument
from tests.integration.test_safety import api, settled, submit
from tests.kit.dead_letters import await_dead_letter
from tests.kit.processes import free_port, running
from tests.kit.venues import Served, served
from tests.kit.waiting import eventually
from tests.standins.kalshi import KalshiStandIn, generate_key
from tradestream.config import ConnectorSettings, KalshiSettings, Settings, StrategySettings

pytestmark = pytest.mark.integration

KEY_ID = "0b6f3e2a-5d1c-4f7e-8a9b-2c3d4e5f6a7b"
JAN, MAR = "KXFEDRATE-26JAN-T4.25", "KXFEDRATE-26MAR-T4.00"
ONCE, MARKER = "KXHIGHNY-26JAN05-T60", "KXHIGHNY-26JAN05-T65"
TICKERS = (JAN, MAR, ONCE, MARKER)
"""Active markets of the stand-in's exchange, one per use: YES asks of 7, 5, 30 and 4.25 contracts."""
ACCOUNT = "paper-main"
QUANTITY = Decimal(5)


@dataclass
class Stack:
    settings: Settings
    venue: Served[KalshiStandIn]


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    pem, public = generate_key()
    key_file = tmp_path_factory.mktemp("keys") / "kalshi.pem"
    key_file.write_text(pem)
    key_file.chmod(0o600)
    with served(lambda: KalshiStandIn({KEY_ID: public})) as venue, pytest.MonkeyPatch.context() as env:
        venue.call(reopen)
        env.setenv("KALSHI_KEY_ID", KEY_ID)  # the processes inherit it; the key itself comes from the file
        kalshi = KalshiSettings(rest_url=venue.standin.base_url, ws_url=venue.standin.ws_url, secrets_file=key_file,
                                instruments=tuple(f"event_contract:{t}" for t in TICKERS),
                                timeout_s=2.0, retry_attempts=2, retry_base_s=0.01, retry_cap_s=0.05)
        configured = settings.model_copy(update={
            "api_port": free_port(), "pnl_interval_s": 0.5,
            # The strategy is given nothing to trade: the only orders are the tests' own.
            "strategy": StrategySettings(params={"fast": 5, "slow": 20, "quantity": {}}),
            "connectors": ConnectorSettings(kalshi=kalshi, poll_interval_s=0.3, instruments_refresh_s=1.0,
                                            health_interval_s=0.5)})
        ensure_topics(configured)
        with running(configured, "sinks", "worker", "api", log_dir=tmp_path_factory.mktemp("logs")):
            eventually(lambda: (instrument(configured, f"event_contract:{JAN}") or {}).get("listed_by") == ["kalshi"],
                       timeout=60, what="the venue's markets in the registry")
            yield Stack(configured, venue)


def reopen(standin: KalshiStandIn) -> None:
    for ticker in TICKERS:
        standin.set_close_time(ticker, datetime.now(UTC) + timedelta(days=30))


def position(settings: Settings, ticker: str) -> dict[str, Any] | None:
    rows = api(settings, "GET", "/v1/positions", params={"account_id": ACCOUNT}).json()["data"]
    return next((row for row in rows if row["instrument_id"] == f"event_contract:{ticker}"), None)


def cash_after(settings: Settings, after: str) -> Decimal | None:
    """The account's cash in its first PnL snapshot taken after `after` (an ISO timestamp)."""
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute("SELECT cash FROM pnl_snapshots WHERE account_id = %s AND ts > %s ORDER BY ts LIMIT 1",
                           (ACCOUNT, datetime.fromisoformat(after))).fetchone()
    return row[0] if row else None


def position_of(settings: Settings, ticker: str, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    held = position(settings, ticker)
    return held if held is not None and accept(held) else None


def settle_and_watch(stack: Stack, ticker: str, result: str,
                     quantity: Decimal = QUANTITY) -> tuple[dict[str, Any], Decimal, Decimal]:
    """Buy YES contracts, finalize the market with `result`; the bought, the cash before and after settlement."""
    order = settled(stack.settings, submit(stack.settings, account_id=ACCOUNT, quantity=str(quantity),
                                           instrument_id=f"event_contract:{ticker}"))
    assert order["status"] == "filled", (order["reason_code"], order["reason_detail"])
    held = eventually(lambda: position_of(stack.settings, ticker, lambda p: p["trace_id"] == order["trace_id"]),
                      what="the bought position")
    before = eventually(lambda: cash_after(stack.settings, held["updated_at"]), what="the cash after the fill")

    stack.venue.call(lambda standin: standin.settle_market(ticker, result))

    closed = eventually(lambda: position_of(stack.settings, ticker, lambda p: Decimal(p["quantity"]) == 0),
                        what="the position closed by the settlement")
    after = eventually(lambda: cash_after(stack.settings, closed["updated_at"]), what="the cash after settlement")
    assert Decimal(held["quantity"]) == quantity
    return held, before, after


def test_a_yes_result_closes_the_position_and_credits_one_per_contract(stack: Stack) -> None:
    held, before, after = settle_and_watch(stack, JAN, "yes")

    assert after - before == QUANTITY
    market = instrument(stack.settings, f"event_contract:{JAN}")
    assert market is not None
    assert (market["status"], market["tradeable"], Decimal(market["settlement_price"])) == ("finalized", False,
                                                                                            Decimal(1))
    closed = position(stack.settings, JAN)
    assert closed is not None
    expected_pnl = QUANTITY * (1 - Decimal(held["average_price"]))
    assert Decimal(closed["realized_pnl"]) == Decimal(held["realized_pnl"]) + expected_pnl
    (audited,) = settlement_audits(stack.settings, JAN)
    assert (Decimal(audited["before"]["position"]["quantity"]), audited["after"]["settlement_price"]) == (
        QUANTITY, "1")
    assert audited["trace_id"] == closed["trace_id"]


def test_a_no_result_closes_the_position_and_credits_nothing(stack: Stack) -> None:
    held, before, after = settle_and_watch(stack, MAR, "no")

    assert after == before
    market = instrument(stack.settings, f"event_contract:{MAR}")
    assert market is not None and Decimal(market["settlement_price"]) == 0
    closed = position(stack.settings, MAR)
    assert closed is not None
    assert Decimal(closed["realized_pnl"]) == Decimal(held["realized_pnl"]) - QUANTITY * Decimal(held["average_price"])


def settlement_audits(settings: Settings, ticker: str) -> list[dict[str, Any]]:
    entries = api(settings, "GET", "/v1/audit", params={"subject": f"account:{ACCOUNT}", "limit": 1000}).json()["data"]
    return [e for e in entries if e["action"] == "settlement"
            and e["after"]["instrument_id"] == f"event_contract:{ticker}"]


def test_a_settlement_sent_again_changes_nothing(stack: Stack) -> None:
    _, before, after = settle_and_watch(stack, ONCE, "yes")
    closed = position(stack.settings, ONCE)
    producer = Producer(producer_config(stack.settings))
    duplicate = Settlement(account_id=ACCOUNT, instrument_id=f"event_contract:{ONCE}", quantity=QUANTITY,
                           settlement_price=Decimal(1))
    for _ in range(3):
        producer.produce(topic_name(SETTLEMENTS, stack.settings.topic_prefix), key=ACCOUNT.encode(),
                         value=encode(duplicate), headers=headers(uuid.uuid4().hex, "Settlement"))
    assert producer.flush(10) == 0

    # A later settlement of the same account (same partition) is applied after the duplicates were handled.
    settle_and_watch(stack, MARKER, "no", Decimal(4))

    assert after - before == QUANTITY
    assert position(stack.settings, ONCE) == closed
    assert len(settlement_audits(stack.settings, ONCE)) == 1


def test_a_settlement_the_catalog_does_not_confirm_is_dead_lettered_and_moves_no_cash(stack: Stack) -> None:
    # MARKER settled "no" above; a message claiming it paid 1 is a forgery, whoever wrote it to the topic.
    start = datetime.now(UTC).isoformat()
    cash_before = eventually(lambda: cash_after(stack.settings, start), what="the cash")
    forged = Settlement(account_id=ACCOUNT, instrument_id=f"event_contract:{MARKER}", quantity=Decimal(4),
                        settlement_price=Decimal(1))
    producer = Producer(producer_config(stack.settings))
    producer.produce(topic_name(SETTLEMENTS, stack.settings.topic_prefix), key=ACCOUNT.encode(),
                     value=encode(forged), headers=headers(uuid.uuid4().hex, "Settlement"))
    assert producer.flush(10) == 0

    letter = await_dead_letter(stack.settings, lambda d: d.consumer == "settlements",
                               "the forged settlement dead-lettered")
    assert "is not what the instrument catalog says (0)" in letter.error
    refused_at = datetime.now(UTC).isoformat()
    assert eventually(lambda: cash_after(stack.settings, refused_at), what="the cash after") == cash_before
    assert len(settlement_audits(stack.settings, MARKER)) == 1
