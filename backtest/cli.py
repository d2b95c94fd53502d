"""`tradestream backtest STRATEGY --data PATH ...`: a typer sub-app with one command, `backtest` (mounted into the
`tradestream` app with `app.add_typer(backtest.cli.app)`, no name, so the command sits at the top level).

Loads and validates the data, runs the engine with a progress bar, writes trades, orders and the equity curve as
JSON plus the performance report (`backtest.reports`: JSON and HTML tear sheet), and prints the headline figures.
"""

from __future__ import annotations

import json
import statistics
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from backtest.data import DataError, MarketData, load_bars, load_quotes, market_data
from backtest.engine import Backtest, BacktestConfig, BacktestResult
from backtest.reports import build_report, periods_per_year_for, write_report
from connectors.simulated.market import default_catalog
from core.accounts import Account, Owner
from core.fill_model import FillModel, Latency, Slippage
from core.instruments import Instrument, InstrumentCatalog
from core.orders import OrderStatus
from core.policy import PolicyError, parse_policy_document
from core.risk import RiskPolicy
from core.strategy import STRATEGIES
from core.types import ExecutionMode
from tradestream.config import ConfigError, load_settings

app = typer.Typer(help="Backtest a strategy on historical bars and quotes.", pretty_exceptions_enable=False,
                  add_completion=False)
console = Console()

BACKTEST_OWNER = Owner(org_id="backtest", user_id="backtest")


@app.command()
def backtest(
    strategy: Annotated[str, typer.Argument(help=f"The strategy: {', '.join(sorted(STRATEGIES))}.")],
    data: Annotated[list[Path], typer.Option("--data", help="Bars, CSV or Parquet (ts = bar start); repeatable.")],
    quotes: Annotated[list[Path] | None, typer.Option("--quotes", help="Quotes CSV; repeatable.")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", help="Strategy parameter k=v; repeatable. "
                                                                    "A value starting with { or [ is JSON.")] = None,
    account_cash: Annotated[str, typer.Option(help="Starting cash of the paper account.")] = "1000000",
    out: Annotated[Path, typer.Option(help="Directory for the result files.")] = Path("backtest-out"),
    bar_interval: Annotated[str | None, typer.Option(help="Bar length, seconds or ISO 8601 (PT1M); "
                                                          "default: the smallest gap between bars.")] = None,
    spread_bps: Annotated[str, typer.Option(help="Spread around bar closes when there are no quotes.")] = "0",
    slippage_bps: Annotated[str, typer.Option(help="Fixed slippage on taker fills.")] = "0",
    latency_ms: Annotated[int, typer.Option(help="Routing-to-venue latency.")] = 0,
    instruments: Annotated[Path | None, typer.Option(help="JSON list of instruments; default: the simulated "
                                                          "venue's catalog.")] = None,
    policy: Annotated[Path | None, typer.Option(help="TOML risk policy book; default: the configured risk "
                                                     "policy.")] = None,
) -> None:
    """Run STRATEGY over the data with the same risk gate, order handling, fill model and ledger as paper trading."""
    strategy_cls = STRATEGIES.get(strategy)
    if strategy_cls is None:
        _fail(f"unknown strategy {strategy!r}; known: {', '.join(sorted(STRATEGIES))}")
    account = Account(account_id="backtest", owner=BACKTEST_OWNER, mode=ExecutionMode.PAPER,
                      starting_cash=_decimal("--account-cash", account_cash))
    try:
        config = BacktestConfig(
            account=account, policy=_policy(policy, account),
            fill_model=FillModel(slippage=Slippage(fixed_bps=_decimal("--slippage-bps", slippage_bps)),
                                 latency=Latency(fixed=timedelta(milliseconds=latency_ms))),
            bar_spread_bps=_decimal("--spread-bps", spread_bps))
        instance = strategy_cls(f"{strategy}-backtest", _params(param or []))
        interval = TypeAdapter(timedelta).validate_python(bar_interval) if bar_interval else None
        catalog = _catalog(instruments)
    except ValidationError as exc:
        _fail(_problems(exc))
    with console.status("loading data"):
        try:
            market = market_data(load_bars(data, interval), load_quotes(quotes or []))
        except DataError as exc:
            _fail(str(exc))
    unknown = sorted({e.instrument_id for e in market.events} - {i.instrument_id for i in catalog})
    if unknown:
        _fail(f"instruments not in the catalog: {', '.join(unknown)} (give them with --instruments)")
    result = _run(Backtest(instance, config, catalog, market), market)
    _report(result, catalog, out)


