"""The stream worker: one Faust app carrying the order-flow agents, their tables, the instrument registry, the venue
connectors' loops and health, and a heartbeat."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime

import faust
import mode.loop

from agents import connector_health, instruments, oms, policy_watch, portfolio, risk_gate, strategy_runner, venues
from agents.connector_health import ConnectorIssues
from agents.execution import ExecutionRouter
from agents.kit import AgentKit
from agents.oms import OpenOrders
from connectors.registry import build_registry, require_listed
from connectors.simulated.market import default_catalog
from core.fill_model import FillModel
from core.ledger import Ledger
from core.orders import Order
from streams.kafka import ensure_topics
from streams.shared_state import HEARTBEAT_TTL_S, heartbeat_key
from tradestream.config import Settings
from tradestream.logging import stdlib_logging_config

GIL_SWITCH_INTERVAL_S = 0.0005


def build_worker(settings: Settings) -> faust.App:
    kit = AgentKit(settings)
    registry = build_registry(settings.connectors, kit.catalog)  # a bad connector stops start-up, named
    ledgers = kit.table("ledgers", Ledger)
    orders = kit.table("orders", Order)
    open_orders = kit.table("open_orders", OpenOrders)
    seen_fills = kit.table("seen_fills", None)
    strategy_runner.register(kit)
    risk_gate.register(kit, ledgers)
    oms.register(kit, orders, open_orders, ExecutionRouter(kit, FillModel(), registry))
    portfolio.register(kit, ledgers, seen_fills)
    issues = ConnectorIssues()
    instruments.register(kit, registry.bindings, issues)
    venues.register(kit, registry, ledgers, issues)
    connector_health.register(kit, registry, issues)
    if settings.risk_policy_file is not None:
        policy_watch.register(kit, settings.risk_policy_file)
    beat_key = heartbeat_key(settings, "worker:stream")

    @kit.timer(2.0, "heartbeat")
    async def heartbeat() -> None:
        payload = {"pid": os.getpid(), "at": datetime.now(UTC).isoformat(),
                   "assigned_partitions": len(kit.app.assignor.assigned_actives()),
                   "event_loop": type(asyncio.get_running_loop()).__module__}
        await kit.redis.set(beat_key, json.dumps(payload), ex=HEARTBEAT_TTL_S)

    return kit.app


async def _require_listed(settings: Settings) -> None:
    """The configured venue instruments against the catalog and the venues' listings, with connectors of its
    own: the worker's are used on Faust's event loop only."""
    registry = build_registry(settings.connectors, default_catalog())
    try:
        await require_listed(registry, default_catalog(), instruments.BASE_SOURCE)
    finally:
        await registry.close()


def run_worker(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM. Faust's worker handles signals and a clean shutdown."""
    if settings.risk_policy_file is not None:
        policy_watch.load_policy_file(settings.risk_policy_file)  # an invalid file stops start-up, named
    asyncio.run(_require_listed(settings))  # before touching Kafka: an instrument nobody lists stops start-up
    # Faust's Kafka consumer runs in its own thread: each time it or the event loop returns from a socket call it
    # waits for the GIL, up to the switch interval (5 ms by default) while the other runs Python. A shorter one
    # took about 0.6 ms off the intent-to-fill p99 at 100 orders/s (bench/order_latency.py).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    # uvloop for the worker's loop and the consumer thread's: at 100 orders/s it took the worker's CPU per order
    # from about 7 to 4 ms and the intent-to-fill p99 from 9-11 to 8-9 ms.
    mode.loop.use("uvloop")
    app = build_worker(settings)  # before touching Kafka: a bad connector section stops start-up, named
    ensure_topics(settings)  # idempotent; Faust would otherwise wait on topics that do not exist
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), redirect_stdouts=False, quiet=True,
                          logging_config=stdlib_logging_config(settings.log_level))
    # Faust's terminal spinner turns the root logger to DEBUG, which makes every send format a debug record.
    worker.spinner = None
    worker.execute_from_commandline()
