"""The reconnect loop every venue websocket shares: run a session (connect, subscribe, read) until the socket
drops, back off with full jitter, and connect again, forever. The venue supplies the session, what a drop means to
it (its logs and state) and, if it likes, what to do while it waits (IBKR polls REST snapshots meanwhile).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import NoReturn

from connectors.resilience import BackoffPolicy

MAX_BACKOFF_EXPONENT = 32
"""The delay is capped long before this; the cap only keeps `2 ** exponent` a float."""


class Reconnection:
    """The delays between connection attempts: the exponent grows with each session that made no progress and
    restarts at `first_exponent` once one did (connected, or delivered data: the venue says which)."""

    def __init__(self, policy: BackoffPolicy, rng: random.Random, *, first_exponent: int = 1) -> None:
        self._policy = policy
        self._rng = rng
        self._first_exponent = first_exponent
        self._failures = 0

    def progressed(self) -> None:
        self._failures = 0

    def next_delay(self) -> float:
        exponent = min(self._first_exponent + self._failures, MAX_BACKOFF_EXPONENT)
        self._failures += 1
        return self._policy.delay(exponent, self._rng)


async def reconnect_forever(session: Callable[[], Awaitable[None]], went_down: Callable[[Exception | None], None],
                            reconnection: Reconnection, *,
                            recoverable: tuple[type[Exception], ...] = (Exception,),
                            wait: Callable[[float], Awaitable[None]] = asyncio.sleep) -> NoReturn:
    """Run `session` again and again; `went_down` hears why each one ended (None: the socket closed cleanly).
    An error outside `recoverable` ends the loop; cancelling it is how a stream is closed."""
    while True:
        try:
            await session()
        except recoverable as exc:
            went_down(exc)
        else:
            went_down(None)
        await wait(reconnection.next_delay())
