"""Performance reports (TKT-405): pure functions from an equity curve and fills to a `PerformanceReport`, and
`write_report`, which writes the report as JSON and as a self-contained HTML tear sheet (inline SVG, no scripts,
nothing fetched when viewed).

Inputs
------
equity_curve  (UTC timestamp, equity) points, strictly increasing in time, equity > 0, at least two points: one
              point per bar, so n + 1 points give n period returns. Equity is after fees.
fills         the run's `core.fills.Fill`s. `multipliers` gives the contract multiplier of an instrument (futures,
              options); instruments not listed have multiplier 1 (spot, equities, event contracts).

Conventions
-----------
Returns         simple period returns of consecutive points, r_t = E_t / E_{t-1} - 1 (t = 1..n), computed in
                Decimal, then converted to float. Equity is net of fees, so every return is net of costs.
Annualisation   `periods_per_year` P is the number of bars in a year: 252 for daily equity bars, 365 for daily
                crypto bars, 52 weekly, 252 x 390 for one-minute equity bars, 365 x 1440 for one-minute crypto
                bars. `periods_per_year_for` derives it from the bar length.
Risk-free rate  `risk_free_rate` rf is annual (default 0); per period rf_p = (1 + rf)^(1/P) - 1 (geometric).
Types           statistics are float: they are ratios, powers and square roots, where Decimal adds no exactness
                and every reference implementation works in binary floating point. Money (equity, notional, PnL,
                fees) stays Decimal: it is summed from ledger values and must reconcile exactly.
Undefined       a figure the input does not define (0/0, too few returns) is None, never NaN or infinity.

Definitions (x_t = r_t - rf_p; mean and std over t = 1..n; std is the sample deviation, ddof = 1)
-----------
total_return       E_n / E_0 - 1
cagr               (E_n / E_0)^(P / n) - 1: years = n / P, counted in bars, not in calendar days
annual_volatility  std(r) * sqrt(P); None when n < 2
sharpe             mean(x) / std(x) * sqrt(P); None when n < 2 or all x_t are equal
sortino            mean(x) / DD * sqrt(P), DD = sqrt(sum_t min(x_t, 0)^2 / n): the downside deviation below
                   rf_p over all n periods (not the deviation of the negative returns only); None when n < 2 or
                   no x_t < 0
max_drawdown       depth = min_t (E_t / max_{s<=t} E_s - 1) <= 0, with its peak, trough, recovery (the first point
                   back at or above the peak; None if never) and duration = recovery (or the last point) - peak,
                   in wall-clock time
calmar             cagr / |depth|; None when depth = 0
turnover           traded notional / mean equity over the points; traded notional = sum |quantity * price *
                   multiplier| over all fills (buys and sells both count)
round trips        per instrument, a position's life from flat to flat; a fill through flat closes one and opens
                   the next. PnL = realized PnL (average cost, `core.ledger.Position`) - its fills' fees, a flipping
                   fill's fee split pro rata by quantity. A trip still open at the end is not counted: its PnL is
                   unrealized and already in the equity curve.
hit_rate           winning trips / closed trips (winning: PnL > 0); None without closed trips
profit_factor      sum of winning PnL / |sum of losing PnL|; None without a losing trip
exposure           share of the wall-clock time [start, end] during which any position is open (flat before the
                   first fill)
total_fees         sum of the fills' fees
monthly_returns    per UTC calendar month: last equity of the month / last equity of the month before (E_0 for
                   the first month) - 1

These are empyrical-reloaded's conventions (annual_return, annual_volatility, sharpe_ratio with risk_free=rf_p,
sortino_ratio with required_return=rf_p, max_drawdown, calmar_ratio, annualization=P); tests/unit/backtest
checks the agreement. Where empyrical gives NaN or infinity this module gives None.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from string import Template

from pydantic import ConfigDict, Field

from core.fills import Fill
from core.ledger import Position
from core.types import ZERO, Amount, Frozen, NonNegative, Positive, UtcDatetime

EquityPoint = tuple[datetime, Decimal]
ONE = Decimal(1)
DAYS_PER_YEAR = 365.25
TEMPLATE = Path(__file__).with_name("templates") / "tear_sheet.html"


class _Figures(Frozen):
    model_config = ConfigDict(allow_inf_nan=False)  # an undefined figure is None, never NaN or infinity


class Drawdown(_Figures):
    depth: float = Field(le=0)
    """Fraction below the peak: -0.25 is 25% down."""
    peak: UtcDatetime
    trough: UtcDatetime
    recovery: UtcDatetime | None
    """The first point back at or above the peak; None when equity never got back."""
    duration: timedelta
    """Peak to recovery, or peak to the last point when not recovered."""


class RoundTrip(_Figures):
    instrument_id: str
    opened: UtcDatetime
    closed: UtcDatetime
    pnl: Amount
    """Realized PnL net of this trip's fees."""


