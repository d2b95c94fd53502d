"""The loops every connector shares: client-side token buckets, backoff with full jitter, retries that reuse the
same request (and so the same client order id)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from connectors.errors import RateLimitedError, should_retry

T = TypeVar("T")


@dataclass(frozen=True)
class BackoffPolicy:
    base_s: float = 0.2
    cap_s: float = 10.0
    max_attempts: int = 6

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^attempt)]."""
        return rng.uniform(0, min(self.cap_s, self.base_s * (2 ** attempt)))


async def with_retries(call: Callable[[], Awaitable[T]], policy: BackoffPolicy, *,
                       rng: random.Random | None = None,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> T:
    """Run `call` until it succeeds, a non-retryable error occurs, or attempts run out (the last error is raised).
    `call` must send the same request each time: for orders, the same client order id."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        try:
            return await call()
        except Exception as exc:
            attempt += 1
            if not should_retry(exc) or attempt >= policy.max_attempts:
                raise
            delay = policy.delay(attempt, rng)
            if isinstance(exc, RateLimitedError) and exc.retry_after_s is not None:
                delay = max(delay, exc.retry_after_s)
            await sleep(delay)


class TokenBucket:
    """Client-side rate limit: `rate` tokens per second, bursts up to `capacity`. `acquire` waits for a token."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, tokens: float = 1.0) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    return
                await asyncio.sleep((tokens - self._tokens) / self.rate)
