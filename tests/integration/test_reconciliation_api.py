"""Reconciliation reports from the topic to the API: published as `tradestream reconcile` publishes them, stored
by the reconciliation sink in the real Postgres, read through GET /v1/reconciliation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
import pytest_asyncio

from agents.reconciliation import publish_reports
from api.app import create_app
from core.accounts import Account
from core.reconcile import ReadOutcome, ReconciliationReport, VenueSnapshot, reconcile
from core.types import ExecutionMode
from core.venue import Balance, VenuePosition
from sinks.reconciliation import ReconciliationSink
from streams.kafka import ensure_topics
from streams.topics import DEAD_LETTER, RECONCILIATION
from tests.kit.builders import OWNER, T0, account
from tests.kit.sinks import running
from tests.kit.waiting import eventually
from tradestream.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

BTC = "crypto_spot:BTC-USD"
LIVE = account(ExecutionMode.LIVE, account_id="live-1")
SHADOW = account(ExecutionMode.SHADOW, account_id="shadow-1")
OK = ReadOutcome(ok=True)


def report(acct: Account, venue: str, at_seconds: int, theirs_btc: str | None, theirs_usd: str) -> ReconciliationReport:
    """Our ledger holds 1.5 BTC and 1000.00 USD; the venue reports `theirs_*` (None: its positions read failed)."""
    positions = None if theirs_btc is None else (
        VenuePosition(instrument_id=BTC, venue_symbol="BTC-USD", quantity=Decimal(theirs_btc)),)
    snapshot = VenueSnapshot(
        positions=positions, positions_read=OK if positions is not None else ReadOutcome(ok=False, error="HTTP 503"),
        balances=(Balance(currency="USD", total=Decimal(theirs_usd), available=Decimal(theirs_usd)),),
        balances_read=OK, open_orders=(), orders_read=OK)
    return reconcile(acct, venue, T0 + timedelta(seconds=at_seconds), {BTC: Decimal("1.5")},
                     {"USD": Decimal("1000.00")}, [], snapshot)


REPORTS = [
    report(SHADOW, "coinbase", 1, "1.5", "1000.00"),  # matched
    report(LIVE, "coinbase", 2, "1.25", "990.5"),  # mismatched: position and cash
    report(LIVE, "coinbase", 3, None, "1000.00"),  # unknown: the positions read failed
    report(LIVE, "ibkr", 4, "1.5", "1000.00"),  # matched
]
MISMATCHES = [
    {"kind": "position_mismatch", "subject": BTC, "ours": "1.5", "theirs": "1.25", "detail": ""},
    {"kind": "cash_mismatch", "subject": "USD", "ours": "1000.00", "theirs": "990.5", "detail": ""},
]
READ_FAILED = [{"kind": "read_failed", "subject": "positions", "ours": None, "theirs": None, "detail": "HTTP 503"}]


@pytest.fixture(scope="module")
def stored(settings: Settings) -> Settings:
    """The module's settings with the live and shadow accounts, and REPORTS published and stored by the sink."""
    configured = settings.model_copy(update={"accounts": [*settings.accounts, LIVE, SHADOW]})
    ensure_topics(configured, [RECONCILIATION, DEAD_LETTER])
    publish_reports(configured, REPORTS)
    with psycopg.connect(configured.dsn) as conn, running(ReconciliationSink(configured)):
        eventually(lambda: conn.execute("SELECT count(*) FROM reconciliation_reports").fetchone() == (len(REPORTS),),
                   what="the published reports in Postgres")
    return configured


@pytest_asyncio.fixture(loop_scope="session")
async def client(stored: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(stored)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api") as running_client:
        yield running_client


def summary(reports: list[dict[str, Any]]) -> list[tuple[str, str, datetime, str]]:
    return [(r["account_id"], r["venue"], datetime.fromisoformat(r["at"]), r["status"]) for r in reports]


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def test_list_when_reports_were_published_then_newest_first_with_owner_and_differences(
        client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/reconciliation")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 4
    assert summary(body["data"]) == [("live-1", "ibkr", at(4), "matched"), ("live-1", "coinbase", at(3), "unknown"),
                                     ("live-1", "coinbase", at(2), "mismatched"),
                                     ("shadow-1", "coinbase", at(1), "matched")]
    mismatched = body["data"][2]
    assert (mismatched["org_id"], mismatched["user_id"], mismatched["mode"]) == (OWNER.org_id, OWNER.user_id, "live")
    assert mismatched["discrepancies"] == MISMATCHES
    assert body["data"][0]["discrepancies"] == []


async def test_list_when_filtered_then_only_the_matching_reports(client: httpx.AsyncClient) -> None:
    shadow = await client.get("/v1/reconciliation", params={"account_id": "shadow-1"})
    differences = await client.get("/v1/reconciliation", params={"only_differences": "true"})
    unknown = await client.get("/v1/reconciliation", params={"status": "unknown"})
    newest = await client.get("/v1/reconciliation", params={"account_id": "live-1", "limit": 1})

    assert summary(shadow.json()["data"]) == [("shadow-1", "coinbase", at(1), "matched")]
    # An unknown report is a difference: nothing may be concluded from it.
    assert summary(differences.json()["data"]) == [("live-1", "coinbase", at(3), "unknown"),
                                                   ("live-1", "coinbase", at(2), "mismatched")]
    (only,) = unknown.json()["data"]
    assert (only["status"], only["discrepancies"]) == ("unknown", READ_FAILED)
    assert summary(newest.json()["data"]) == [("live-1", "ibkr", at(4), "matched")]


async def test_latest_when_account_was_reconciled_then_its_newest_report_per_venue(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/reconciliation/live-1/latest")

    assert response.status_code == 200, response.text
    # coinbase's newest report is the unknown one: the earlier mismatch is not shown as if it were current.
    assert summary(response.json()["data"]) == [("live-1", "coinbase", at(3), "unknown"),
                                                ("live-1", "ibkr", at(4), "matched")]
    assert response.json()["data"][0]["discrepancies"] == READ_FAILED


async def test_latest_when_account_unknown_or_never_reconciled_then_404_with_reason(
        client: httpx.AsyncClient) -> None:
    unknown = await client.get("/v1/reconciliation/nobody/latest")
    never = await client.get("/v1/reconciliation/paper-main/latest")

    assert unknown.status_code == 404 and unknown.json()["error"] == "UNKNOWN_ACCOUNT"
    assert never.status_code == 404 and never.json()["error"] == "RECONCILIATION_NOT_FOUND"
    assert "paper-main" in never.json()["detail"]


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/v1/reconciliation", {"limit": 0}, "query.limit"),
    ("/v1/reconciliation", {"limit": 1001}, "query.limit"),
    ("/v1/reconciliation", {"status": "flat"}, "query.status"),
    ("/v1/reconciliation", {"only_differences": "maybe"}, "query.only_differences"),
    ("/v1/reconciliation", {"account_id": ""}, "query.account_id"),
    ("/v1/reconciliation/bad id!/latest", {}, "path.account_id"),
])
async def test_when_a_parameter_is_invalid_then_422_naming_it(client: httpx.AsyncClient, path: str,
                                                               params: dict[str, Any], field: str) -> None:
    response = await client.get(path, params=params)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "VALIDATION_ERROR"
    assert [f["field"] for f in response.json()["fields"]] == [field]