class MonthlyReturn(_Figures):
    year: int
    month: int = Field(ge=1, le=12)
    value: float


class PerformanceReport(_Figures):
    start: UtcDatetime
    end: UtcDatetime
    periods: int = Field(ge=1)
    periods_per_year: float = Field(gt=0)
    risk_free_rate: float
    starting_equity: Positive
    ending_equity: Positive
    total_return: float
    cagr: float | None
    annual_volatility: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: Drawdown
    calmar: float | None
    traded_notional: NonNegative
    turnover: float
    fills: int
    round_trips: int
    winning_trips: int
    gross_profit: NonNegative
    gross_loss: Amount
    """Sum of the losing trips' PnL, <= 0."""
    hit_rate: float | None
    profit_factor: float | None
    exposure: float = Field(ge=0, le=1)
    total_fees: NonNegative
    monthly_returns: tuple[MonthlyReturn, ...]


def build_report(equity_curve: Sequence[EquityPoint], fills: Sequence[Fill], *, periods_per_year: float,
                 risk_free_rate: float = 0.0, multipliers: Mapping[str, Decimal] | None = None) -> PerformanceReport:
    """Every figure of the module docstring for one run."""
    _check_curve(equity_curve)
    if periods_per_year <= 0:
        raise ValueError("periods_per_year must be > 0")
    if risk_free_rate <= -1:
        raise ValueError("risk_free_rate must be > -1 (an annual rate: 0.05 is 5%)")
    returns = period_returns([equity for _, equity in equity_curve])
    rf = per_period_rate(risk_free_rate, periods_per_year)
    start, first = equity_curve[0]
    end, last = equity_curve[-1]
    growth = _ratio(last, first)
    annual = cagr(growth, len(returns), periods_per_year)
    drawdown = max_drawdown(equity_curve)
    trips = round_trips(fills, multipliers or {})
    wins = [t.pnl for t in trips if t.pnl > 0]
    losses = [t.pnl for t in trips if t.pnl < 0]
    gross_profit, gross_loss = sum(wins, ZERO), sum(losses, ZERO)
    notional = traded_notional(fills, multipliers or {})
    mean_equity = sum((e for _, e in equity_curve), ZERO) / len(equity_curve)
    return PerformanceReport(
        start=start, end=end, periods=len(returns), periods_per_year=periods_per_year, risk_free_rate=risk_free_rate,
        starting_equity=first, ending_equity=last, total_return=_ratio(last - first, first), cagr=annual,
        annual_volatility=annual_volatility(returns, periods_per_year),
        sharpe=sharpe_ratio(returns, periods_per_year, rf), sortino=sortino_ratio(returns, periods_per_year, rf),
        max_drawdown=drawdown,
        calmar=annual / abs(drawdown.depth) if annual is not None and drawdown.depth < 0 else None,
        traded_notional=notional, turnover=_ratio(notional, mean_equity), fills=len(fills), round_trips=len(trips),
        winning_trips=len(wins), gross_profit=gross_profit, gross_loss=gross_loss,
        hit_rate=len(wins) / len(trips) if trips else None,
        profit_factor=_ratio(gross_profit, -gross_loss) if losses else None,
        exposure=exposure(fills, start, end), total_fees=sum((f.fee for f in fills), ZERO),
        monthly_returns=tuple(monthly_returns(equity_curve)),
    )


def _check_curve(curve: Sequence[EquityPoint]) -> None:
    if len(curve) < 2:
        raise ValueError("an equity curve needs at least two points (one period)")
    for (before, _), (after, _) in pairwise(curve):
        if after <= before:
            raise ValueError(f"equity curve timestamps must increase strictly: {after} follows {before}")
    for ts, equity in curve:
        if ts.tzinfo is None or ts.utcoffset() != timedelta(0):
            raise ValueError(f"equity curve timestamp {ts} is not UTC")
        if equity <= 0:
            # A return from zero or negative equity is undefined; such a run is reported as ruined, not scored.
            raise ValueError(f"equity must stay > 0, got {equity} at {ts}")


def _ratio(numerator: Decimal, denominator: Decimal) -> float:
    return float(numerator / denominator)


