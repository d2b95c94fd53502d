import random

import pytest

from connectors.resilience import BackoffPolicy
from connectors.streaming import Reconnection, reconnect_forever


class Ceiling(random.Random):
    """Full jitter at its ceiling: each delay is the policy's bound, so it shows the exponent."""

    def uniform(self, a: float, b: float) -> float:
        return b


POLICY = BackoffPolicy(base_s=1.0, cap_s=1000.0)


def test_delays_grow_until_a_session_progresses_then_restart() -> None:
    reconnection = Reconnection(POLICY, Ceiling())
    assert [reconnection.next_delay() for _ in range(3)] == [2.0, 4.0, 8.0]
    reconnection.progressed()
    assert reconnection.next_delay() == 2.0


def test_delays_may_start_at_exponent_zero() -> None:
    reconnection = Reconnection(POLICY, Ceiling(), first_exponent=0)
    assert [reconnection.next_delay() for _ in range(2)] == [1.0, 2.0]


def test_the_exponent_is_capped_so_endless_failures_never_overflow() -> None:
    reconnection = Reconnection(BackoffPolicy(base_s=1.0, cap_s=5.0), Ceiling())
    assert [reconnection.next_delay() for _ in range(2000)][-1] == 5.0


async def test_every_session_end_is_reported_and_waited_for_until_an_unrecoverable_error() -> None:
    outcomes: list[Exception | None] = [None, OSError("reset"), None, KeyError("bug")]
    heard: list[Exception | None] = []
    waits: list[float] = []

    async def session() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    async def wait(delay: float) -> None:
        waits.append(delay)

    with pytest.raises(KeyError):
        await reconnect_forever(session, heard.append, Reconnection(POLICY, Ceiling()), recoverable=(OSError,),
                                wait=wait)
    assert [type(e).__name__ if e else None for e in heard] == [None, "OSError", None]
    assert waits == [2.0, 4.0, 8.0]
