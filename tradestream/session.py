"""`tradestream run`: start the pipeline's processes, supervise them, stop them, and summarise the session."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import psycopg
from confluent_kafka import Consumer, TopicPartition
from rich.console import Console
from rich.table import Table

from core.audit import AuditAction, AuditEvent
from sinks.schema import apply_schema
from streams.control import ControlPlane
from streams.kafka import consumer_config, ensure_topics
from streams.topics import MD_QUOTES, ORDER_INTENTS, TopicSpec, topic_name
from tradestream.config import Settings

# Started in this order; stopped feed first so the rest of the pipeline can drain what is in flight.
COMPONENTS = ("sinks", "worker", "api", "feed")
DRAIN_TIMEOUT_S = 20.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: TextIO


class Session:
    def __init__(self, settings: Settings, console: Console) -> None:
        self.settings = settings
        self.console = console
        self.children: dict[str, Child] = {}
        self.started_at = datetime.now(UTC)
        self.start_offsets: dict[str, int] = {}

    def prepare(self) -> None:
        created = ensure_topics(self.settings)
        info = apply_schema(self.settings.dsn)
        plane = ControlPlane(self.settings)
        plane.audit(AuditEvent(action=AuditAction.CONFIG_CHANGED, actor=f"session:{getpass.getuser()}",
                               subject="settings", at=self.started_at,
                               after=self.settings.model_dump(mode="json")))  # secrets dump as '**********'
        plane.close()
        self.console.print(f"topics ready ({len(created)} created); database schema ready "
                           f"({info.path.value} {info.extension_version})")
        self.start_offsets = {spec.name: self._end_offset(spec) for spec in (MD_QUOTES, ORDER_INTENTS)}

    def start(self) -> None:
        logs = self.settings.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in COMPONENTS:
            log_path = logs / f"{name}.log"
            log_file = log_path.open("a")
            process = subprocess.Popen([sys.executable, "-m", "tradestream", name], stdout=log_file,
                                       stderr=subprocess.STDOUT, env=os.environ.copy(), start_new_session=True)
            self.children[name] = Child(name, process, log_path, log_file)
        self.console.print(f"API     http://{self.settings.api_host}:{self.settings.api_port}  "
                           f"(docs at /docs, health at /health)")
        self.console.print(f"logs    {logs}/{{{','.join(COMPONENTS)}}}.log")

    def dead_child(self) -> Child | None:
        return next((c for c in self.children.values() if c.process.poll() is not None), None)

    def stop(self) -> None:
        feed = self.children.get("feed")
        if feed and feed.process.poll() is None:
            feed.process.send_signal(signal.SIGTERM)
            feed.process.wait(timeout=15)
        self._drain()
        for child in self.children.values():
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for child in self.children.values():
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.log_file.close()

    def _drain(self) -> None:
        """Wait until the sinks have caught up: the order count stops changing for a couple of seconds."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        last: tuple[int, int] | None = None
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            current = self._order_and_fill_counts()
            if current != last:
                last, stable_since = current, time.monotonic()
            elif time.monotonic() - stable_since >= 2.0:
                return
            time.sleep(0.25)

    def _order_and_fill_counts(self) -> tuple[int, int]:
        with psycopg.connect(self.settings.dsn) as conn:
            row = conn.execute("SELECT (SELECT count(*) FROM orders WHERE created_at >= %(t)s),"
                               " (SELECT count(*) FROM fills WHERE ts >= %(t)s)", {"t": self.started_at}).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def _end_offset(self, spec: TopicSpec) -> int:
        name = topic_name(spec, self.settings.topic_prefix)
        consumer = Consumer(consumer_config(self.settings, group_id=f"{self.settings.app_id}-session-offsets"))
        try:
            metadata = consumer.list_topics(name, timeout=10).topics[name]
            total = 0
            for partition in metadata.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=10)
                total += high
            return total
        finally:
            consumer.close()

    def summary(self) -> dict[str, Any]:
        t = {"t": self.started_at}
        accounts = [a.account_id for a in self.settings.accounts]
        with psycopg.connect(self.settings.dsn) as conn:
            ticks = conn.execute("SELECT count(*) FROM ticks WHERE ts >= %(t)s", t).fetchone()
            statuses = conn.execute("SELECT status, count(*) FROM orders WHERE created_at >= %(t)s GROUP BY status"
                                    " ORDER BY status", t).fetchall()
            reasons = conn.execute("SELECT reason_code, count(*) FROM orders WHERE created_at >= %(t)s"
                                   " GROUP BY reason_code ORDER BY reason_code", t).fetchall()
            fills = conn.execute("SELECT count(*), coalesce(sum(fee), 0) FROM fills WHERE ts >= %(t)s", t).fetchone()
            positions = conn.execute(
                "SELECT account_id, instrument_id, quantity, average_price, realized_pnl FROM positions"
                " WHERE account_id = ANY(%(a)s) AND quantity <> 0 ORDER BY account_id, instrument_id",
                {"a": accounts}).fetchall()
            pnl = conn.execute(
                "SELECT DISTINCT ON (account_id) account_id, ts, cash, realized_pnl, unrealized_pnl, fees, equity"
                " FROM pnl_snapshots WHERE account_id = ANY(%(a)s) ORDER BY account_id, ts DESC",
                {"a": accounts}).fetchall()
        assert ticks is not None and fills is not None
        ended = datetime.now(UTC)
        return {
            "started_at": self.started_at.isoformat(), "ended_at": ended.isoformat(),
            "duration_s": round((ended - self.started_at).total_seconds(), 1),
            "quotes_published": self._end_offset(MD_QUOTES) - self.start_offsets[MD_QUOTES.name],
            "ticks_stored": int(ticks[0]),
            "intents": self._end_offset(ORDER_INTENTS) - self.start_offsets[ORDER_INTENTS.name],
            "orders": {status: int(n) for status, n in statuses},
            "orders_by_reason": {reason: int(n) for reason, n in reasons},
            "fills": int(fills[0]), "fees": str(fills[1]),
            "positions": [{"account_id": a, "instrument_id": i, "quantity": str(q), "average_price": str(p),
                           "realized_pnl": str(r)} for a, i, q, p, r in positions],
            "pnl": [{"account_id": a, "as_of": ts.isoformat(), "cash": str(c), "realized_pnl": str(r),
                     "unrealized_pnl": str(u), "fees": str(f), "equity": str(e)} for a, ts, c, r, u, f, e in pnl],
        }


