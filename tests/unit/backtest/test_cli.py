import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from typer.testing import CliRunner

from backtest.cli import app as backtest_app

POLICY = """
[[policies]]
policy_id = "bt"
version = 1
max_order_notional = "1000000"
max_position_quantity = "1000"
"""


def tradestream() -> typer.Typer:
    """The sub-app mounted as the lead mounts it: `add_typer` without a name, beside other commands."""
    root = typer.Typer()
    root.command("version")(lambda: None)
    root.add_typer(backtest_app)
    return root


def write_bars(path: Path) -> Path:
    closes = [100, 100, 100, 101, 103, 102, 99, 97, 98, 101, 104, 106, 103, 100, 99, 98]
    rows = ["ts,instrument_id,open,high,low,close,volume"]
    previous = closes[0]
    for i, close in enumerate(closes):
        ts = (datetime(2026, 1, 5, 14, 30, tzinfo=UTC) + timedelta(minutes=i)).isoformat()
        rows.append(f"{ts},equity:AAPL,{previous},{max(previous, close)},{min(previous, close)},{close},1000")
        previous = close
    path.write_text("\n".join(rows) + "\n")
    return path


def test_backtest_runs_a_strategy_and_writes_trades_orders_equity_and_the_report(tmp_path: Path) -> None:
    bars = write_bars(tmp_path / "bars.csv")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    out = tmp_path / "out"
    result = CliRunner().invoke(tradestream(), [
        "backtest", "sma_crossover", "--data", str(bars), "--param", "fast=2", "--param", "slow=3",
        "--param", "quantity=10", "--account-cash", "100000", "--policy", str(policy), "--out", str(out)])
    assert result.exit_code == 0, result.output
    trades = json.loads((out / "trades.json").read_text())
    assert [(t["side"], t["price"], t["fee"]) for t in trades][:2] == [("buy", "101", "1.00"), ("sell", "99", "1.00")]
    assert len(json.loads((out / "orders.json").read_text())) == len(trades)
    assert len(json.loads((out / "equity.json").read_text())) == 17  # the start and 16 bar closes
    assert (out / "report.json").is_file() and (out / "tear_sheet.html").is_file()
    assert "total return" in result.output and "max drawdown" in result.output and "Sharpe" in result.output
    assert f"trades {len(trades)}" in result.output


def test_a_bad_parameter_or_unknown_strategy_exits_with_the_reason(tmp_path: Path) -> None:
    bars = write_bars(tmp_path / "bars.csv")
    runner = CliRunner()
    unknown = runner.invoke(tradestream(), ["backtest", "nope", "--data", str(bars)])
    assert unknown.exit_code == 2 and "unknown strategy 'nope'" in unknown.output
    bad = runner.invoke(tradestream(), ["backtest", "sma_crossover", "--data", str(bars), "--param", "fast=9",
                                        "--param", "slow=3"])
    assert bad.exit_code == 2 and "0 < fast < slow" in bad.output
