"""Every Grafana panel's SQL runs against the real schema (macros expanded as Grafana does) and returns the
columns the panel expects, on empty tables and with data; the pusher talks to Grafana's HTTP API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from core.fills import Fill
from core.ledger import PnlSnapshot, Position
from core.orders import OrderStatus, new_order
from core.reconcile import ReadOutcome, VenueSnapshot, reconcile
from core.types import ExecutionMode, Liquidity
from dashboards.push import DASHBOARD_DIR, load_dashboards, push_dashboards
from sinks.base import build_dead_letter
from sinks.dead_letters import dead_letter_row
from sinks.orders import fill_row, order_row
from sinks.portfolio import pnl_row, position_row
from sinks.reconciliation import report_row
from sinks.schema import (
    DEAD_LETTERS,
    FILLS,
    ORDERS,
    PNL_SNAPSHOTS,
    POSITIONS,
    RECONCILIATION_REPORTS,
    TICKS,
    Table,
    insert_statement,
    json_dumps,
)
from streams.records import PositionUpdated
from tests.kit.builders import OWNER, account, intent
from tradestream.config import Settings

pytestmark = pytest.mark.integration

DATASOURCE_UID = "tradestream-pg"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)  # rows a second apart share a 1-minute bucket
TIME_FROM, TIME_TO = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
INTERVAL_MS = 60_000
BTC, ETH = "crypto_spot:BTC-USD", "crypto_spot:ETH-USD"

EXPECTED_COLUMNS: dict[tuple[str, str], list[str]] = {
    ("tradestream-market-data", "Ticks per instrument"): ["time", "metric", "ticks"],
    ("tradestream-market-data", "Spread (bps)"): ["time", "metric", "spread_bps"],
    ("tradestream-market-data", "Mid price"): ["time", "metric", "mid"],
    ("tradestream-market-data", "Tick rate (per second)"): ["ticks_per_second"],
    ("tradestream-market-data", "Latest quote per instrument"): [
        "instrument_id", "ts", "bid", "ask", "bid_size", "ask_size", "spread_bps", "seq"],
    ("tradestream-trading", "Orders created by status"): ["time", "metric", "orders"],
    ("tradestream-trading", "Orders by reason code"): ["reason_code", "orders"],
    ("tradestream-trading", "Orders by status and mode"): [
        "status", "requested_mode", "effective_mode", "orders", "filled_quantity"],
    ("tradestream-trading", "Fills and notional"): ["time", "fills", "notional", "fees"],
    ("tradestream-trading", "Recent fills"): [
        "ts", "account_id", "instrument_id", "side", "quantity", "price", "fee", "liquidity", "mode", "venue",
        "venue_trade_id", "trace_id"],
    ("tradestream-trading", "Positions"): [
        "account_id", "instrument_id", "mode", "quantity", "average_price", "multiplier", "realized_pnl",
        "fees_paid", "updated_at"],
    ("tradestream-trading", "Equity"): ["time", "metric", "equity"],
    ("tradestream-trading", "PnL"): ["time", "metric", "realized", "unrealized", "fees"],
    ("tradestream-trading", "Dead letters by consumer"): ["time", "metric", "dead_letters"],
    ("tradestream-trading", "Recent dead letters"): [
        "at", "consumer", "source_topic", "partition", "offset", "key", "error"],
    ("tradestream-trading", "Latest reconciliation"): ["account_id", "venue", "at", "mode", "status", "differences"],
}


def all_panels() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(dashboard, panel) for every panel, rows' nested panels included."""
    out = []
    for dashboard in load_dashboards():
        stack = list(dashboard["panels"])
        while stack:
            panel = stack.pop(0)
            stack.extend(panel.get("panels", []))
            if panel["type"] != "row":
                out.append((dashboard, panel))
    return out


PANELS = all_panels()
PANEL_IDS = [f"{d['uid']}:{p['title']}" for d, p in PANELS]


def grafana_time(value: datetime) -> str:
    """How Grafana's Postgres datasource expands $__timeFrom() / $__timeTo(): a quoted RFC 3339 literal."""
    return f"'{value:%Y-%m-%dT%H:%M:%SZ}'"


def expand(sql: str, variables: dict[str, list[str]]) -> str:
    """Substitute the macros and variables the dashboards use, as Grafana would, and nothing else."""
    out = (sql.replace("$__timeFrom()", grafana_time(TIME_FROM)).replace("$__timeTo()", grafana_time(TIME_TO))
           .replace("$__interval_ms", str(INTERVAL_MS)))
    for name, values in variables.items():
        # A multi-value variable on "All" expands to every option, each quoted; no options gives ''.
        quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values) or "''"
        out = out.replace(f"${name}", quoted)
    assert "$" not in out, f"unexpanded macro or variable left in: {out}"
    return out


def variable_values(conn: psycopg.Connection[Any], dashboard: dict[str, Any]) -> dict[str, list[str]]:
    return {v["name"]: [str(r[0]) for r in conn.execute(expand(v["query"], {})).fetchall()]
            for v in dashboard["templating"]["list"]}


