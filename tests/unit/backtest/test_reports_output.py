"""write_report: the same figures as JSON and a self-contained HTML tear sheet with three plots."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from backtest.reports import EquityPoint, PerformanceReport, build_report, render_tear_sheet, write_report
from core.fills import Fill
from core.types import ExecutionMode, Liquidity, Side
from tests.kit.builders import OWNER

START = datetime(2025, 11, 20, tzinfo=UTC)


def sample() -> tuple[PerformanceReport, list[EquityPoint]]:
    equity = ["100000", "101250.50", "99800", "98000.25", "102500", "103100.75", "101900", "104000"]
    points = [(START + timedelta(days=15 * i), Decimal(e)) for i, e in enumerate(equity)]
    fills = [Fill(venue="simulated", venue_trade_id=f"t{i}", order_id="o", trace_id="t", account_id="a", owner=OWNER,
                  strategy_id="s", instrument_id="crypto_spot:BTC-USD", side=side, quantity=Decimal("0.5"),
                  price=Decimal(price), fee=Decimal("1.50"), liquidity=Liquidity.TAKER, mode=ExecutionMode.PAPER,
                  ts=START + timedelta(days=10 * i))
             for i, (side, price) in enumerate([(Side.BUY, "90000"), (Side.SELL, "93000"), (Side.BUY, "95000"),
                                                (Side.SELL, "91000")])]
    return build_report(points, fills, periods_per_year=365), points


def test_json_holds_the_report_with_money_as_decimal_strings(tmp_path: Path) -> None:
    report, points = sample()

    paths = write_report(report, points, tmp_path / "run-1")

    document = json.loads(paths["json"].read_text())
    assert PerformanceReport.model_validate_json(paths["json"].read_text()) == report
    assert document["ending_equity"] == "104000"
    assert document["total_fees"] == "6.00"
    assert isinstance(document["sharpe"], float)
    assert document["max_drawdown"]["peak"] == "2025-12-05T00:00:00Z"


def test_tear_sheet_is_self_contained_with_equity_drawdown_and_monthly_plots(tmp_path: Path) -> None:
    report, points = sample()

    html = write_report(report, points, tmp_path)["html"].read_text()

    assert html.count("<svg") == 3
    for label in ("Equity", "Drawdown", "Monthly returns"):
        assert f'aria-label="{label}"' in html
    assert "<script" not in html and "<link" not in html and "<img" not in html and "@import" not in html
    # The only URL is the SVG namespace, which is never fetched.
    assert set(re.findall(r"https?://[^\"' )]+", html)) == {"http://www.w3.org/2000/svg"}


def test_tear_sheet_shows_the_figures_and_every_month() -> None:
    report, points = sample()

    html = render_tear_sheet(report, points)

    assert "104,000.00" in html and "+4.00%" in html  # ending equity, total return
    assert "Sharpe" in html and "Max drawdown" in html and "Profit factor" in html
    assert ">2025<" in html and ">2026<" in html
    assert len(report.monthly_returns) == 5  # Nov 2025 to Mar 2026
    for month in report.monthly_returns:
        assert f"{month.value:+.1%}" in html
