"""The audit trail through the real services: chained by the sink, append-only, tampering detected by the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from core.control import KillSwitch, KillSwitchScope, TradingState
from streams.control import ControlPlane
from streams.kafka import ensure_topics
from tests.kit.processes import running, settings_env
from tests.kit.waiting import eventually
from tradestream.config import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def audited(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    ensure_topics(settings)
    with running(settings, "sinks", log_dir=tmp_path_factory.mktemp("logs")):
        plane = ControlPlane(settings)
        start = datetime.now(UTC)
        for n, state in enumerate([TradingState.HALTED, TradingState.ACTIVE, TradingState.REDUCE_ONLY,
                                   TradingState.ACTIVE, TradingState.HALTED]):
            plane.set_kill_switch(KillSwitch(scope=KillSwitchScope.STRATEGY, target="s1", state=state,
                                             actor=f"ops-{n}", at=start + timedelta(seconds=n)))
        plane.close()
        eventually(lambda: count(settings) >= 5, what="five audit entries")
        yield settings


def count(settings: Settings) -> int:
    with psycopg.connect(settings.dsn) as conn:
        row = conn.execute("SELECT count(*) FROM audit_log").fetchone()
    return int(row[0]) if row else 0


def verify(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tradestream", "audit", "verify"], env=settings_env(settings),
                          capture_output=True, text=True, timeout=60)


def tamper(settings: Settings, statement: str) -> None:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        try:
            conn.execute(statement)
        finally:
            conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def test_entries_carry_actor_before_after_and_a_chained_hash(audited: Settings) -> None:
    with psycopg.connect(audited.dsn) as conn:
        rows = conn.execute("SELECT seq, actor, action, prev_hash, hash, event_json FROM audit_log ORDER BY seq"
                            ).fetchall()
    assert [r[1] for r in rows] == [f"ops-{n}" for n in range(5)]
    assert {r[2] for r in rows} == {"kill_switch_changed"}
    assert all(rows[i][3] == rows[i - 1][4] for i in range(1, len(rows)))
    assert '"before":null' in rows[0][5] and '"state":"halted"' in rows[1][5]


def test_verify_passes_on_an_intact_chain(audited: Settings) -> None:
    result = verify(audited)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit chain intact: 5 entries" in result.stdout


def test_the_table_refuses_updates_and_deletes(audited: Settings) -> None:
    with psycopg.connect(audited.dsn) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    with psycopg.connect(audited.dsn) as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("DELETE FROM audit_log WHERE seq = 1")


def test_verify_names_the_first_tampered_entry(audited: Settings) -> None:
    tamper(audited, "UPDATE audit_log SET event_json = replace(event_json, 'ops-2', 'mallory') WHERE seq = 3")
    result = verify(audited)
    assert result.returncode == 1
    assert "broken at entry 3" in result.stdout and "altered" in result.stdout
    tamper(audited, "DELETE FROM audit_log WHERE seq = 3")
    assert "broken at entry 4" in verify(audited).stdout
