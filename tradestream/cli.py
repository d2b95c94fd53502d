"""The `tradestream` command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from backtest.cli import app as backtest_app
from tradestream.config import ConfigError, Settings, load_settings
from tradestream.logging import configure_logging

if TYPE_CHECKING:
    from connectors.registry import ConnectorRegistry, HealthCheck

app = typer.Typer(help="tradestream: a multi-asset trading platform on Kafka.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console()


def _settings(service: str) -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]", markup=True, highlight=False)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, service)
    return settings


@app.command()
def run(duration: Annotated[float | None, typer.Option(help="Stop after this many seconds and print a summary.")]
        = None) -> None:
    """Run a paper session: feed, strategy, risk, OMS, fills, portfolio, sinks and the API."""
    from tradestream.session import run_session

    settings = _settings("session")
    try:
        run_session(settings, duration if duration and duration > 0 else None, console)
    except ConfigError as exc:  # e.g. topics that exist with another partition count
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def worker() -> None:
    """Run the stream worker (Faust agents)."""
    from core.policy import PolicyError
    from tradestream.processes import run_worker_process

    try:
        run_worker_process(_settings("worker"))
    except PolicyError as exc:
        console.print(f"[red]invalid risk policy file: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    except ConfigError as exc:  # e.g. a connector section that its loader refuses
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def feed() -> None:
    """Run the simulated market-data feed."""
    from tradestream.processes import run_feed_process

    run_feed_process(_settings("feed"))


@app.command()
def sinks() -> None:
    """Run the database sinks."""
    from tradestream.processes import run_sinks_process

    run_sinks_process(_settings("sinks"))


@app.command()
def api() -> None:
    """Run the HTTP API."""
    from tradestream.processes import run_api_process

    run_api_process(_settings("api"))


@app.command()
def init() -> None:
    """Create the topics and the database schema (idempotent)."""
    from sinks.schema import apply_schema
    from streams.kafka import ensure_topics

    settings = _settings("init")
    try:
        created = ensure_topics(settings)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"topics created: {', '.join(created) or 'none (all existed)'}")
    console.print(f"schema: {apply_schema(settings.dsn)}")


@app.command("import")
def import_history(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The file to import.")],
    fmt: Annotated[str, typer.Option("--format", help="bars-csv, bars-parquet, trades-csv, trades-parquet, "
                                                      "coinbase-candles or kalshi-trades")],
    instrument_id: Annotated[str | None, typer.Option(help="Canonical instrument id, for formats without one "
                                                           "(Coinbase candles).")] = None,
    parquet_dir: Annotated[Path | None, typer.Option(help="Also write the rows to Parquet here.")] = None,
) -> None:
    """Import historical bars or trades into Postgres (and Parquet); bad rows are listed, none dropped silently."""
    from backtest.formats.common import FileFormatError
    from backtest.importer import HistoryFormat, import_file
    from sinks.schema import apply_schema

    settings = _settings("import")
    apply_schema(settings.dsn)
    try:
        summary = import_file(path, HistoryFormat(fmt), settings.dsn, instrument_id=instrument_id,
                              parquet_dir=parquet_dir)
    except (FileFormatError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"{summary.file}: read {summary.rows_read}, imported {summary.imported}, duplicates "
                  f"{summary.duplicates}, bad {summary.bad}" +
                  (f"; parquet {summary.parquet_path}" if summary.parquet_path else ""))
    for bad in summary.bad_rows:
        console.print(f"  bad row: {bad}", highlight=False, markup=False)
    if summary.bad:
        raise typer.Exit(1)


app.add_typer(backtest_app)  # no name: typer then parses `backtest STRATEGY --data ...` as one command
@app.command()
def replay(topic: Annotated[str, typer.Argument(help="A recorded quotes topic (full name), e.g. an earlier "
                                                     "session's md.quotes.")]) -> None:
    """Replay a recorded market-data topic into md.quotes at its recorded pace, re-stamped to now."""
    from datetime import UTC, datetime

    from backtest.replay import read_recorded_quotes, restamped
    from backtest.replay import replay as replay_quotes

    settings = _settings("replay")
    quotes = read_recorded_quotes(settings, topic)
    if not quotes:
        console.print(f"[red]{topic}: no quotes to replay[/red]", highlight=False)
        raise typer.Exit(1)
    span = (quotes[-1].ts - quotes[0].ts).total_seconds()
    console.print(f"replaying {len(quotes)} quotes spanning {span:.0f} s from {topic}")
    console.print(f"published {replay_quotes(settings, restamped(quotes, datetime.now(UTC)))} quotes")


audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit hash chain; exit 1 naming the first broken entry."""
    import psycopg

    from core.audit import verify_chain
    from sinks.audit import load_chain

    settings = _settings("audit")
    with psycopg.connect(settings.dsn) as conn, conn.cursor() as cur:
        entries = load_chain(cur)
    broken = verify_chain(entries)
    if broken is not None:
        console.print(f"[red]audit chain broken at entry {broken.seq}: {broken.reason}[/red]", highlight=False)
        raise typer.Exit(1)
    console.print(f"audit chain intact: {len(entries)} entries" +
                  (f", last hash {entries[-1].hash}" if entries else ""))


