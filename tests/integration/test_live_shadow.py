"""Live and shadow accounts through the running pipeline against the Coinbase stand-in (real Kafka, Postgres,
Redis): paper and shadow never write to the venue, one live order is one write, a live fill reaches the ledger
once, reconciliation reports, and no credential reaches a log."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
import redis
from pydantic import SecretStr

from connectors.coinbase import CoinbaseConfig, CoinbaseConnector
from core.accounts import Account, Owner
from core.control import KillSwitch, KillSwitchScope, LiveEnabled, TradingState
from core.reconcile import ReconciliationReport
from core.types import ExecutionMode
from core.venue import Balance, VenuePosition
from streams.control import ControlPlane
from streams.kafka import ensure_topics
from streams.records import FillReported, OrderUpdated, decode_order_event
from streams.shared_state import latest_quotes_key
from streams.topics import ORDER_EVENTS, RECONCILIATION
from tests.integration.test_safety import api, read_topic, settled, submit
from tests.kit.processes import free_port, running, settings_env
from tests.kit.venues import Served, served
from tests.kit.waiting import eventually
from tests.standins.base import Fault
from tests.standins.coinbase import CoinbaseStandIn, GeneratedKey, generate_key
from tradestream.config import CoinbaseSettings, ConnectorSettings, Settings

pytestmark = pytest.mark.integration
T = TypeVar("T")

BTC = "crypto_spot:BTC-USD"
OWNER = Owner(org_id="acme", user_id="alice")
SHADOW = Account(account_id="shadow-1", owner=OWNER, mode=ExecutionMode.SHADOW, starting_cash=Decimal(0))
LIVE = Account(account_id="live-1", owner=OWNER, mode=ExecutionMode.LIVE, starting_cash=Decimal(50_000))
POLICIES = """
[[policies]]
policy_id = "acme"
version = 1
scope = "org:acme"
max_order_notional = "200000"
max_position_quantity = "100"
max_quote_age_s = "3600"

