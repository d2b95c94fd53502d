"""The report agrees with empyrical-reloaded (a test-only dependency) on the same returns, to 1e-6.

Conventions aligned: empyrical's `annualization` is our periods_per_year; its per-period `risk_free` (Sharpe) and
`required_return` (Sortino) are our annual risk-free rate de-annualised geometrically (`per_period_rate`); both use
the sample standard deviation (ddof = 1), the downside deviation over all periods, compounded returns for CAGR
with years = periods / periods_per_year, and a drawdown anchored at the starting equity. The one difference:
where empyrical answers NaN (or infinity) the report says None.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import empyrical
import numpy as np
import pytest

from backtest.reports import EquityPoint, PerformanceReport, build_report, per_period_rate

TOLERANCE = 1e-6


def seeded_curve(seed: int, periods: int, drift: float, volatility: float) -> tuple[list[EquityPoint], list[float]]:
    """A compounded equity curve from seeded normal returns, and those returns."""
    rng = np.random.default_rng(seed)
    returns = [float(r) for r in rng.normal(drift, volatility, periods)]
    equity = Decimal(100_000)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    points = [(start, equity)]
    for i, r in enumerate(returns, start=1):
        equity *= Decimal(repr(1 + r))
        points.append((start + timedelta(days=i), equity))
    return points, returns


CASES = [  # seed, periods, drift, volatility, periods_per_year, annual risk-free rate
    (1, 500, 0.0005, 0.010, 252, 0.0),
    (2, 730, 0.0002, 0.030, 365, 0.04),
    (3, 156, 0.0010, 0.020, 52, 0.02),
    (4, 60, -0.0100, 0.050, 12, 0.0),
]


@pytest.fixture(params=CASES, ids=[f"seed{c[0]}-P{c[4]}-rf{c[5]}" for c in CASES])
def case(request: pytest.FixtureRequest) -> tuple[PerformanceReport, np.ndarray, float, float]:
    seed, periods, drift, volatility, periods_per_year, risk_free = request.param
    points, returns = seeded_curve(seed, periods, drift, volatility)
    report = build_report(points, [], periods_per_year=periods_per_year, risk_free_rate=risk_free)
    return report, np.array(returns), float(periods_per_year), per_period_rate(risk_free, periods_per_year)


Case = tuple[PerformanceReport, np.ndarray, float, float]


def test_cagr_agrees_with_empyrical(case: Case) -> None:
    report, returns, p, _ = case
    assert report.cagr == pytest.approx(empyrical.cagr(returns, annualization=p), abs=TOLERANCE)
    assert report.cagr == pytest.approx(empyrical.annual_return(returns, annualization=p), abs=TOLERANCE)


def test_annual_volatility_agrees_with_empyrical(case: Case) -> None:
    report, returns, p, _ = case
    assert report.annual_volatility == pytest.approx(empyrical.annual_volatility(returns, annualization=p),
                                                     abs=TOLERANCE)


def test_sharpe_agrees_with_empyrical(case: Case) -> None:
    report, returns, p, rf = case
    assert report.sharpe == pytest.approx(empyrical.sharpe_ratio(returns, risk_free=rf, annualization=p),
                                          abs=TOLERANCE)


def test_sortino_agrees_with_empyrical(case: Case) -> None:
    report, returns, p, rf = case
    assert report.sortino == pytest.approx(empyrical.sortino_ratio(returns, required_return=rf, annualization=p),
                                           abs=TOLERANCE)


def test_max_drawdown_agrees_with_empyrical(case: Case) -> None:
    report, returns, _, _ = case
    assert report.max_drawdown.depth == pytest.approx(empyrical.max_drawdown(returns), abs=TOLERANCE)


def test_calmar_agrees_with_empyrical(case: Case) -> None:
    report, returns, p, _ = case
    assert report.calmar == pytest.approx(empyrical.calmar_ratio(returns, annualization=p), abs=TOLERANCE)


def test_total_return_agrees_with_empyrical(case: Case) -> None:
    report, returns, _, _ = case
    assert report.total_return == pytest.approx(empyrical.cum_returns_final(returns), abs=TOLERANCE)


def test_where_empyrical_gives_nan_the_report_gives_none() -> None:
    flat = [(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=i), Decimal(100)) for i in range(5)]
    returns = np.zeros(4)

    report = build_report(flat, [], periods_per_year=252)

    assert math.isnan(empyrical.sharpe_ratio(returns, annualization=252)) and report.sharpe is None
    assert math.isnan(empyrical.calmar_ratio(returns, annualization=252)) and report.calmar is None
    assert not math.isfinite(empyrical.sortino_ratio(returns, annualization=252)) and report.sortino is None
