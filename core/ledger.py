"""Per-account ledger: cash, positions, realized and unrealized PnL, fees.

Value is conserved except for fees: marking at the trade price, equity after a fill equals equity before it
minus the fee. Fills are de-duplicated by (venue, venue trade id) before they reach `Ledger.apply_fill`:
`FillJournal` does it in process; the portfolio agent does the same against its `seen_fills` table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import Field

from core.accounts import Account, Owner
from core.fills import Fill
from core.instruments import AssetClass, InstrumentCatalog
from core.trusted import evolve, evolve_with
from core.types import ZERO, Amount, ExecutionMode, Frozen, NonNegative, UtcDatetime


class Position(Frozen):
    instrument_id: str
    quantity: Amount = ZERO
    """Signed: positive long, negative short."""
    average_price: Amount = ZERO
    multiplier: Amount = Decimal(1)
    realized_pnl: Amount = ZERO
    fees_paid: NonNegative = ZERO
    last_trace_id: str = ""

    def apply(self, signed_quantity: Decimal, price: Decimal, fee: Decimal, trace_id: str) -> Position:
        old = self.quantity
        new = old + signed_quantity
        realized = ZERO
        if old == ZERO:
            average = price  # opened from flat
        elif (old > ZERO) == (signed_quantity > ZERO):
            average = (abs(old) * self.average_price + abs(signed_quantity) * price) / abs(new)
        else:
            closed = min(abs(signed_quantity), abs(old))
            direction = 1 if old > ZERO else -1
            realized = closed * (price - self.average_price) * direction * self.multiplier
            if new == ZERO:
                average = ZERO
            elif (new > ZERO) != (old > ZERO):
                average = price  # flipped through flat: the remainder was opened at this price
            else:
                average = self.average_price
        return evolve_with(self, {"quantity": new, "average_price": average,
                                  "realized_pnl": self.realized_pnl + realized, "fees_paid": self.fees_paid + fee,
                                  "last_trace_id": trace_id})

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return (mark - self.average_price) * self.quantity * self.multiplier

    def market_value(self, mark: Decimal) -> Decimal:
        return mark * self.quantity * self.multiplier


class PnlSnapshot(Frozen):
    schema_version: Literal[1] = 1
    account_id: str
    owner: Owner
    mode: ExecutionMode
    ts: UtcDatetime
    cash: Amount
    realized_pnl: Amount
    unrealized_pnl: Amount
    fees: NonNegative
    equity: Amount
    unmarked_instruments: tuple[str, ...] = ()
    """Open positions without a mark; their unrealized PnL is unknown, not zero."""
    trace_id: str | None = None
    """The trace of the fill that triggered this snapshot; None for timed snapshots."""


@dataclass(frozen=True, slots=True)
class Exposure:
    equity: Decimal | None
    """Cash plus marked positions; None when an open position has no mark."""
    gross: Decimal
    """Sum over open positions of |quantity x mark x multiplier|."""
    by_asset_class: dict[AssetClass, Decimal]


class Ledger(Frozen):
    account_id: str
    owner: Owner
    mode: ExecutionMode
    cash: Amount
    positions: dict[str, Position] = Field(default_factory=dict)
    fees_paid: NonNegative = ZERO

    @classmethod
    def open(cls, account: Account) -> Ledger:
        return cls(account_id=account.account_id, owner=account.owner, mode=account.mode,
                   cash=account.starting_cash)

    def position(self, instrument_id: str) -> Position | None:
        return self.positions.get(instrument_id)

    def quantity(self, instrument_id: str) -> Decimal:
        held = self.positions.get(instrument_id)
        return held.quantity if held else ZERO

    def apply_fill(self, fill: Fill, multiplier: Decimal) -> Ledger:
        """The ledger after one (already de-duplicated) fill."""
        if fill.account_id != self.account_id or fill.mode is not self.mode:
            raise ValueError(f"fill for {fill.account_id}/{fill.mode} cannot touch ledger "
                             f"{self.account_id}/{self.mode}: ledgers never mix accounts or modes")
        instrument_id, price, fee = fill.instrument_id, fill.price, fill.fee
        signed = fill.quantity * fill.side.sign
        current = self.positions.get(instrument_id) or Position(instrument_id=instrument_id, multiplier=multiplier)
        positions = self.positions.copy()  # the ledger before this fill keeps its own
        positions[instrument_id] = current.apply(signed, price, fee, fill.trace_id)
        cash = self.cash - signed * price * multiplier - fee
        return evolve_with(self, {"positions": positions, "cash": cash, "fees_paid": self.fees_paid + fee})

    def settle(self, instrument_id: str, settlement_price: Decimal, trace_id: str) -> Ledger:
        """Close a position at its settlement price (event contracts settle at 0 or 1); no fee."""
        held = self.positions.get(instrument_id)
        if held is None or held.quantity == 0:
            return self
        closed = held.apply(-held.quantity, settlement_price, ZERO, trace_id)
        cash = self.cash + held.quantity * settlement_price * held.multiplier
        return evolve(self, positions={**self.positions, instrument_id: closed}, cash=cash)

    def exposure(self, marks: Mapping[str, Decimal], catalog: InstrumentCatalog) -> Exposure:
        """The account as the risk gate measures it, at `marks`."""
        equity: Decimal | None = self.cash
        gross = ZERO
        by_asset_class: dict[AssetClass, Decimal] = {}
        for position in self.positions.values():
            if position.quantity == ZERO:
                continue
            mark = marks.get(position.instrument_id)
            if mark is None:
                equity = None  # an open position without a mark: equity is unknown, not its cost
                continue
            value = position.market_value(mark)
            if equity is not None:
                equity += value
            size = abs(value)
            gross += size
            instrument = catalog.get(position.instrument_id)
            if instrument is not None:
                by_asset_class[instrument.asset_class] = by_asset_class.get(instrument.asset_class, ZERO) + size
        return Exposure(equity, gross, by_asset_class)

    @property
    def realized_pnl(self) -> Decimal:
        return sum((p.realized_pnl for p in self.positions.values()), ZERO)

    def snapshot(self, marks: Mapping[str, Decimal], at: UtcDatetime, trace_id: str | None = None) -> PnlSnapshot:
        unrealized = ZERO
        value = ZERO
        unmarked: list[str] = []
        for position in self.positions.values():
            if position.quantity == 0:
                continue
            mark = marks.get(position.instrument_id)
            if mark is None:
                unmarked.append(position.instrument_id)
                mark = position.average_price  # valued at cost until a mark exists; flagged as unmarked
            unrealized += position.unrealized_pnl(mark)
            value += position.market_value(mark)
        return PnlSnapshot(
            account_id=self.account_id, owner=self.owner, mode=self.mode, ts=at, cash=self.cash,
            realized_pnl=self.realized_pnl, unrealized_pnl=unrealized, fees=self.fees_paid,
            equity=self.cash + value, unmarked_instruments=tuple(sorted(unmarked)), trace_id=trace_id,
        )


class Settlement(Frozen):
    """A position to close at its instrument's settlement price."""

    schema_version: Literal[1] = 1
    account_id: str
    instrument_id: str
    quantity: Amount
    """The position's signed quantity when the settlement was decided."""
    settlement_price: NonNegative

    def unconfirmed(self, catalog: InstrumentCatalog) -> str | None:
        """Why the catalog does not confirm this settlement (it is the authority, not the message), or None."""
        instrument = catalog.get(self.instrument_id)
        if instrument is not None and instrument.settlement_price == self.settlement_price:
            return None
        return (f"settlement of {self.instrument_id} at {self.settlement_price} is not what the instrument catalog "
                f"says ({instrument.settlement_price if instrument else 'unknown'})")


def settlements_due(ledgers: Iterable[Ledger], catalog: InstrumentCatalog) -> list[Settlement]:
    """Every open position whose instrument the catalog knows as settled. A settled ledger has none left, so
    deciding again after applying finds nothing (and `Ledger.settle` of a flat position changes nothing)."""
    due = []
    for ledger in ledgers:
        for position in ledger.positions.values():
            instrument = catalog.get(position.instrument_id)
            if position.quantity == ZERO or instrument is None or instrument.settlement_price is None:
                continue
            due.append(Settlement(account_id=ledger.account_id, instrument_id=position.instrument_id,
                                  quantity=position.quantity, settlement_price=instrument.settlement_price))
    return due


class FillJournal:
    """A ledger with the set of fills applied to it: the same fill twice changes nothing."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._seen: set[str] = set()

    def apply(self, fill: Fill, multiplier: Decimal) -> bool:
        """Apply the fill unless seen before; return whether it changed the ledger."""
        key = fill.dedup_key
        if key in self._seen:
            return False
        self.ledger = self.ledger.apply_fill(fill, multiplier)
        self._seen.add(key)
        return True
