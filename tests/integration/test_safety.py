"""The trading core's safety rules, proven through the running pipeline (real Kafka, Postgres, Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import redis
from confluent_kafka import Consumer, Producer

from core.accounts import Account, Owner
from core.risk import RiskDecision
from core.types import ExecutionMode
from streams.kafka import consumer_config, ensure_topics, headers, producer_config
from streams.records import AuditEvent, FillReported, decode_order_event, encode
from streams.shared_state import latest_quotes_key
from streams.topics import AUDIT, ORDER_DECISIONS, ORDER_EVENTS, topic_name
from tests.kit.builders import intent
from tests.kit.dead_letters import await_dead_letter
from tests.kit.processes import free_port, running
from tests.kit.waiting import eventually
from tradestream.config import Settings, StrategySettings

pytestmark = pytest.mark.integration

LIVE = Account(account_id="live-1", owner=Owner(org_id="acme", user_id="alice"), mode=ExecutionMode.LIVE,
               starting_cash=Decimal(50_000))
POLICY_V1 = """
[[policies]]
policy_id = "acme-live"
version = 1
scope = "org:acme"
max_order_notional = "100000"
max_position_quantity = "1000"

[[policies]]
policy_id = "paper"
version = 1
scope = "default"
max_order_notional = "2500"
max_position_quantity = "1000"
"""


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    policy_file = tmp_path_factory.mktemp("policy") / "policies.toml"
    policy_file.write_text(POLICY_V1)
    # The feed keeps quotes fresh (the gate refuses stale ones); the strategy is given nothing to trade, so
    # the only orders are the tests' own.
    quiet_strategy = StrategySettings(params={"fast": 5, "slow": 20, "quantity": {}})
    live = settings.model_copy(update={"api_port": free_port(), "accounts": [*settings.accounts, LIVE],
                                       "risk_policy_file": policy_file, "strategy": quiet_strategy})
    ensure_topics(live)
    with running(live, "sinks", "worker", "api", "feed", log_dir=tmp_path_factory.mktemp("logs")):
        store = redis.Redis.from_url(live.redis)
        eventually(lambda: store.hlen(latest_quotes_key(live)) >= 6, what="quotes in the market view")
        eventually(lambda: api(live, "GET", "/v1/control/risk-policies").json()["source"] == "file",
                   what="the policy file to be published")
        yield live


def api(settings: Settings, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{settings.api_port}{path}", timeout=15, **kwargs)


def submit(settings: Settings, account_id: str = "paper-main", quantity: str = "1", mode: str | None = None,
           limit_price: str | None = None, instrument_id: str = "equity:AAPL") -> str:
    body: dict[str, Any] = {"account_id": account_id, "instrument_id": instrument_id, "side": "buy",
                            "order_type": "limit" if limit_price else "market", "quantity": quantity}
    if limit_price:
        body["limit_price"] = limit_price
    if mode:
        body["mode"] = mode
    response = api(settings, "POST", "/v1/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code in (201, 202), response.text
    order_id: str = response.json()["order_id"]
    return order_id


def settled(settings: Settings, order_id: str, statuses: tuple[str, ...] = ("filled", "rejected", "cancelled",
                                                                            "open")) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = api(settings, "GET", f"/v1/orders/{order_id}")
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["status"] in statuses else None
    return eventually(probe, timeout=30, what=f"order {order_id} in {statuses}")


def read_topic(settings: Settings, spec: Any) -> list[Any]:
    consumer = Consumer(consumer_config(settings, f"read-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic_name(spec, settings.topic_prefix)])
    values = []
    idle = 0
    while idle < 3:
        message = consumer.poll(1.0)
        if message is None:
            idle += 1
        elif not message.error() and message.value() is not None:
            idle = 0
            values.append(message.value())
    consumer.close()
    return values


def test_every_order_records_requested_mode_effective_mode_and_reason(stack: Settings) -> None:
    filled = settled(stack, submit(stack))
    assert (filled["requested_mode"], filled["effective_mode"], filled["reason_code"]) == \
        ("paper", "paper", "PAPER_SIMULATED")
    denied = settled(stack, submit(stack, quantity="50"))  # 50 x ~230 > the default policy's 2500
    assert (denied["status"], denied["requested_mode"], denied["effective_mode"], denied["reason_code"]) == \
        ("rejected", "paper", None, "MAX_ORDER_NOTIONAL_EXCEEDED")
    assert "limit=2500" in denied["reason_detail"]


def test_live_order_is_blocked_for_each_missing_gate_condition(stack: Settings) -> None:
    first = settled(stack, submit(stack, account_id="live-1", mode="live"))
    assert (first["status"], first["reason_code"], first["effective_mode"]) == ("rejected", "LIVE_NOT_ENABLED", None)
    response = api(stack, "PUT", "/v1/control/live-enabled/alice/ibkr", json={"enabled": True},
                   headers={"X-Actor": "ops-test"})
    assert response.status_code == 200, response.text
    halt = api(stack, "PUT", "/v1/control/kill-switches/user/alice", json={"state": "reduce_only"})
    assert halt.status_code == 200
    second = settled(stack, submit(stack, account_id="live-1", mode="live", quantity="1"))
    # reduce-only stops a new position at the risk gate, before the live gate is even asked
    assert second["reason_code"] == "REDUCE_ONLY"
    api(stack, "PUT", "/v1/control/kill-switches/user/alice", json={"state": "active"})
    third = settled(stack, submit(stack, account_id="live-1", mode="live"))
    # every gate condition holds; no IBKR connector is configured in this worker, so it refuses, never guesses
    assert (third["status"], third["reason_code"], third["effective_mode"]) == \
        ("rejected", "CONNECTOR_UNAVAILABLE", "live")
    paper_on_live = settled(stack, submit(stack, account_id="live-1", mode="paper"))
    assert paper_on_live["reason_code"] == "MODE_ACCOUNT_MISMATCH"


def test_kill_switch_halt_stops_the_next_order_and_cancels_resting_ones(stack: Settings) -> None:
    resting = settled(stack, submit(stack, limit_price="225.00"), ("open",))
    assert resting["status"] == "open"
    response = api(stack, "PUT", "/v1/control/kill-switches/venue/ibkr", json={"state": "halted", "reason": "t"},
                   headers={"X-Actor": "ops-test"})
    assert response.status_code == 200, response.text
    blocked = settled(stack, submit(stack))
    assert (blocked["status"], blocked["reason_code"]) == ("rejected", "KILL_SWITCH_HALTED")
    assert "kill_switch=venue:ibkr" in blocked["reason_detail"]
    cancelled = settled(stack, resting["order_id"], ("cancelled",))
    assert cancelled["reason_code"] == "CANCELLED_BY_KILL_SWITCH"
    other_venue = settled(stack, submit(stack, instrument_id="crypto_spot:BTC-USD", quantity="0.01"))
    assert other_venue["status"] == "filled"
    api(stack, "PUT", "/v1/control/kill-switches/venue/ibkr", json={"state": "active"})
    assert settled(stack, submit(stack))["status"] == "filled"


def test_forged_approval_is_refused_and_audited(stack: Settings) -> None:
    forged_intent = intent(quantity="1", instrument_id="equity:AAPL", acct=stack.accounts[0])
    forged = RiskDecision(intent=forged_intent, approved=True, reason_code="APPROVED",
                          decided_at=datetime.now(UTC), seal="f" * 64)
    producer = Producer(producer_config(stack))
    producer.produce(topic_name(ORDER_DECISIONS, stack.topic_prefix), key=b"paper-main", value=encode(forged),
                     headers=headers(forged_intent.trace_id, "RiskDecision"))
    assert producer.flush(10) == 0

    await_dead_letter(stack, lambda d: d.consumer == "oms" and "UNSEALED_DECISION" in d.error,
                      "the forged decision in the dead-letter topic")
    audits = [AuditEvent.model_validate_json(v) for v in read_topic(stack, AUDIT)]
    assert any(a.action == "forged_decision_refused" and a.subject == forged_intent.order_id for a in audits)
    assert api(stack, "GET", f"/v1/orders/{forged_intent.order_id}").status_code == 404


def btc_position(settings: Settings, trace_id: str) -> Decimal | None:
    """The paper account's BTC position, once the fill with this trace id has reached it."""
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute("SELECT quantity FROM positions WHERE account_id = 'paper-main'"
                           " AND instrument_id = 'crypto_spot:BTC-USD' AND trace_id = %s", (trace_id,)).fetchone()
    return row[0] if row else None