def _run(engine: Backtest, market: MarketData) -> BacktestResult:
    columns = (TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("events", total=len(market.events))
        return engine.run(lambda done: progress.update(task, completed=done))


def _report(result: BacktestResult, catalog: InstrumentCatalog, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "trades": _write(out / "trades.json", [f.model_dump(mode="json") for f in result.trades]),
        "orders": _write(out / "orders.json", [o.model_dump(mode="json") for o in result.orders]),
        "equity": _write(out / "equity.json", [[t.isoformat(), str(e)] for t, e in result.equity_curve]),
    }
    curve = result.equity_curve
    rejected = sum(1 for o in result.orders if o.status is OrderStatus.REJECTED)
    console.print(f"orders {len(result.orders)} (rejected {rejected}, duplicate keys {len(result.duplicates)}), "
                  f"trades {len(result.trades)}, fees {result.fees}")
    try:
        # Bars per year from the spacing of the curve's points: the bar length, or the typical quote gap.
        period = statistics.median_low(b[0] - a[0] for a, b in pairwise(curve))
        report = build_report(curve, result.trades, periods_per_year=periods_per_year_for(period),
                              multipliers={i.instrument_id: i.multiplier for i in catalog})
    except (ValueError, statistics.StatisticsError) as exc:
        console.print(f"[yellow]no performance report: {exc}[/yellow]", highlight=False)
    else:
        paths.update({f"report {kind}": path for kind, path in write_report(report, curve, out).items()})
        console.print(f"total return {report.total_return:.4%}, max drawdown {report.max_drawdown.depth:.4%}, "
                      f"Sharpe {'n/a' if report.sharpe is None else f'{report.sharpe:.3f}'}, "
                      f"trades {report.fills}, fees {report.total_fees}")
    for name, path in paths.items():
        console.print(f"  {name}: {path}", highlight=False)


def _write(path: Path, payload: Any) -> Path:
    path.write_bytes(orjson.dumps(payload))
    return path


def _params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--param {pair!r}: expected key=value")
        try:
            # JSON numbers with a fraction become Decimal: a float never reaches a parameter.
            params[key] = json.loads(value, parse_float=Decimal) if value[:1] in "{[" else value
        except json.JSONDecodeError as exc:
            _fail(f"--param {key}: not valid JSON: {exc}")
    return params


def _policy(path: Path | None, account: Account) -> RiskPolicy:
    if path is None:
        try:
            return load_settings().risk
        except ConfigError as exc:
            _fail(str(exc))
    try:
        chosen = parse_policy_document(path.read_text(encoding="utf-8"), str(path)).for_account(account)
    except (OSError, PolicyError) as exc:
        _fail(str(exc))
    if chosen is None:
        _fail(f"{path}: no policy for account {account.account_id} (or its organisation, or a default one)")
    return chosen


def _catalog(path: Path | None) -> InstrumentCatalog:
    if path is None:
        return default_catalog()
    try:
        return InstrumentCatalog(TypeAdapter(list[Instrument]).validate_json(path.read_bytes()))
    except ValidationError as exc:
        _fail(f"{path}: {_problems(exc)}")
    except (OSError, ValueError) as exc:  # unreadable, or an instrument id twice
        _fail(f"{path}: {exc}")


def _decimal(option: str, value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        _fail(f"{option}: {value!r} is not a decimal number")


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())


def _fail(message: str) -> NoReturn:
    console.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(2)
