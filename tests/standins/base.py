"""What every venue stand-in server offers the tests: its URLs, the faults it can inject, and counters.

Each stand-in (one per venue, in this package) answers in the venue's documented 2026 wire format, verifies the
signature or JWT it receives and answers a bad one as the venue does, enforces the venue's rate limits, and
counts every write call it receives so tests can assert that paper and shadow never write.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Protocol


class Fault(StrEnum):
    DROP_WEBSOCKET = "drop_websocket"
    """Close the next websocket connection abruptly."""
    SEQUENCE_GAP = "sequence_gap"
    """Skip one sequence number on the next streamed message."""
    SERVER_ERROR = "server_error"
    """Answer the next request(s) with a 5xx."""
    SLOW = "slow"
    """Delay the next answer(s) past the client's timeout."""
    DUPLICATE_FILL = "duplicate_fill"
    """Deliver the next fill twice."""
    LOSE_ORDER_RESPONSE = "lose_order_response"
    """Accept the next order but drop the connection before answering."""
    RATE_LIMIT = "rate_limit"
    """Answer the next request(s) with the venue's rate-limit response."""
    MALFORMED = "malformed"
    """Answer the next request with a body that does not match the documented shape."""


class StandIn(Protocol):
    base_url: str
    ws_url: str
    write_calls: int
    """Order placements and cancels received (including refused ones)."""

    def inject(self, fault: Fault, count: int = 1) -> None: ...

    def set_top_of_book(self, venue_symbol: str, bid: Decimal, ask: Decimal, size: Decimal) -> None: ...

    def fill_resting_order(self, venue_order_id: str, quantity: Decimal, price: Decimal) -> None:
        """Execute (part of) a resting order, producing a fill on REST and on the websocket fill channel."""

    def order_count(self) -> int:
        """Orders the stand-in holds (any status): a retried placement must not add a second one."""