def test_a_duplicate_fill_changes_nothing(stack: Settings) -> None:
    order = settled(stack, submit(stack, quantity="0.02", instrument_id="crypto_spot:BTC-USD"), ("filled",))
    fills = [e for e in map(decode_order_event, read_topic(stack, ORDER_EVENTS))
             if isinstance(e, FillReported) and e.fill.order_id == order["order_id"]]
    assert len(fills) == 1

    before = eventually(lambda: btc_position(stack, order["trace_id"]), what="the position after the fill")
    producer = Producer(producer_config(stack))
    for _ in range(3):
        producer.produce(topic_name(ORDER_EVENTS, stack.topic_prefix), key=b"paper-main", value=encode(fills[0]),
                         headers=headers(order["trace_id"], "FillReported"))
    assert producer.flush(10) == 0
    marker = settled(stack, submit(stack, quantity="0.01", instrument_id="crypto_spot:BTC-USD"), ("filled",))

    # the duplicates were processed before the marker's fill (same partition); only the marker moved the position
    after = eventually(lambda: btc_position(stack, marker["trace_id"]), what="the marker's position")
    assert after == before + Decimal("0.01")


def test_invalid_risk_policy_is_refused_and_the_previous_one_stays(stack: Settings) -> None:
    assert stack.risk_policy_file is not None
    stack.risk_policy_file.write_text(POLICY_V1.replace('max_order_notional = "2500"', 'max_order_notional = "-1"'))

    def rejected() -> bool:
        return any(AuditEvent.model_validate_json(v).action == "risk_policy_rejected"
                   for v in read_topic(stack, AUDIT))

    eventually(rejected, timeout=30, what="the invalid policy to be refused and audited")
    policies = api(stack, "GET", "/v1/control/risk-policies").json()
    assert {p["policy_id"]: p["max_order_notional"] for p in policies["data"]}["paper"] == "2500"
    assert settled(stack, submit(stack, quantity="50"))["reason_code"] == "MAX_ORDER_NOTIONAL_EXCEEDED"
    stack.risk_policy_file.write_text(POLICY_V1.replace('max_order_notional = "2500"', 'max_order_notional = "50000"'))
    eventually(lambda: {p["policy_id"]: p["max_order_notional"] for p in
                        api(stack, "GET", "/v1/control/risk-policies").json()["data"]}["paper"] == "50000",
               what="the corrected policy to be loaded")
    assert settled(stack, submit(stack, quantity="50"))["status"] == "filled"