def periods_per_year_for(bar: timedelta, *, trading_days: float = 365.0,
                         session: timedelta = timedelta(days=1)) -> float:
    """Bars in a year for bars of length `bar`: crypto by default (365 days of 24 hours); US equities with
    `trading_days=252, session=timedelta(hours=6, minutes=30)`."""
    if bar <= timedelta(0) or session <= timedelta(0):
        raise ValueError("bar and session must be positive")
    if bar < session:
        return trading_days * (session / bar)
    if bar <= timedelta(days=1):
        return trading_days  # one bar per trading day, however long the session
    return DAYS_PER_YEAR * (timedelta(days=1) / bar)  # multi-day bars span calendar time, weekends included


def per_period_rate(annual_rate: float, periods_per_year: float) -> float:
    return float((1 + annual_rate) ** (1 / periods_per_year) - 1)


def period_returns(equity: Sequence[Decimal]) -> list[float]:
    # Subtracting in Decimal before converting keeps small returns exact to float precision.
    return [float(after / before - ONE) for before, after in pairwise(equity)]


def cagr(growth: float, periods: int, periods_per_year: float) -> float | None:
    try:
        return math.exp(math.log(growth) * periods_per_year / periods) - 1
    except OverflowError:
        return None  # e.g. a few minute bars annualised: the figure exceeds any float


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _std(values: Sequence[float]) -> float:
    mean = _mean(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def annual_volatility(returns: Sequence[float], periods_per_year: float) -> float | None:
    if len(returns) < 2:
        return None
    return _std(returns) * math.sqrt(periods_per_year)


def sharpe_ratio(returns: Sequence[float], periods_per_year: float, risk_free: float = 0.0) -> float | None:
    excess = [r - risk_free for r in returns]
    if len(excess) < 2 or max(excess) == min(excess):
        return None
    return _mean(excess) / _std(excess) * math.sqrt(periods_per_year)


def sortino_ratio(returns: Sequence[float], periods_per_year: float, target: float = 0.0) -> float | None:
    excess = [r - target for r in returns]
    if len(excess) < 2 or min(excess) >= 0:
        return None
    downside = math.sqrt(math.fsum(min(x, 0.0) ** 2 for x in excess) / len(excess))
    return _mean(excess) / downside * math.sqrt(periods_per_year)


def max_drawdown(curve: Sequence[EquityPoint]) -> Drawdown:
    peak_ts, peak = curve[0]
    worst = Drawdown(depth=0.0, peak=peak_ts, trough=peak_ts, recovery=peak_ts, duration=timedelta(0))
    worst_peak = peak
    for ts, equity in curve:
        if equity > peak:
            peak_ts, peak = ts, equity
        depth = _ratio(equity, peak) - 1
        if depth < worst.depth:
            worst = Drawdown(depth=depth, peak=peak_ts, trough=ts, recovery=None, duration=timedelta(0))
            worst_peak = peak
    if worst.depth == 0:
        return worst
    recovery = next((ts for ts, equity in curve if ts > worst.trough and equity >= worst_peak), None)
    return worst.model_copy(update={"recovery": recovery, "duration": (recovery or curve[-1][0]) - worst.peak})


@dataclass
class _OpenTrip:
    opened: datetime
    pnl: Decimal


def round_trips(fills: Sequence[Fill], multipliers: Mapping[str, Decimal]) -> list[RoundTrip]:
    """Closed round trips in the order they closed (see the module docstring)."""
    positions: dict[str, Position] = {}
    trips: dict[str, _OpenTrip] = {}
    closed: list[RoundTrip] = []
    for fill in sorted(fills, key=lambda f: f.ts):
        instrument = fill.instrument_id
        before = positions.get(instrument) or Position(instrument_id=instrument,
                                                       multiplier=multipliers.get(instrument, ONE))
        signed = fill.quantity * fill.side.sign
        after = before.apply(signed, fill.price, fill.fee, fill.trace_id)
        positions[instrument] = after
        old, new = before.quantity, after.quantity
        if old == 0:
            trips[instrument] = _OpenTrip(fill.ts, -fill.fee)
            continue
        reducing = (old > 0) != (signed > 0)
        # The part of the fee that closes belongs to this trip; on a flip the rest opens the next one.
        trip_fee = fill.fee * min(abs(signed), abs(old)) / fill.quantity if reducing else fill.fee
        trip = trips[instrument]
        trip.pnl += after.realized_pnl - before.realized_pnl - trip_fee
        if new == 0 or (reducing and (new > 0) != (old > 0)):
            closed.append(RoundTrip(instrument_id=instrument, opened=trip.opened, closed=fill.ts, pnl=trip.pnl))
            del trips[instrument]
            if new != 0:
                trips[instrument] = _OpenTrip(fill.ts, trip_fee - fill.fee)
    return closed


def traded_notional(fills: Sequence[Fill], multipliers: Mapping[str, Decimal]) -> Decimal:
    return sum((abs(f.quantity * f.price) * multipliers.get(f.instrument_id, ONE) for f in fills), ZERO)


def exposure(fills: Sequence[Fill], start: datetime, end: datetime) -> float:
    """Share of [start, end] with any position open."""
    quantities: dict[str, Decimal] = {}
    held = 0  # instruments with a non-zero position
    since = start
    in_market = timedelta(0)
    for fill in sorted(fills, key=lambda f: f.ts):
        at = min(max(fill.ts, start), end)
        old = quantities.get(fill.instrument_id, ZERO)
        new = old + fill.quantity * fill.side.sign
        quantities[fill.instrument_id] = new
        was_held = held > 0
        held += (new != 0) - (old != 0)
        if not was_held and held > 0:
            since = at
        elif was_held and held == 0:
            in_market += at - since
    if held > 0:
        in_market += end - since
    return in_market / (end - start)


def monthly_returns(curve: Sequence[EquityPoint]) -> list[MonthlyReturn]:
    months: list[MonthlyReturn] = []
    first_ts, base = curve[0]
    month = (first_ts.year, first_ts.month)
    last = base
    for ts, equity in curve[1:]:
        if (ts.year, ts.month) != month:
            months.append(MonthlyReturn(year=month[0], month=month[1], value=_ratio(last, base) - 1))
            month, base = (ts.year, ts.month), last
        last = equity
    months.append(MonthlyReturn(year=month[0], month=month[1], value=_ratio(last, base) - 1))
    return months


# --- Output ---------------------------------------------------------------------------------------------------


def write_report(report: PerformanceReport, equity_curve: Sequence[EquityPoint], out_dir: Path) -> dict[str, Path]:
    """Write `report.json` (the report's fields; money as decimal strings) and `tear_sheet.html`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "html": out_dir / "tear_sheet.html"}
    paths["json"].write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    paths["html"].write_text(render_tear_sheet(report, equity_curve), encoding="utf-8")
    return paths


def render_tear_sheet(report: PerformanceReport, equity_curve: Sequence[EquityPoint]) -> str:
    _check_curve(equity_curve)
    equity = [(ts, float(e)) for ts, e in equity_curve]
    peak = 0.0
    drawdowns = []
    for ts, value in equity:
        peak = max(peak, value)
        drawdowns.append((ts, value / peak - 1))
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=html.escape(f"Tear sheet {_date(report.start)} to {_date(report.end)}"),
        period=html.escape(f"{report.start:%Y-%m-%d %H:%M} to {report.end:%Y-%m-%d %H:%M} UTC, "
                           f"{report.periods} periods, {report.periods_per_year:g} per year"),
        metrics=_metrics_table(report),
        equity_svg=_line_chart(equity, label="Equity", color="#1f5fa8", axis_format=_money_axis),
        drawdown_svg=_line_chart(drawdowns, label="Drawdown", color="#b23b3b", axis_format=_percent_axis,
                                 area=True),
        monthly_svg=_monthly_heatmap(report.monthly_returns),
    )


def _date(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d")


def _pct(value: float | None, *, signed: bool = True) -> str:
    return "n/a" if value is None else f"{value:+.2%}" if signed else f"{value:.2%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _metrics_table(r: PerformanceReport) -> str:
    dd = r.max_drawdown
    recovery = "not recovered" if dd.recovery is None else f"recovered {_date(dd.recovery)}"
    rows = [
        ("Starting equity", _money(r.starting_equity)), ("Ending equity", _money(r.ending_equity)),
        ("Total return", _pct(r.total_return)), ("CAGR", _pct(r.cagr)),
        ("Annual volatility", _pct(r.annual_volatility, signed=False)), ("Sharpe", _num(r.sharpe)),
        ("Sortino", _num(r.sortino)), ("Max drawdown", _pct(dd.depth)),
        ("Drawdown duration", f"{_duration(dd.duration)} (peak {_date(dd.peak)}, {recovery})"),
        ("Calmar", _num(r.calmar)), ("Risk-free rate", _pct(r.risk_free_rate, signed=False)),
        ("Traded notional", _money(r.traded_notional)), ("Turnover", f"{r.turnover:.2f}x"),
        ("Fills", str(r.fills)), ("Round trips", f"{r.round_trips} ({r.winning_trips} winning)"),
        ("Hit rate", "n/a" if r.hit_rate is None else f"{r.hit_rate:.1%}"),
        ("Profit factor", _num(r.profit_factor)), ("Exposure", f"{r.exposure:.1%}"),
        ("Total fees", _money(r.total_fees)),
    ]
    return "\n".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)


def _duration(value: timedelta) -> str:
    days, seconds = value.days, value.seconds
    return f"{days}d {seconds // 3600}h" if days else f"{seconds // 3600}h {seconds % 3600 // 60}m"


def _money_axis(value: float, step: float) -> str:
    return f"{value:,.0f}" if step >= 1 else f"{value:,.2f}"


def _percent_axis(value: float, step: float) -> str:
    decimals = 0 if step >= 0.01 else 1 if step >= 0.001 else 2
    return f"{value:.{decimals}%}"


WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 16, 32


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high == low:
        high, low = high + (abs(high) or 1) * 0.01, low - (abs(low) or 1) * 0.01
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    # The tolerance keeps a float error from adding a whole empty step above `high`.
    return [first + i * step for i in range(math.ceil((high - first) / step - 1e-9) + 1)]


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """At most the lowest and highest point per pixel column, in time order: the shape stays, the size drops."""
    columns: dict[int, list[tuple[float, float]]] = {}
    for point in points:
        columns.setdefault(int(point[0]), []).append(point)
    kept: list[tuple[float, float]] = []
    for column in columns.values():
        low, high = min(column, key=lambda p: p[1]), max(column, key=lambda p: p[1])
        kept.extend(sorted({low, high}))
    return kept


def _line_chart(series: list[tuple[datetime, float]], *, label: str, color: str,
                axis_format: Callable[[float, float], str], area: bool = False) -> str:
    start, end = series[0][0], series[-1][0]
    span = (end - start).total_seconds()
    values = [v for _, v in series]
    ticks = _nice_ticks(min(values), max(values))
    low, high, step = ticks[0], ticks[-1], ticks[1] - ticks[0]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(ts: datetime) -> float:
        return LEFT + (ts - start).total_seconds() / span * plot_w

    def y(value: float) -> float:
        return TOP + (high - value) / (high - low) * plot_h

    points = _thin([(x(ts), y(v)) for ts, v in series])
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{html.escape(label)}">']
    for tick in ticks:
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" class="axis" text-anchor="end">'
                     f'{html.escape(axis_format(tick, step))}</text>')
    date_format = "%Y-%m-%d" if span > 3 * 86400 else "%m-%d %H:%M"
    for i in range(6):
        at = start + (end - start) * i / 5
        anchor = "start" if i == 0 else "end" if i == 5 else "middle"
        parts.append(f'<text x="{x(at):.1f}" y="{HEIGHT - 10}" class="axis" text-anchor="{anchor}">'
                     f'{at.astimezone(UTC).strftime(date_format)}</text>')
    if area:
        parts.append(f'<polygon points="{points[0][0]:.1f},{y(0):.1f} {path} {points[-1][0]:.1f},{y(0):.1f}" '
                     f'fill="{color}" fill-opacity="0.25" stroke="none"/>')
    parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/></svg>')
    return "\n".join(parts)


def _monthly_heatmap(months: Sequence[MonthlyReturn]) -> str:
    years = sorted({m.year for m in months})
    by_month = {(m.year, m.month): m.value for m in months}
    scale = max((abs(m.value) for m in months), default=0.0) or 1.0
    cell_w, cell_h, label_w, head_h = 64, 26, 56, 22
    width, height = label_w + 13 * cell_w, head_h + len(years) * cell_h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="Monthly returns">']
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"]
    for col, name in enumerate(names):
        parts.append(f'<text x="{label_w + col * cell_w + cell_w / 2}" y="15" class="axis" '
                     f'text-anchor="middle">{name}</text>')
    for row, year in enumerate(years):
        top = head_h + row * cell_h
        parts.append(f'<text x="{label_w - 8}" y="{top + 17}" class="axis" text-anchor="end">{year}</text>')
        in_year = [by_month[(year, m)] for m in range(1, 13) if (year, m) in by_month]
        cells = [by_month.get((year, m)) for m in range(1, 13)] + [math.prod(1 + v for v in in_year) - 1]
        for col, value in enumerate(cells):
            if value is None:
                continue
            shade = min(abs(value) / scale, 1.0) * 0.75 + 0.08
            fill = "46,139,87" if value >= 0 else "178,59,59"
            left = label_w + col * cell_w
            parts.append(f'<rect x="{left + 1}" y="{top + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                         f'fill="rgb({fill})" fill-opacity="{shade:.2f}"/>'
                         f'<text x="{left + cell_w / 2}" y="{top + 17}" class="cell" text-anchor="middle">'
                         f'{value:+.1%}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
