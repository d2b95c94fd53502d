"""Every report figure on small series computed by hand, and the edge cases: flat equity, no trades, all losses,
a single period."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from pydantic import ValidationError

from backtest.reports import (
    EquityPoint,
    build_report,
    monthly_returns,
    per_period_rate,
    period_returns,
    periods_per_year_for,
    round_trips,
)
from core.fills import Fill
from core.types import ExecutionMode, Liquidity, Side
from tests.kit.builders import OWNER

T0 = datetime(2026, 1, 5, tzinfo=UTC)
DAY = timedelta(days=1)


def curve(*equity: str, step: timedelta = DAY, start: datetime = T0) -> list[EquityPoint]:
    return [(start + i * step, Decimal(e)) for i, e in enumerate(equity)]


def fill(side: Side, qty: str, price: str, *, at: datetime, fee: str = "0", instrument: str = "crypto_spot:BTC-USD",
         trade_id: str | None = None) -> Fill:
    return Fill(venue="simulated", venue_trade_id=trade_id or f"{instrument}-{at.isoformat()}-{side}", order_id="o",
                trace_id="t", account_id="acct-1", owner=OWNER, strategy_id="s", instrument_id=instrument, side=side,
                quantity=Decimal(qty), price=Decimal(price), fee=Decimal(fee), liquidity=Liquidity.TAKER,
                mode=ExecutionMode.PAPER, ts=at)


# 100 -> 110 -> 99 -> 108.9: returns +10%, -10%, +10%; mean 1/30, sample variance 1/75, downside mean square 1/300.
SWING = curve("100", "110", "99", "108.9")


def test_return_statistics_on_a_hand_computed_swing() -> None:
    report = build_report(SWING, [], periods_per_year=252)

    assert report.periods == 3
    assert report.total_return == pytest.approx(0.089, abs=1e-15)
    assert report.cagr == pytest.approx(1.089 ** (252 / 3) - 1, rel=1e-12)
    assert report.annual_volatility == pytest.approx(math.sqrt(252 / 75), rel=1e-12)
    assert report.sharpe == pytest.approx((1 / 30) * math.sqrt(75) * math.sqrt(252), rel=1e-12)
    assert report.sortino == pytest.approx((1 / 30) / math.sqrt(1 / 300) * math.sqrt(252), rel=1e-12)


def test_period_returns_are_simple_returns_of_consecutive_points() -> None:
    assert period_returns([Decimal("100"), Decimal("110"), Decimal("99")]) == [0.1, -0.1]


def test_max_drawdown_not_recovered_lasts_until_the_last_point() -> None:
    drawdown = build_report(SWING, [], periods_per_year=252).max_drawdown

    assert drawdown.depth == pytest.approx(-0.1)
    assert (drawdown.peak, drawdown.trough, drawdown.recovery) == (T0 + DAY, T0 + 2 * DAY, None)
    assert drawdown.duration == 2 * DAY


def test_max_drawdown_recovers_when_equity_gets_back_to_the_peak() -> None:
    points = curve("100", "120", "90", "105", "120", "130", "125")

    report = build_report(points, [], periods_per_year=252)

    assert report.max_drawdown.depth == pytest.approx(-0.25)
    assert report.max_drawdown.peak == T0 + DAY
    assert report.max_drawdown.trough == T0 + 2 * DAY
    assert report.max_drawdown.recovery == T0 + 4 * DAY
    assert report.max_drawdown.duration == 3 * DAY
    assert report.calmar == pytest.approx(report.cagr / 0.25)  # type: ignore[operator]


def test_deepest_drawdown_is_chosen_over_a_longer_shallower_one() -> None:
    points = curve("100", "95", "96", "97", "98", "101", "80", "102")

    drawdown = build_report(points, [], periods_per_year=252).max_drawdown

    assert drawdown.depth == pytest.approx(80 / 101 - 1)
    assert (drawdown.peak, drawdown.recovery) == (T0 + 5 * DAY, T0 + 7 * DAY)


def test_risk_free_rate_is_annual_and_compounded_per_period() -> None:
    assert per_period_rate(0.05, 252) == pytest.approx(1.05 ** (1 / 252) - 1, rel=1e-12)
    with_rf = build_report(SWING, [], periods_per_year=252, risk_free_rate=0.05)
    rf = per_period_rate(0.05, 252)
    excess_mean = 1 / 30 - rf
    assert with_rf.sharpe == pytest.approx(excess_mean * math.sqrt(75) * math.sqrt(252), rel=1e-12)
    downside = math.sqrt((-0.1 - rf) ** 2 / 3)  # only the middle period is below the target
    assert with_rf.sortino == pytest.approx(excess_mean / downside * math.sqrt(252), rel=1e-12)


def test_flat_equity_has_no_volatility_and_no_risk_adjusted_ratios() -> None:
    report = build_report(curve("100", "100", "100", "100"), [], periods_per_year=365)

    assert (report.total_return, report.cagr, report.annual_volatility) == (0.0, 0.0, 0.0)
    assert (report.sharpe, report.sortino, report.calmar) == (None, None, None)
    assert report.max_drawdown.depth == 0.0
    assert report.max_drawdown.duration == timedelta(0)


def test_constant_positive_returns_have_no_sharpe_and_no_sortino() -> None:
    report = build_report(curve("100", "110", "121", "133.1"), [], periods_per_year=252)

    assert report.sharpe is None  # zero dispersion
    assert report.sortino is None  # no return below the target
    assert report.calmar is None  # no drawdown


def test_single_period_gain() -> None:
    report = build_report(curve("100", "105"), [], periods_per_year=12)

    assert report.periods == 1
    assert report.total_return == pytest.approx(0.05)
    assert report.cagr == pytest.approx(1.05**12 - 1)
    assert (report.annual_volatility, report.sharpe, report.sortino) == (None, None, None)
    assert report.max_drawdown.depth == 0.0


def test_single_period_loss_is_a_drawdown_to_the_end() -> None:
    report = build_report(curve("100", "90"), [], periods_per_year=12)

    assert report.max_drawdown.depth == pytest.approx(-0.1)
    assert report.max_drawdown.recovery is None
    assert report.max_drawdown.duration == DAY
    assert report.calmar == pytest.approx((0.9**12 - 1) / 0.1)


def test_cagr_too_large_for_a_float_is_undefined() -> None:
    report = build_report(curve("100", "200", step=timedelta(minutes=1)), [], periods_per_year=365 * 1440)

    assert report.cagr is None
    assert report.calmar is None


def test_no_trades() -> None:
    report = build_report(SWING, [], periods_per_year=252)

    assert (report.fills, report.round_trips, report.winning_trips) == (0, 0, 0)
    assert (report.hit_rate, report.profit_factor) == (None, None)
    assert (report.traded_notional, report.turnover, report.exposure) == (Decimal(0), 0.0, 0.0)
    assert (report.gross_profit, report.gross_loss, report.total_fees) == (Decimal(0), Decimal(0), Decimal(0))


def test_all_losing_trips() -> None:
    fills = [
        fill(Side.BUY, "1", "100", at=T0, fee="1"), fill(Side.SELL, "1", "95", at=T0 + DAY, fee="1"),
        fill(Side.SELL, "2", "100", at=T0 + DAY, fee="1"), fill(Side.BUY, "2", "101", at=T0 + 2 * DAY, fee="1"),
    ]

    report = build_report(curve("1000", "993", "989"), fills, periods_per_year=252)

    assert (report.round_trips, report.winning_trips, report.hit_rate) == (2, 0, 0.0)
    assert report.gross_loss == Decimal("-11")  # (-5 - 2) + (-2 - 2)
    assert (report.gross_profit, report.profit_factor) == (Decimal(0), 0.0)
    assert report.total_fees == Decimal(4)


def test_hit_rate_and_profit_factor_over_wins_and_losses() -> None:
    fills = [
        fill(Side.BUY, "1", "100", at=T0), fill(Side.SELL, "1", "110", at=T0 + DAY),  # +10
        fill(Side.BUY, "1", "100", at=T0 + DAY), fill(Side.SELL, "1", "96", at=T0 + 2 * DAY),  # -4
        fill(Side.BUY, "1", "100", at=T0 + 2 * DAY), fill(Side.SELL, "1", "102", at=T0 + 3 * DAY),  # +2
    ]

    report = build_report(curve("1000", "1010", "1006", "1008"), fills, periods_per_year=252)

    assert (report.round_trips, report.winning_trips) == (3, 2)
    assert report.hit_rate == pytest.approx(2 / 3)
    assert (report.gross_profit, report.gross_loss) == (Decimal(12), Decimal(-4))
    assert report.profit_factor == pytest.approx(3.0)


def test_flip_through_flat_closes_one_trip_and_opens_the_next_with_fees_split_pro_rata() -> None:
    fills = [
        fill(Side.BUY, "2", "10", at=T0, fee="0.2"),
        fill(Side.SELL, "3", "12", at=T0 + DAY, fee="0.3"),  # closes 2 (+4), opens a short of 1
        fill(Side.BUY, "1", "11", at=T0 + 2 * DAY, fee="0.1"),  # closes the short (+1)
    ]

    trips = round_trips(fills, {})

    assert [(t.opened, t.closed) for t in trips] == [(T0, T0 + DAY), (T0 + DAY, T0 + 2 * DAY)]
    assert [t.pnl for t in trips] == [Decimal("3.6"), Decimal("0.8")]  # 4 - 0.2 - 0.2, 1 - 0.1 - 0.1


def test_scaling_in_and_out_is_one_trip() -> None:
    fills = [
        fill(Side.BUY, "1", "10", at=T0), fill(Side.BUY, "1", "12", at=T0 + DAY, fee="0.5"),
        fill(Side.SELL, "1", "13", at=T0 + 2 * DAY), fill(Side.SELL, "1", "14", at=T0 + 3 * DAY, fee="0.5"),
    ]

    trips = round_trips(fills, {})

    assert len(trips) == 1
    assert trips[0].pnl == Decimal(4)  # average 11: +2 and +3, less 1 of fees


def test_an_open_trip_at_the_end_is_not_counted() -> None:
    fills = [fill(Side.BUY, "1", "10", at=T0), fill(Side.SELL, "1", "9", at=T0 + DAY),
             fill(Side.BUY, "1", "10", at=T0 + 2 * DAY)]

    report = build_report(curve("100", "99", "99", "105"), fills, periods_per_year=252)

    assert (report.round_trips, report.hit_rate) == (1, 0.0)


def test_multiplier_scales_trip_pnl_and_notional() -> None:
    es = "future:ES-202612"
    fills = [fill(Side.BUY, "1", "100", at=T0, instrument=es), fill(Side.SELL, "1", "99", at=T0 + DAY, instrument=es)]

    report = build_report(curve("10000", "9950"), fills, periods_per_year=252, multipliers={es: Decimal(50)})

    assert report.gross_loss == Decimal(-50)
    assert report.traded_notional == Decimal(9950)  # 100 x 50 + 99 x 50
    assert report.turnover == pytest.approx(9950 / 9975)  # notional / mean equity


def test_exposure_is_the_share_of_time_with_any_position_open() -> None:
    points = curve(*["100"] * 11)  # ten days
    fills = [
        fill(Side.BUY, "1", "10", at=T0 + DAY, instrument="crypto_spot:BTC-USD"),
        fill(Side.BUY, "1", "10", at=T0 + 3 * DAY, instrument="crypto_spot:ETH-USD"),
        fill(Side.SELL, "1", "10", at=T0 + 4 * DAY, instrument="crypto_spot:BTC-USD"),
        fill(Side.SELL, "1", "10", at=T0 + 6 * DAY, instrument="crypto_spot:ETH-USD"),  # flat days 6 to 8
        fill(Side.SELL, "2", "10", at=T0 + 8 * DAY, instrument="crypto_spot:ETH-USD"),  # short to the end
    ]

    report = build_report(points, fills, periods_per_year=365)

    assert report.exposure == pytest.approx((5 + 2) / 10)


def test_total_fees_sum_every_fill() -> None:
    fills = [fill(Side.BUY, "1", "10", at=T0, fee="0.25"), fill(Side.SELL, "1", "10", at=T0 + DAY, fee="0.35")]

    assert build_report(SWING, fills, periods_per_year=252).total_fees == Decimal("0.60")


def test_monthly_returns_compound_from_the_last_point_of_the_month_before() -> None:
    points = [(datetime(2026, 1, 30, tzinfo=UTC), Decimal(100)), (datetime(2026, 1, 31, tzinfo=UTC), Decimal(100)),
              (datetime(2026, 2, 1, tzinfo=UTC), Decimal(110)), (datetime(2026, 2, 28, tzinfo=UTC), Decimal(121)),
              (datetime(2026, 3, 2, tzinfo=UTC), Decimal("108.9"))]

    months = [(m.year, m.month, m.value) for m in monthly_returns(points)]

    assert months == [(2026, 1, 0.0), (2026, 2, pytest.approx(0.21)), (2026, 3, pytest.approx(-0.1))]


@pytest.mark.parametrize(("bar", "kwargs", "expected"), [
    (timedelta(minutes=1), {}, 365 * 1440),
    (timedelta(hours=1), {}, 365 * 24),
    (timedelta(days=1), {}, 365),
    (timedelta(minutes=1), {"trading_days": 252, "session": timedelta(hours=6, minutes=30)}, 252 * 390),
    (timedelta(days=1), {"trading_days": 252, "session": timedelta(hours=6, minutes=30)}, 252),
    (timedelta(weeks=1), {"trading_days": 252}, 365.25 / 7),
])
def test_periods_per_year_from_bar_length(bar: timedelta, kwargs: dict[str, object], expected: float) -> None:
    assert periods_per_year_for(bar, **kwargs) == pytest.approx(expected)  # type: ignore[arg-type]


@pytest.mark.parametrize(("points", "problem"), [
    (curve("100"), "at least two points"),
    (curve("100", "101")[::-1], "increase strictly"),
    ([(T0, Decimal(100)), (T0, Decimal(101))], "increase strictly"),
    (curve("100", "0"), "equity must stay > 0"),
    ([(datetime(2026, 1, 5), Decimal(100)), (datetime(2026, 1, 6), Decimal(101))], "not UTC"),  # noqa: DTZ001
    (curve("100", "101", start=datetime(2026, 1, 5, tzinfo=timezone(timedelta(hours=1)))), "not UTC"),
])
def test_invalid_equity_curve_is_refused(points: list[EquityPoint], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build_report(points, [], periods_per_year=252)


def test_report_refuses_nan_statistics() -> None:
    report = build_report(SWING, [], periods_per_year=252)

    with pytest.raises(ValidationError):
        report.model_validate({**report.model_dump(), "sharpe": math.nan})