def test_a_thousand_concurrent_posts_with_one_key_give_one_order(stack: Settings) -> None:
    key = uuid.uuid4().hex
    body = {"account_id": "paper-main", "instrument_id": "equity:AAPL", "side": "buy", "order_type": "market",
            "quantity": "1"}

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{stack.api_port}", timeout=60, limits=limits) as c:
            responses = await asyncio.gather(*(c.post("/v1/orders", json=body, headers={"Idempotency-Key": key})
                                               for _ in range(1000)))
        return [r.status_code for r in responses]

    statuses = asyncio.run(burst())
    assert set(statuses) <= {200, 201, 202}, sorted(set(statuses))
    with psycopg.connect(stack.dsn) as conn:
        eventually(lambda: conn.execute("SELECT count(*) FROM orders WHERE idempotency_key = %s",
                                        (key,)).fetchone() == (1,), what="the order row")
    intents = [v for v in read_topic(stack, ORDER_DECISIONS) if key.encode() in v]
    assert len(intents) == 1


def test_control_changes_are_in_the_audit_trail_with_actor_before_and_after(stack: Settings) -> None:
    api(stack, "PUT", "/v1/control/kill-switches/strategy/audit-probe", json={"state": "halted"},
        headers={"X-Actor": "auditor"})
    api(stack, "PUT", "/v1/control/kill-switches/strategy/audit-probe", json={"state": "active"},
        headers={"X-Actor": "auditor"})

    def entries() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = api(stack, "GET", "/v1/audit", params={"subject": "strategy:audit-probe"}
                                          ).json()["data"]
        return found if len(found) == 2 else None

    newest, oldest = eventually(entries, what="two audit entries for the switch")
    assert (oldest["actor"], oldest["before"], oldest["after"]["state"]) == ("auditor", None, "halted")
    assert (newest["before"]["state"], newest["after"]["state"]) == ("halted", "active")
    assert newest["seq"] > oldest["seq"]


def test_amend_is_cancel_then_replace_through_the_risk_gate(stack: Settings) -> None:
    original = settled(stack, submit(stack, limit_price="225.00", quantity="3"), ("open",))
    response = api(stack, "POST", f"/v1/orders/{original['order_id']}/amend", json={"limit_price": "226.00"},
                   headers={"Idempotency-Key": uuid.uuid4().hex, "X-Actor": "trader"})
    assert response.status_code in (201, 202), response.text
    replacement = settled(stack, response.json()["order_id"], ("open",))
    assert (replacement["limit_price"], replacement["quantity"]) == ("226.00", "3")
    cancelled = settled(stack, original["order_id"], ("cancelled",))
    assert cancelled["reason_code"] == "CANCELLED_BY_USER" and "amended" in cancelled["reason_detail"]
    fat_finger = api(stack, "POST", f"/v1/orders/{replacement['order_id']}/amend", json={"limit_price": "100.00"},
                     headers={"Idempotency-Key": uuid.uuid4().hex})
    denied = settled(stack, fat_finger.json()["order_id"], ("rejected",))
    assert denied["reason_code"] == "PRICE_OUTSIDE_BAND"
    assert api(stack, "POST", f"/v1/orders/{original['order_id']}/cancel").status_code == 409
