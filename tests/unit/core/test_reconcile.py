from decimal import Decimal

from core.orders import OrderStatus
from core.reconcile import DiscrepancyKind, ReadOutcome, ReconciliationStatus, VenueSnapshot, reconcile
from core.types import Side
from core.venue import Balance, VenueOrder, VenuePosition
from tests.kit.builders import T0

OK = ReadOutcome(ok=True)


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
    report = reconcile("a", "ibkr", T0, {"equity:X": Decimal(5)}, {"USD": Decimal("100.00")}, ["o1"],
                       snapshot((pos("equity:X", "5"),), (Balance(currency="USD", total=Decimal("100.004"),
                                                                   available=Decimal(100)),), (order("o1"),)))
    assert report.status is ReconciliationStatus.MATCHED and report.discrepancies == ()


def test_differences_become_discrepancies() -> None:
    report = reconcile("a", "ibkr", T0, {"equity:X": Decimal(5)}, {"USD": Decimal(100)}, ["o1"],
                       snapshot((pos("equity:X", "4"), pos("equity:Y", "1")),
                                (Balance(currency="USD", total=Decimal(90), available=Decimal(90)),),
                                (order("o2"),)))
    kinds = [(d.kind, d.subject) for d in report.discrepancies]
    assert report.status is ReconciliationStatus.MISMATCHED
    assert kinds == [(DiscrepancyKind.POSITION_MISMATCH, "equity:X"), (DiscrepancyKind.POSITION_MISMATCH, "equity:Y"),
                     (DiscrepancyKind.CASH_MISMATCH, "USD"), (DiscrepancyKind.ORDER_MISSING_AT_VENUE, "o1"),
                     (DiscrepancyKind.ORDER_UNKNOWN_LOCALLY, "o2")]


def test_a_failed_read_is_unknown_never_flat() -> None:
    report = reconcile("a", "ibkr", T0, {"equity:X": Decimal(5)}, {}, [], snapshot(positions=None))
    assert report.status is ReconciliationStatus.UNKNOWN
    # no "position is 0 at the venue" conclusion is drawn from a failed read
    assert [d.kind for d in report.discrepancies] == [DiscrepancyKind.READ_FAILED]
    assert report.discrepancies[0].detail == "HTTP 503"
