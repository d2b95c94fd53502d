"""Reconciliation reports, as the reconciliation sink writes them."""

from __future__ import annotations

from datetime import datetime

from api.schemas.common import Public
from core.reconcile import DiscrepancyKind, ReconciliationStatus
from core.types import ExecutionMode


class DiscrepancyPublic(Public):
    kind: DiscrepancyKind
    subject: str
    """An instrument, a currency, a client order id, or the read that failed (positions, balances, open_orders)."""
    ours: str | None
    """What our ledger holds, as a decimal string or an order state; absent when we hold nothing."""
    theirs: str | None
    """What the venue reports; absent when it reports nothing, or when its read failed."""
    detail: str


class ReconciliationReportPublic(Public):
    account_id: str
    venue: str
    """The connector the account was compared with."""
    at: datetime
    org_id: str
    user_id: str
    mode: ExecutionMode
    status: ReconciliationStatus
    """`unknown` when a venue read failed: nothing is concluded about what that read covers."""
    discrepancies: list[DiscrepancyPublic]