def print_summary(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title=f"paper session summary ({summary['duration_s']} s)", show_header=False)
    table.add_row("quotes published", str(summary["quotes_published"]))
    table.add_row("ticks stored", str(summary["ticks_stored"]))
    table.add_row("intents", str(summary["intents"]))
    table.add_row("orders", ", ".join(f"{k}={v}" for k, v in summary["orders"].items()) or "0")
    table.add_row("order reasons", ", ".join(f"{k}={v}" for k, v in summary["orders_by_reason"].items()) or "-")
    table.add_row("fills", f"{summary['fills']} (fees {Decimal(summary['fees']):,.2f})")
    for p in summary["positions"]:
        table.add_row(f"position {p['instrument_id']}", f"{p['quantity']} @ {Decimal(p['average_price']):.6f}")
    for p in summary["pnl"]:
        table.add_row(f"PnL {p['account_id']}", "  ".join(
            f"{name} {Decimal(p[key]):,.2f}" for name, key in (("realized", "realized_pnl"),
                                                               ("unrealized", "unrealized_pnl"), ("fees", "fees"),
                                                               ("equity", "equity"))))
    console.print(table)


def run_session(settings: Settings, duration: float | None, console: Console) -> dict[str, Any] | None:
    session = Session(settings, console)
    session.prepare()
    session.start()
    console.print("paper session running" + (f" for {duration:.0f} s" if duration else "; Ctrl-C to stop"))
    deadline = time.monotonic() + duration if duration else None
    failed: Child | None = None
    try:
        while deadline is None or time.monotonic() < deadline:
            failed = session.dead_child()
            if failed:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("stopping...")
    session.stop()
    if failed:
        tail = failed.log_path.read_text(errors="replace").splitlines()[-20:]
        console.print(f"[red]{failed.name} exited with code {failed.process.returncode}; "
                      f"its log is {failed.log_path}:[/red]")
        console.print("\n".join(tail), markup=False, highlight=False)
        raise SystemExit(1)
    summary = session.summary()
    print_summary(console, summary)
    out = settings.state_dir / "last-run.json"
    out.write_text(json.dumps(summary, indent=2))
    console.print(f"summary written to {out}")
    return summary