connectors_app = typer.Typer(help="The venue connectors.", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")


def _registry(settings: Settings) -> ConnectorRegistry:
    from connectors.registry import build_registry
    from connectors.simulated.market import default_catalog

    try:
        return build_registry(settings.connectors, default_catalog())
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


@connectors_app.command("check")
def connectors_check(listen: Annotated[float, typer.Option(
        help="Seconds each connector streams its instruments' quotes before its health is read, so the market "
             "data mode and fallback are what a worker would see (0: skip).", min=0)] = 2.0) -> None:
    """Each enabled connector's health, capabilities, latency and the fallback in use; exit 1 when one is
    unreachable."""
    import asyncio
    from datetime import UTC, datetime

    from rich.markup import escape
    from rich.table import Table

    from connectors.http import redact
    from core.venue import connector_status

    registry = _registry(_settings("connectors"))
    if not registry.bindings:
        console.print("no connector is enabled (settings: connectors.kalshi, connectors.coinbase, connectors.ibkr)")
        return

    async def check() -> list[HealthCheck]:
        try:
            return await registry.check(listen_s=listen)
        finally:
            await registry.close()

    results = asyncio.run(check())
    table = Table("connector", "reachable", "authenticated", "latency ms", "market data", "fallback", "capabilities",
                  "detail", title="connectors")
    for result in results:
        caps = result.binding.connector.capabilities
        capabilities = (f"{', '.join(sorted(a.value for a in caps.asset_classes))}; "
                        f"{', '.join(sorted(t.value for t in caps.order_types))}; "
                        f"tif {', '.join(sorted(t.value for t in caps.time_in_force))}; "
                        f"streaming md={caps.streaming_market_data} fills={caps.streaming_fills}; "
                        f"fractional={caps.fractional_quantities}")
        health = result.health
        if health is None:
            table.add_row(result.binding.name, "[red]no[/red]", "?", "-", "-", "-", capabilities,
                          escape(redact(result.error)))
            continue
        # The fallback as /health names it: one rule (core.venue.connector_status) for both.
        status = connector_status(result.binding.name, result.binding.venue, health, (), None, datetime.now(UTC))
        table.add_row(result.binding.name, "yes" if health.reachable else "[red]no[/red]",
                      "yes" if health.authenticated else "[red]no[/red]",
                      f"{health.latency_ms:.1f}" if health.latency_ms is not None else "-",
                      health.market_data_mode.value, status.fallback or "-", capabilities,
                      escape(redact(health.detail)))
    console.print(table)
    if not all(result.reachable for result in results):
        raise typer.Exit(1)


@app.command()
def reconcile(account: Annotated[list[str] | None, typer.Option(help="Only this account (repeatable).")] = None
              ) -> None:
    """Compare each live and shadow account with its venue and publish the reports; never places an order.
    Exit 0 when all match, 1 when one is mismatched, 3 when one is unknown (a venue read failed)."""
    import asyncio

    from rich.markup import escape
    from rich.table import Table

    from agents.reconciliation import publish_reports, reconcile_all
    from connectors.simulated.market import default_catalog
    from core.reconcile import ReconciliationReport, ReconciliationStatus

    settings = _settings("reconcile")
    registry = _registry(settings)

    async def run() -> list[ReconciliationReport]:
        try:
            return await reconcile_all(settings, registry, default_catalog(), account or ())
        finally:
            await registry.close()

    reports = asyncio.run(run())
    if not reports:
        console.print("no live or shadow account trades through an enabled connector: nothing to reconcile")
        return
    publish_reports(settings, reports)
    table = Table("account", "connector", "status", "kind", "subject", "ours", "theirs", "detail",
                  title="reconciliation")
    for report in reports:
        table.add_row(report.account_id, report.venue, report.status.value.upper())
        for found in report.discrepancies:
            table.add_row("", "", "", found.kind.value, escape(found.subject), escape(found.ours or "-"),
                          escape(found.theirs or "-"), escape(found.detail))
    console.print(table)
    statuses = {report.status for report in reports}
    codes = ((ReconciliationStatus.UNKNOWN, 3), (ReconciliationStatus.MISMATCHED, 1))
    raise typer.Exit(next((code for status, code in codes if status in statuses), 0))


@app.command("config")
def show_config() -> None:
    """Validate the configuration and print it (secrets masked)."""
    settings = _settings("config")
    console.print_json(settings.model_dump_json())


def main() -> None:
    app()
