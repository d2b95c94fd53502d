"""Clocks are injected so the same code runs under wall time (live) and simulated time (backtest)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to: backtests and tests."""

    __slots__ = ("time",)

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self.time = start
        """The time `now` reads. `set` moves it and refuses to move it back; the backtest engine, which checks the
        order of its events itself, assigns it once per event (a call per event was 2% of a run)."""

    def now(self) -> datetime:
        return self.time

    def set(self, when: datetime) -> None:
        if when < self.time:
            raise ValueError("a clock never moves backwards")
        self.time = when
