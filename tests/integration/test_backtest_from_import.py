"""A backtest runs on what `tradestream import` produces: bars imported into the real Postgres and exported to
Parquet are the backtest's input, unchanged, and give the same run as the CSV they came from."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from backtest.cli import app as backtest_app
from backtest.importer import import_file
from tradestream.config import Settings

pytestmark = pytest.mark.integration

POLICY = """
[[policies]]
policy_id = "bt"
version = 1
max_order_notional = "1000000"
max_position_quantity = "1000"
"""


def write_bars(path: Path) -> None:
    closes = ["230.00", "230.00", "230.00", "231.50", "233.25", "232.00", "229.75", "228.00", "229.00", "231.00",
              "234.50", "236.00", "233.00", "230.25", "229.50", "228.75"]
    rows = ["ts,instrument_id,open,high,low,close,volume"]
    previous = closes[0]
    for i, close in enumerate(closes):
        ts = (datetime(2026, 1, 5, 14, 30, tzinfo=UTC) + timedelta(minutes=i)).isoformat()
        low, high = sorted((previous, close), key=float)
        rows.append(f"{ts},equity:AAPL,{previous},{high},{low},{close},1000")
        previous = close
    path.write_text("\n".join(rows) + "\n")


def backtest(data: Path, out: Path, policy: Path) -> list[dict[str, str]]:
    root = typer.Typer()
    root.command("version")(lambda: None)
    root.add_typer(backtest_app)
    result = CliRunner().invoke(root, ["backtest", "sma_crossover", "--data", str(data), "--param", "fast=2",
                                       "--param", "slow=3", "--param", "quantity=10", "--policy", str(policy),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    trades: list[dict[str, str]] = json.loads((out / "trades.json").read_text())
    return trades


def test_bars_exported_by_the_importer_backtest_like_their_source_csv(settings: Settings, tmp_path: Path) -> None:
    source = tmp_path / "aapl.csv"
    write_bars(source)
    summary = import_file(source, "bars-csv", settings.dsn, parquet_dir=tmp_path / "parquet")
    assert (summary.imported, summary.bad) == (16, 0) and summary.parquet_path is not None
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)

    from_parquet = backtest(Path(summary.parquet_path), tmp_path / "out-parquet", policy)
    from_csv = backtest(source, tmp_path / "out-csv", policy)

    assert len(from_parquet) >= 2
    assert [(t["side"], t["price"], t["ts"]) for t in from_parquet] == [
        (t["side"], t["price"], t["ts"]) for t in from_csv]
