"""`tradestream run --duration`: the main job, as a user runs it, against the real services."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kit.processes import free_port, settings_env
from tradestream.config import Settings

pytestmark = pytest.mark.integration


def test_a_short_paper_session_trades_and_writes_its_summary(settings: Settings, tmp_path: Path) -> None:
    session = settings.model_copy(update={"api_port": free_port(), "state_dir": tmp_path})
    env = settings_env(session)
    env["TRADESTREAM_FEED__INTERVAL_MS"] = "50"
    result = subprocess.run([sys.executable, "-m", "tradestream", "run", "--duration", "20"], env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "paper session summary" in result.stdout
    summary = json.loads((tmp_path / "last-run.json").read_text())
    assert summary["quotes_published"] > 0 and summary["ticks_stored"] == summary["quotes_published"]
    assert summary["intents"] > 0 and sum(summary["orders"].values()) == summary["intents"]
    assert summary["fills"] > 0
    assert summary["pnl"] and summary["pnl"][0]["account_id"] == "paper-main"