def run_panel(settings: Settings, dashboard: dict[str, Any], panel: dict[str, Any]) -> tuple[list[str], list[Any]]:
    (target,) = panel["targets"]
    with psycopg.connect(settings.dsn) as conn:
        cur = conn.execute(expand(target["rawSql"], variable_values(conn, dashboard)))
        assert cur.description is not None
        return [c.name for c in cur.description], cur.fetchall()


def insert(conn: psycopg.Connection[Any], table: Table, rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(insert_statement(table), rows)


@pytest.fixture
def empty(settings: Settings) -> Settings:
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE ticks, orders, fills, positions, pnl_snapshots, dead_letters, reconciliation_reports")
    return settings


@pytest.fixture
def filled(empty: Settings) -> Settings:
    """A few rows in every table, ten minutes ago, written as the sinks write them."""
    at = NOW - timedelta(minutes=10)
    i = intent(quantity="2", limit_price="100.5")
    order = new_order(i, "APPROVED", "", at).transition(OrderStatus.PENDING_SUBMIT, at,
                                                        effective_mode=ExecutionMode.PAPER)
    rejected = new_order(intent(key="k2"), "MAX_ORDER_NOTIONAL_EXCEEDED", "notional=5200 limit=5000", at) \
        .transition(OrderStatus.REJECTED, at)
    fill = Fill(venue="paper", venue_trade_id="t-1", order_id=order.order_id, trace_id=i.trace_id,
                account_id=i.account_id, owner=OWNER, strategy_id=i.strategy_id, instrument_id=BTC, side=i.side,
                quantity=Decimal(2), price=Decimal("100.4"), fee=Decimal("0.01"), liquidity=Liquidity.TAKER,
                mode=ExecutionMode.PAPER, ts=at)
    position = PositionUpdated(account_id=i.account_id, owner_org_id=OWNER.org_id, owner_user_id=OWNER.user_id,
                               mode="paper", ts=at, position=Position(instrument_id=BTC, quantity=Decimal(2),
                                                                      average_price=Decimal("100.4")))
    snapshot = PnlSnapshot(account_id=i.account_id, owner=OWNER, mode=ExecutionMode.PAPER, ts=at,
                           cash=Decimal("99799.19"), realized_pnl=Decimal(0), unrealized_pnl=Decimal("0.2"),
                           fees=Decimal("0.01"), equity=Decimal("99999.99"))
    letter = build_dead_letter(topic="md.quotes", partition=0, offset=9, key=b"k", value=b"{", error="Invalid JSON",
                               consumer="sink:ticks", at=at)
    failed, ok = ReadOutcome(ok=False, error="HTTP 503"), ReadOutcome(ok=True)
    unknown = reconcile(account(ExecutionMode.LIVE, i.account_id), "coinbase", at, {BTC: Decimal(2)}, {}, [],
                        VenueSnapshot(positions=None, positions_read=failed, balances=(), balances_read=ok,
                                      open_orders=None, orders_read=failed))
    *report, discrepancies = report_row(unknown)
    with psycopg.connect(empty.dsn) as conn:
        insert(conn, TICKS, [(at, BTC, Decimal("100.00"), Decimal("100.10"), Decimal(1), Decimal(1), 1),
                             (at + timedelta(seconds=1), BTC, Decimal("100.00"), Decimal("100.20"), Decimal(1),
                              Decimal(2), 2),
                             (at, ETH, Decimal("3000"), Decimal("3001"), Decimal(5), Decimal(5), 1)])
        insert(conn, ORDERS, [order_row(order), order_row(rejected)])
        insert(conn, FILLS, [fill_row(fill)])
        insert(conn, POSITIONS, [position_row(position)])
        insert(conn, PNL_SNAPSHOTS, [pnl_row(snapshot, i.trace_id)])
        insert(conn, DEAD_LETTERS, [dead_letter_row(letter)])
        insert(conn, RECONCILIATION_REPORTS, [(*report, Jsonb(discrepancies, dumps=json_dumps))])
    return empty


def test_every_panel_has_its_expected_columns_listed() -> None:
    assert sorted(f"{d['uid']}:{p['title']}" for d, p in PANELS) == sorted(f"{u}:{t}" for u, t in EXPECTED_COLUMNS)
    assert {d["uid"] for d in load_dashboards()} == {"tradestream-market-data", "tradestream-trading"}


@pytest.mark.parametrize(("dashboard", "panel"), PANELS, ids=PANEL_IDS)
def test_panel_sql_runs_on_the_empty_schema(empty: Settings, dashboard: dict[str, Any], panel: dict[str, Any]) -> None:
    columns, _ = run_panel(empty, dashboard, panel)
    assert columns == EXPECTED_COLUMNS[(dashboard["uid"], panel["title"])]


@pytest.mark.parametrize(("dashboard", "panel"), PANELS, ids=PANEL_IDS)
def test_panel_sql_returns_data(filled: Settings, dashboard: dict[str, Any], panel: dict[str, Any]) -> None:
    columns, rows = run_panel(filled, dashboard, panel)
    assert columns == EXPECTED_COLUMNS[(dashboard["uid"], panel["title"])]
    assert rows, f"{panel['title']} returned nothing"
    (target,) = panel["targets"]
    if target["format"] == "time_series":
        assert columns[0] == "time" and all(isinstance(r[0], datetime) for r in rows)
        assert [r[0] for r in rows] == sorted(r[0] for r in rows), "Grafana needs time series sorted by time"


def test_panel_values_are_what_was_written(filled: Settings) -> None:
    by_title = {p["title"]: (d, p) for d, p in PANELS}
    _, ticks = run_panel(filled, *by_title["Ticks per instrument"])
    assert sorted((metric, n) for _, metric, n in ticks) == [(BTC, 2), (ETH, 1)]
    _, spreads = run_panel(filled, *by_title["Latest quote per instrument"])
    assert [(r[0], r[-1], round(r[6], 4)) for r in spreads] == [(BTC, 2, Decimal("19.9800")),
                                                                 (ETH, 1, Decimal("3.3328"))]
    _, reasons = run_panel(filled, *by_title["Orders by reason code"])
    assert reasons == [("APPROVED", 1), ("MAX_ORDER_NOTIONAL_EXCEEDED", 1)]
    _, reconciliations = run_panel(filled, *by_title["Latest reconciliation"])
    assert [(r[0], r[1], r[4], r[5]) for r in reconciliations] == [("acct-1", "coinbase", "unknown", 2)]


def test_variable_queries_list_what_was_written(filled: Settings) -> None:
    dashboards = {d["uid"]: d for d in load_dashboards()}
    with psycopg.connect(filled.dsn) as conn:
        assert variable_values(conn, dashboards["tradestream-market-data"]) == {"instrument": [BTC, ETH]}
        assert variable_values(conn, dashboards["tradestream-trading"]) == {"account": ["acct-1"]}


def test_every_panel_and_variable_uses_the_provisioned_datasource() -> None:
    provisioning = (DASHBOARD_DIR.parent / "provisioning" / "datasources" / "tradestream.yaml").read_text()
    assert f"uid: {DATASOURCE_UID}" in provisioning
    for _, panel in PANELS:
        assert panel["datasource"]["uid"] == DATASOURCE_UID
        assert all(t["datasource"]["uid"] == DATASOURCE_UID for t in panel["targets"])
    for dashboard in load_dashboards():
        assert all(v["datasource"]["uid"] == DATASOURCE_UID for v in dashboard["templating"]["list"])


# -- the pusher against a stand-in Grafana HTTP API ---------------------------------------------------------

class _FakeGrafana(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, str | None, Any]]] = []

    def do_GET(self) -> None:
        self._record(None)
        self._reply(404, {"message": "folder not found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._record(body)
        if self.path == "/api/folders":
            self._reply(200, {"uid": body["uid"], "title": body["title"]})
        else:
            self._reply(200, {"status": "success", "uid": body["dashboard"]["uid"], "version": 1})

    def _record(self, body: Any) -> None:
        self.requests.append((self.command, self.path, self.headers.get("Authorization"), body))

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on what was requested."""


@pytest.fixture
def fake_grafana() -> Iterator[str]:
    _FakeGrafana.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeGrafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_push_creates_the_folder_and_overwrites_each_dashboard_without_logging_the_token(
        fake_grafana: str, capfd: pytest.CaptureFixture[str]) -> None:
    token = "glsa_not-a-real-token-0123456789"

    uids = push_dashboards(fake_grafana, SecretStr(token), folder_uid="ts-folder")

    assert uids == [d["uid"] for d in load_dashboards()]
    calls = [(method, path) for method, path, _, _ in _FakeGrafana.requests]
    assert calls == [("GET", "/api/folders/ts-folder"), ("POST", "/api/folders"),
                     ("POST", "/api/dashboards/db"), ("POST", "/api/dashboards/db")]
    assert {auth for _, _, auth, _ in _FakeGrafana.requests} == {f"Bearer {token}"}
    pushed = [body for _, path, _, body in _FakeGrafana.requests if path == "/api/dashboards/db"]
    assert [(b["dashboard"]["uid"], b["dashboard"]["id"], b["folderUid"], b["overwrite"]) for b in pushed] == [
        (uid, None, "ts-folder", True) for uid in uids]
    assert pushed[0]["dashboard"]["panels"] == load_dashboards()[0]["panels"]
    out, err = capfd.readouterr()
    assert "grafana_dashboard_pushed" in out + err
    assert token not in out + err


def test_dashboard_files_are_valid_json_with_unique_panel_ids() -> None:
    for path in Path(DASHBOARD_DIR).glob("*.json"):
        dashboard = json.loads(path.read_text())
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path.name
