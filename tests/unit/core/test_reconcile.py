from decimal import Decimal

import pytest
from pydantic import ValidationError

from core.orders import OrderStatus
from core.reconcile import (
    Discrepancy,
    DiscrepancyKind,
    ReadOutcome,
    ReconciliationReport,
    ReconciliationStatus,
    VenueSnapshot,
    reconcile,
)
from core.types import ExecutionMode, Side
from core.venue import Balance, VenueOrder, VenuePosition
from tests.kit.builders import OWNER, T0, account

OK = ReadOutcome(ok=True)
LIVE = account(ExecutionMode.LIVE, account_id="a")


def snapshot(positions: tuple[VenuePosition, ...] | None = (), balances: tuple[Balance, ...] | None = (),
             orders: tuple[VenueOrder, ...] | None = ()) -> VenueSnapshot:
    def outcome(items: object) -> ReadOutcome:
        return OK if items is not None else ReadOutcome(ok=False, error="HTTP 503")
    return VenueSnapshot(positions=positions, positions_read=outcome(positions), balances=balances,
                         balances_read=outcome(balances), open_orders=orders, orders_read=outcome(orders))


def pos(instrument: str, quantity: str) -> VenuePosition:
    return VenuePosition(instrument_id=instrument, venue_symbol=instrument, quantity=Decimal(quantity))


def order(client_id: str) -> VenueOrder:
    return VenueOrder(venue_order_id="v-" + client_id, client_order_id=client_id, instrument_id="equity:X",
                      side=Side.BUY, quantity=Decimal(1), filled_quantity=Decimal(0), limit_price=Decimal(1),
                      status=OrderStatus.OPEN, venue_status="Submitted")


def test_matching_books_are_matched() -> None:
    report = reconcile(LIVE, "ibkr", T0, {"equity:X": Decimal(5)}, {"USD": Decimal("100.00")}, ["o1"],
                       snapshot((pos("equity:X", "5"),), (Balance(currency="USD", total=Decimal("100.004"),
                                                                   available=Decimal(100)),), (order("o1"),)))
    assert report.status is ReconciliationStatus.MATCHED and report.discrepancies == ()


def test_differences_become_discrepancies() -> None:
    report = reconcile(LIVE, "ibkr", T0, {"equity:X": Decimal(5)}, {"USD": Decimal(100)}, ["o1"],
                       snapshot((pos("equity:X", "4"), pos("equity:Y", "1")),
                                (Balance(currency="USD", total=Decimal(90), available=Decimal(90)),),
                                (order("o2"),)))
    kinds = [(d.kind, d.subject) for d in report.discrepancies]
    assert report.status is ReconciliationStatus.MISMATCHED
    assert kinds == [(DiscrepancyKind.POSITION_MISMATCH, "equity:X"), (DiscrepancyKind.POSITION_MISMATCH, "equity:Y"),
                     (DiscrepancyKind.CASH_MISMATCH, "USD"), (DiscrepancyKind.ORDER_MISSING_AT_VENUE, "o1"),
                     (DiscrepancyKind.ORDER_UNKNOWN_LOCALLY, "o2")]


def test_a_failed_read_is_unknown_never_flat() -> None:
    report = reconcile(LIVE, "ibkr", T0, {"equity:X": Decimal(5)}, {}, [], snapshot(positions=None))
    assert report.status is ReconciliationStatus.UNKNOWN
    # no "position is 0 at the venue" conclusion is drawn from a failed read
    assert [d.kind for d in report.discrepancies] == [DiscrepancyKind.READ_FAILED]
    assert report.discrepancies[0].detail == "HTTP 503"


def test_the_report_carries_the_accounts_owner_and_mode() -> None:
    report = reconcile(LIVE, "ibkr", T0, {}, {}, [], snapshot())
    assert (report.account_id, report.owner, report.mode) == ("a", OWNER, ExecutionMode.LIVE)


READ_FAILED = Discrepancy(kind=DiscrepancyKind.READ_FAILED, subject="positions", ours=None, theirs=None)
MISMATCH = Discrepancy(kind=DiscrepancyKind.POSITION_MISMATCH, subject="equity:X", ours="5", theirs="4")


@pytest.mark.parametrize(("status", "found"), [
    (ReconciliationStatus.MATCHED, (READ_FAILED,)),  # a failed read reported as flat
    (ReconciliationStatus.MISMATCHED, (MISMATCH, READ_FAILED)),
    (ReconciliationStatus.MATCHED, (MISMATCH,)),
    (ReconciliationStatus.UNKNOWN, ()),
])
def test_a_report_whose_status_contradicts_its_discrepancies_is_refused(
        status: ReconciliationStatus, found: tuple[Discrepancy, ...]) -> None:
    with pytest.raises(ValidationError, match="contradicts its discrepancies"):
        ReconciliationReport(account_id="a", owner=OWNER, mode=ExecutionMode.LIVE, venue="ibkr", at=T0,
                             status=status, discrepancies=found)
