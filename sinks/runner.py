"""Run every sink, one thread each (confluent-kafka and psycopg release the GIL while they wait)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from sinks.audit import AuditSink
from sinks.base import BatchSink
from sinks.dead_letters import DeadLetterSink
from sinks.instruments import InstrumentSink
from sinks.orders import OrderEventSink
from sinks.portfolio import PortfolioSink
from sinks.reconciliation import ReconciliationSink
from sinks.schema import run_maintenance
from sinks.ticks import TickSink
from tradestream.config import Settings
from tradestream.logging import get_logger

log = get_logger(__name__)

MAINTENANCE_INTERVAL_S = 3600.0
WAIT_STEP_S = 0.5


class SinkFailedError(RuntimeError):
    """A sink thread died; the others were stopped. The first failure is the __cause__."""


def default_sinks(settings: Settings) -> list[BatchSink[Any]]:
    return [TickSink(settings), OrderEventSink(settings), PortfolioSink(settings), DeadLetterSink(settings),
            AuditSink(settings), ReconciliationSink(settings), InstrumentSink(settings)]


def run_sinks(settings: Settings, stop: threading.Event, sinks: Sequence[BatchSink[Any]] | None = None) -> None:
    """Run the sinks until `stop` is set or one of them dies; then stop them all, each with a final commit.

    A sink that dies is logged with its traceback and re-raised here (as SinkFailedError) once the others
    have stopped, so the process exits non-zero and its supervisor restarts it; the restart resumes from the
    offsets stored in Postgres.
    """
    sinks = list(sinks) if sinks is not None else default_sinks(settings)
    halt = threading.Event()
    failures: list[tuple[str, BaseException]] = []

    def guarded(sink: BatchSink[Any]) -> None:
        try:
            sink.run(halt)
        except BaseException as exc:
            log.exception("sink_died", consumer=sink.consumer_name)
            failures.append((sink.consumer_name, exc))
            halt.set()

    threads = [threading.Thread(target=guarded, args=(sink,), name=sink.consumer_name, daemon=True)
               for sink in sinks]
    for thread in threads:
        thread.start()
    next_maintenance = 0.0
    while any(t.is_alive() for t in threads):
        if stop.is_set():
            halt.set()
        if not halt.is_set() and time.monotonic() >= next_maintenance:
            _maintain(settings)
            next_maintenance = time.monotonic() + MAINTENANCE_INTERVAL_S
        for thread in threads:
            thread.join(timeout=WAIT_STEP_S / max(len(threads), 1))
    if failures:
        names = ", ".join(name for name, _ in failures)
        raise SinkFailedError(f"sink(s) died: {names}") from failures[0][1]
    log.info("sinks_stopped")


def _maintain(settings: Settings) -> None:
    try:
        run_maintenance(settings.dsn)
    except Exception:  # partitions are premade days ahead and a default partition exists: retry next round
        log.exception("partition_maintenance_failed")