[[policies]]
policy_id = "paper"
version = 1
scope = "default"
max_order_notional = "200000"
max_position_quantity = "100"
max_quote_age_s = "3600"
"""


@dataclass
class Stack:
    settings: Settings
    venue: Served[CoinbaseStandIn]
    key: GeneratedKey
    secrets_file: Path
    logs: Path


def coinbase_settings(venue: CoinbaseStandIn, secrets_file: Path) -> CoinbaseSettings:
    return CoinbaseSettings(rest_url=venue.base_url, ws_market_url=venue.ws_url, ws_user_url=venue.ws_user_url,
                            accounts=(SHADOW.account_id, LIVE.account_id), instruments=(BTC,),
                            secrets_file=secrets_file, timeout_s=2.0, retry_attempts=2, retry_base_s=0.01,
                            retry_cap_s=0.05)


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    key = generate_key("ES256")
    files = tmp_path_factory.mktemp("files")
    secrets_file = files / "coinbase.json"
    secrets_file.write_text(json.dumps({"name": key.key_name, "privateKey": key.secret}))
    secrets_file.chmod(0o600)
    policy_file = files / "policies.toml"
    policy_file.write_text(POLICIES)
    logs = tmp_path_factory.mktemp("logs")
    # Answers slower than the client's 2 s timeout, when SLOW is injected.
    with served(lambda: CoinbaseStandIn({key.key_name: key.public_key}, slow_delay_s=3.0)) as venue:
        configured = settings.model_copy(update={
            "api_port": free_port(), "accounts": [*settings.accounts, SHADOW, LIVE], "risk_policy_file": policy_file,
            "pnl_interval_s": 0.5,
            "connectors": ConnectorSettings(coinbase=coinbase_settings(venue.standin, secrets_file),
                                            poll_interval_s=0.3)})
        ensure_topics(configured)
        with running(configured, "sinks", "worker", "api", log_dir=logs):
            store = redis.Redis.from_url(configured.redis)
            eventually(lambda: store.hexists(latest_quotes_key(configured), BTC), what="the venue's BTC quote")
            eventually(lambda: api(configured, "GET", "/v1/control/risk-policies").json()["source"] == "file",
                       what="the policy file to be published")
            yield Stack(configured, venue, key, secrets_file, logs)


def position(settings: Settings, account_id: str, instrument_id: str = BTC) -> Decimal | None:
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute("SELECT quantity FROM positions WHERE account_id = %s AND instrument_id = %s",
                           (account_id, instrument_id)).fetchone()
    return row[0] if row else None


def latest_cash(settings: Settings, account_id: str) -> Decimal | None:
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute("SELECT cash FROM pnl_snapshots WHERE account_id = %s ORDER BY ts DESC LIMIT 1",
                           (account_id,)).fetchone()
    return row[0] if row else None


def read_venue(stack: Stack, read: Callable[[CoinbaseConnector], Awaitable[T]]) -> T:
    """The stand-in account as its own connector reads it."""
    async def run() -> T:
        connector = CoinbaseConnector(CoinbaseConfig(rest_url=stack.venue.standin.base_url,
                                                     key_name=stack.key.key_name,
                                                     private_key=SecretStr(stack.key.secret)))
        try:
            return await read(connector)
        finally:
            await connector.close()

    return stack.venue.run(run())


async def balances_and_positions(connector: CoinbaseConnector) -> tuple[list[Balance], list[VenuePosition]]:
    return await connector.balances(), await connector.positions()


def status_of(output: str, account_id: str) -> str:
    row = next(line for line in output.splitlines() if f" {account_id} " in line)
    return next(status for status in ("MISMATCHED", "MATCHED", "UNKNOWN") if status in row)


def writes(stack: Stack) -> int:
    return stack.venue.call(lambda standin: standin.write_calls)


def cli(stack: Stack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "tradestream", *args], capture_output=True, text=True, timeout=120,
                            env={**settings_env(stack.settings), "COLUMNS": "250", **(env or {})})
    (stack.logs / f"cli-{uuid.uuid4().hex[:8]}.log").write_text(result.stdout + result.stderr)
    return result


def order_events(settings: Settings, order_id: str) -> list[OrderUpdated | FillReported]:
    events = [decode_order_event(v) for v in read_topic(settings, ORDER_EVENTS)]
    return [e for e in events if (e.order.order_id if isinstance(e, OrderUpdated) else e.fill.order_id) == order_id]


def test_shadow_ledger_starts_from_the_venue_account(stack: Stack) -> None:
    balances, positions = read_venue(stack, balances_and_positions)
    expected_cash = next(b.total for b in balances if b.currency == "USD")
    expected = {p.instrument_id: p.quantity for p in positions}
    assert expected == {BTC: Decimal("1.5")}  # the stand-in's account, as its connector reads it

    assert eventually(lambda: position(stack.settings, SHADOW.account_id), what="the seeded position") == expected[BTC]
    assert eventually(lambda: latest_cash(stack.settings, SHADOW.account_id), what="the seeded cash") == expected_cash
    trail = api(stack.settings, "GET", "/v1/audit", params={"subject": "account:shadow-1"}).json()["data"]
    (seed,) = [e for e in trail if e["actor"] == "shadow-seed"]  # audited, once
    assert Decimal(seed["after"]["opening_ledger"]["cash"]) == expected_cash


def test_reconcile_matches_the_seeded_shadow_and_shows_the_live_differences(stack: Stack) -> None:
    both = cli(stack, "reconcile")
    assert both.returncode == 1, both.stdout + both.stderr  # live-1 is mismatched
    assert (status_of(both.stdout, "shadow-1"), status_of(both.stdout, "live-1")) == ("MATCHED", "MISMATCHED")
    assert "position_mismatch" in both.stdout and "cash_mismatch" in both.stdout
    shadow = cli(stack, "reconcile", "--account", "shadow-1")
    assert shadow.returncode == 0, shadow.stdout + shadow.stderr
    assert writes(stack) == 0  # reconciliation never writes
    published = [ReconciliationReport.model_validate_json(v) for v in read_topic(stack.settings, RECONCILIATION)]
    assert [(r.account_id, r.status.value) for r in published] == \
        [("shadow-1", "matched"), ("live-1", "mismatched"), ("shadow-1", "matched")]


def test_reconcile_is_unknown_when_the_venue_fails_the_read(stack: Stack) -> None:
    # A second stand-in that fails every read; only this command talks to it.
    with served(lambda: CoinbaseStandIn({stack.key.key_name: stack.key.public_key})) as failing:
        failing.call(lambda standin: standin.inject(Fault.SERVER_ERROR, 1000))
        connectors = stack.settings.connectors.model_copy(
            update={"coinbase": coinbase_settings(failing.standin, stack.secrets_file)})
        result = cli(stack, "reconcile", "--account", "shadow-1",
                     env={"TRADESTREAM_CONNECTORS": connectors.model_dump_json()})
        assert failing.call(lambda standin: standin.write_calls) == 0
    assert result.returncode == 3, result.stdout + result.stderr
    assert status_of(result.stdout, "shadow-1") == "UNKNOWN"
    assert result.stdout.count("read_failed") == 3  # positions, balances, open orders: none guessed


def test_paper_and_shadow_orders_never_write_to_the_venue(stack: Stack) -> None:
    paper = settled(stack.settings, submit(stack.settings, quantity="0.01", instrument_id=BTC), ("filled",))
    assert paper["effective_mode"] == "paper"
    shadow = settled(stack.settings, submit(stack.settings, account_id=SHADOW.account_id, mode="shadow",
                                            quantity="0.7", instrument_id=BTC), ("filled",))
    assert (shadow["effective_mode"], shadow["reason_code"]) == ("shadow", "SHADOW_WRITE_SIMULATED")
    # Walked the venue's live book: 0.5 at the best ask, the rest one tick up.
    assert len(shadow["venue_response"]["venue_trade_ids"]) == 2
    resting = settled(stack.settings, submit(stack.settings, account_id=SHADOW.account_id, mode="shadow",
                                             quantity="0.1", instrument_id=BTC, limit_price="91000.00"), ("open",))
    assert api(stack.settings, "POST", f"/v1/orders/{resting['order_id']}/cancel").status_code == 202
    settled(stack.settings, resting["order_id"], ("cancelled",))
    assert eventually(lambda: position(stack.settings, SHADOW.account_id) == Decimal("2.2"),
                      what="the shadow position after its simulated fill")
    assert writes(stack) == 0
    assert stack.venue.call(lambda standin: standin.order_count()) == 0


def test_a_live_order_whose_gate_fails_sends_nothing(stack: Stack) -> None:
    denied = settled(stack.settings, submit(stack.settings, account_id=LIVE.account_id, mode="live",
                                            quantity="0.01", instrument_id=BTC, limit_price="94000.00"))
    assert (denied["status"], denied["reason_code"]) == ("rejected", "LIVE_NOT_ENABLED")
    assert writes(stack) == 0


def enable_live(settings: Settings) -> None:
    plane = ControlPlane(settings)
    now = datetime.now(UTC)
    plane.set_live_enabled(LiveEnabled(user_id=OWNER.user_id, connector="coinbase", enabled=True, actor="test",
                                       at=now))
    plane.set_kill_switch(KillSwitch(scope=KillSwitchScope.GLOBAL, state=TradingState.ACTIVE, actor="test", at=now))
    plane.close()


def test_one_live_order_that_passed_the_gate_is_one_write_and_its_fill_reaches_the_ledger_once(stack: Stack) -> None:
    enable_live(stack.settings)
    before = writes(stack)
    live = settled(stack.settings, submit(stack.settings, account_id=LIVE.account_id, mode="live",
                                          quantity="0.01", instrument_id=BTC, limit_price="94000.00"), ("open",))
    assert (live["effective_mode"], live["reason_code"]) == ("live", "LIVE_GATE_PASSED")
    assert writes(stack) == before + 1
    venue_order_id = live["venue_response"]["venue_order_id"]

    def fill_twice(standin: CoinbaseStandIn) -> None:
        standin.inject(Fault.DUPLICATE_FILL)
        standin.fill_resting_order(venue_order_id, Decimal("0.01"), Decimal("94000.00"))

    stack.venue.call(fill_twice)
    filled = settled(stack.settings, live["order_id"], ("filled",))
    assert (Decimal(str(filled["filled_quantity"])), Decimal(str(filled["average_fill_price"]))) == \
        (Decimal("0.01"), Decimal("94000.00"))
    assert eventually(lambda: position(stack.settings, LIVE.account_id), what="the live position") == Decimal("0.01")

    # The poller loses its cursor (as after a crash before it was saved): every fill is read and reported again;
    # the ledger counts it once.
    redis.Redis.from_url(stack.settings.redis).delete(f"{stack.settings.topic_prefix}venues:cursor:coinbase")
    reported = eventually(lambda: [e.fill for e in order_events(stack.settings, live["order_id"])
                                   if isinstance(e, FillReported)][1:], timeout=30, what="the fill reported again")
    assert {f.venue_trade_id for f in reported} == {filled_trade_id(stack, live["order_id"])}
    eventually(lambda: any("fill.duplicate_ignored" in line and reported[0].venue_trade_id in line
                           for line in (stack.logs / "worker.log").read_text().splitlines()),
               what="the portfolio to ignore the repeated fill")
    assert position(stack.settings, LIVE.account_id) == Decimal("0.01")
    assert api(stack.settings, "GET", f"/v1/orders/{live['order_id']}").json()["fills"]["count"] == 1
    assert writes(stack) == before + 1


def filled_trade_id(stack: Stack, order_id: str) -> str:
    with psycopg.connect(stack.settings.dsn) as conn:
        rows = conn.execute("SELECT venue_trade_id FROM fills WHERE order_id = %s", (order_id,)).fetchall()
    assert len(rows) == 1, rows
    return str(rows[0][0])


def test_a_live_cancel_is_sent_to_the_venue(stack: Stack) -> None:
    resting = settled(stack.settings, submit(stack.settings, account_id=LIVE.account_id, mode="live",
                                             quantity="0.01", instrument_id=BTC, limit_price="93000.00"), ("open",))
    before = writes(stack)
    assert api(stack.settings, "POST", f"/v1/orders/{resting['order_id']}/cancel").status_code == 202
    cancelled = settled(stack.settings, resting["order_id"], ("cancelled",))
    assert cancelled["reason_code"] == "CANCELLED_BY_USER"
    assert writes(stack) == before + 1
    open_at_venue = read_venue(stack, lambda connector: connector.open_orders())
    assert resting["client_order_id"] not in {o.client_order_id for o in open_at_venue}


def test_a_fill_made_while_the_venue_cannot_be_read_is_recovered_on_the_next_poll(stack: Stack) -> None:
    resting = settled(stack.settings, submit(stack.settings, account_id=LIVE.account_id, mode="live",
                                             quantity="0.02", instrument_id=BTC, limit_price="93500.00"), ("open",))
    held = position(stack.settings, LIVE.account_id)
    assert held is not None

    def fill_during_outage(standin: CoinbaseStandIn) -> None:
        standin.inject(Fault.SERVER_ERROR, 6)  # the next polls fail, each after its retry
        standin.fill_resting_order(resting["venue_response"]["venue_order_id"], Decimal("0.02"), Decimal("93500.00"))

    stack.venue.call(fill_during_outage)
    assert eventually(lambda: position(stack.settings, LIVE.account_id) == held + Decimal("0.02"), timeout=30,
                      what="the fill made during the outage in the ledger")
    assert settled(stack.settings, resting["order_id"], ("filled",))["fills"]["count"] == 1
    assert '"live_fill.poll_failed"' in (stack.logs / "worker.log").read_text()


def test_a_live_order_whose_answer_is_lost_stays_pending_and_is_never_sent_twice(stack: Stack) -> None:
    before = (writes(stack), stack.venue.call(lambda standin: standin.order_count()))
    # The placement and the look-ups that follow it time out: the outcome is unknown.
    stack.venue.call(lambda standin: standin.inject(Fault.SLOW, 8))
    order_id = submit(stack.settings, account_id=LIVE.account_id, mode="live", quantity="0.01", instrument_id=BTC,
                      limit_price="92000.00")
    resolved = settled(stack.settings, order_id, ("open",))
    assert resolved["reason_code"] == "VENUE_OUTCOME_RESOLVED"
    states = [(e.order.status.value, e.order.reason_code) for e in order_events(stack.settings, order_id)
              if isinstance(e, OrderUpdated)]
    assert states[0] == ("pending_submit", "VENUE_OUTCOME_UNKNOWN")
    assert "rejected" not in {status for status, _ in states}
    assert (writes(stack), stack.venue.call(lambda standin: standin.order_count())) == (before[0] + 1, before[1] + 1)


def test_no_credential_reaches_any_log(stack: Stack) -> None:
    tokens = stack.venue.call(lambda standin: list(standin.tokens))
    assert tokens
    secrets = {*tokens, *(t.rsplit(".", 1)[-1] for t in tokens)}
    secrets |= {line for line in stack.key.secret.splitlines() if len(line) > 20 and "PRIVATE KEY" not in line}
    logs = {path.name: path.read_text() for path in stack.logs.iterdir()}
    assert {"worker.log", "sinks.log", "api.log"} <= set(logs)
    leaked = {name for name, text in logs.items() for secret in secrets if secret in text}
    assert not leaked, f"credential material in {sorted(leaked)}"
