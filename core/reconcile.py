"""Reconciliation: compare what our ledger and OMS believe with what a venue reports.

A read that failed or came back partial is UNKNOWN for what it covered, never "flat" or "no orders": acting on
a failed read is how peers liquidated real positions. Reconciliation only reports; it never places an order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import model_validator

from core.accounts import Account, Owner
from core.types import ZERO, ExecutionMode, Frozen, UtcDatetime
from core.venue import Balance, VenueOrder, VenuePosition


class ReadOutcome(Frozen):
    """One read of the venue: ok with its items, or failed with the reason (then items is None)."""

    ok: bool
    error: str = ""


class VenueSnapshot(Frozen):
    positions: tuple[VenuePosition, ...] | None
    positions_read: ReadOutcome
    balances: tuple[Balance, ...] | None
    balances_read: ReadOutcome
    open_orders: tuple[VenueOrder, ...] | None
    orders_read: ReadOutcome


class DiscrepancyKind(StrEnum):
    POSITION_MISMATCH = "position_mismatch"
    CASH_MISMATCH = "cash_mismatch"
    ORDER_MISSING_AT_VENUE = "order_missing_at_venue"
    ORDER_UNKNOWN_LOCALLY = "order_unknown_locally"
    READ_FAILED = "read_failed"


class Discrepancy(Frozen):
    kind: DiscrepancyKind
    subject: str
    ours: str | None
    theirs: str | None
    detail: str = ""


class ReconciliationStatus(StrEnum):
    MATCHED = "matched"
    MISMATCHED = "mismatched"
    UNKNOWN = "unknown"
    """At least one read failed: what it covered is not known, and nothing may be concluded from it."""


def status_of(discrepancies: Sequence[Discrepancy]) -> ReconciliationStatus:
    """A failed read makes the whole report UNKNOWN, whatever else was found; otherwise any difference is one."""
    if any(d.kind is DiscrepancyKind.READ_FAILED for d in discrepancies):
        return ReconciliationStatus.UNKNOWN
    return ReconciliationStatus.MISMATCHED if discrepancies else ReconciliationStatus.MATCHED


class ReconciliationReport(Frozen):
    schema_version: Literal[2] = 2
    """2: the account's owner and mode travel with the report, so its rows are owned like every other row."""
    account_id: str
    owner: Owner
    mode: ExecutionMode
    venue: str
    at: UtcDatetime
    status: ReconciliationStatus
    discrepancies: tuple[Discrepancy, ...]

    @model_validator(mode="after")
    def _status_follows_discrepancies(self) -> ReconciliationReport:
        # A report claiming "matched" next to a failed read would turn unknown into flat downstream.
        expected = status_of(self.discrepancies)
        if self.status is not expected:
            raise ValueError(f"status {self.status.value} contradicts its discrepancies (they make it "
                             f"{expected.value})")
        return self


def reconcile(account: Account, venue: str, at: UtcDatetime, positions: Mapping[str, Decimal],
              cash: Mapping[str, Decimal], open_order_ids: Sequence[str], snapshot: VenueSnapshot,
              cash_tolerance: Decimal = Decimal("0.01")) -> ReconciliationReport:
    """Compare our positions (by instrument), cash (by currency) and working client order ids with the venue's."""
    found: list[Discrepancy] = []
    for name, outcome in (("positions", snapshot.positions_read), ("balances", snapshot.balances_read),
                          ("open_orders", snapshot.orders_read)):
        if not outcome.ok:
            found.append(Discrepancy(kind=DiscrepancyKind.READ_FAILED, subject=name, ours=None, theirs=None,
                                     detail=outcome.error))
    if snapshot.positions is not None:
        theirs = {p.instrument_id: p.quantity for p in snapshot.positions}
        for instrument_id in sorted(set(positions) | set(theirs)):
            ours_q, theirs_q = positions.get(instrument_id, ZERO), theirs.get(instrument_id, ZERO)
            if ours_q != theirs_q:
                found.append(Discrepancy(kind=DiscrepancyKind.POSITION_MISMATCH, subject=instrument_id,
                                         ours=str(ours_q), theirs=str(theirs_q)))
    if snapshot.balances is not None:
        theirs_cash = {b.currency: b.total for b in snapshot.balances}
        for currency in sorted(set(cash) & set(theirs_cash)):
            if abs(cash[currency] - theirs_cash[currency]) > cash_tolerance:
                found.append(Discrepancy(kind=DiscrepancyKind.CASH_MISMATCH, subject=currency,
                                         ours=str(cash[currency]), theirs=str(theirs_cash[currency])))
    if snapshot.open_orders is not None:
        theirs_ids = {o.client_order_id for o in snapshot.open_orders if o.client_order_id}
        for order_id in sorted(set(open_order_ids) - theirs_ids):
            found.append(Discrepancy(kind=DiscrepancyKind.ORDER_MISSING_AT_VENUE, subject=order_id, ours="working",
                                     theirs=None))
        for order_id in sorted(theirs_ids - set(open_order_ids)):
            found.append(Discrepancy(kind=DiscrepancyKind.ORDER_UNKNOWN_LOCALLY, subject=order_id, ours=None,
                                     theirs="working"))
    return ReconciliationReport(account_id=account.account_id, owner=account.owner, mode=account.mode, venue=venue,
                                at=at, status=status_of(found), discrepancies=tuple(found))
