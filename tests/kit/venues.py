"""Venue stand-ins served from a background thread, for tests that run the platform's processes.

A pipeline test waits synchronously (`eventually`), which would starve a stand-in sharing its event loop; here
each stand-in has its own loop and thread, and the test reaches into it through `call` (every mutation runs on
the stand-in's loop: its websocket queues are not thread-safe).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


class AsyncServer(Protocol):
    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> Any: ...


S = TypeVar("S", bound=AsyncServer)
TIMEOUT_S = 30.0


class Served(Generic[S]):
    def __init__(self, standin: S, loop: asyncio.AbstractEventLoop) -> None:
        self.standin = standin
        self._loop = loop

    def call(self, action: Callable[[S], T]) -> T:
        """Run `action(standin)` on the stand-in's loop and return its result."""
        async def run() -> T:
            return action(self.standin)

        return self.run(run())

    def run(self, work: Awaitable[T]) -> T:
        """Await `work` on the stand-in's loop (e.g. a connector talking to it) and return its result."""
        async def run() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(TIMEOUT_S)


@contextmanager
def served(make: Callable[[], S]) -> Iterator[Served[S]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="standin", daemon=True)
    thread.start()

    async def start() -> S:
        standin = make()
        await standin.__aenter__()
        return standin

    standin = asyncio.run_coroutine_threadsafe(start(), loop).result(TIMEOUT_S)
    try:
        yield Served(standin, loop)
    finally:
        asyncio.run_coroutine_threadsafe(standin.__aexit__(None, None, None), loop).result(TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT_S)
        loop.close()
