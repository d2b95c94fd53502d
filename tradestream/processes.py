"""Entry points of the platform's long-running processes; each stops cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from tradestream.config import Settings


def stop_event_on_signals() -> threading.Event:
    stop = threading.Event()

    def _handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


def run_feed_process(settings: Settings) -> None:
    from connectors.simulated.feed import run_feed

    run_feed(settings, stop_event_on_signals())


def run_sinks_process(settings: Settings) -> None:
    from sinks.runner import run_sinks

    run_sinks(settings, stop_event_on_signals())


def run_worker_process(settings: Settings) -> None:
    from agents.worker import run_worker

    run_worker(settings)


def run_api_process(settings: Settings) -> None:
    from api.app import serve

    serve(settings)
