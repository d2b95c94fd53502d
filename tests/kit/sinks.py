"""Run a sink in a thread for the length of a block."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sinks.base import BatchSink

S = TypeVar("S", bound=BatchSink[Any])


@contextmanager
def running(sink: S) -> Iterator[S]:
    """Run a sink in a thread for the block; stop it (final commit) after, and raise what it raised."""
    stop = threading.Event()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            sink.run(stop)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run, name=sink.consumer_name)
    thread.start()
    try:
        yield sink
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), f"{sink.consumer_name} did not stop"
    if failures:
        raise failures[0]
