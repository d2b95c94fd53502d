"""Reading the dead-letter topic in tests: where a refused or malformed message must end up."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from confluent_kafka import Consumer

from streams.kafka import consumer_config
from streams.records import DeadLetter
from streams.topics import DEAD_LETTER, topic_name
from tests.kit.waiting import eventually
from tradestream.config import Settings


def await_dead_letter(settings: Settings, accept: Callable[[DeadLetter], bool], what: str,
                      timeout: float = 30.0) -> DeadLetter:
    """The first dead letter of the run's topic (read from its start) that `accept`s; fails with `what`."""
    consumer = Consumer(consumer_config(settings, f"dlq-check-{uuid.uuid4().hex[:8]}"))
    consumer.subscribe([topic_name(DEAD_LETTER, settings.topic_prefix)])
    letters: list[DeadLetter] = []

    def probe() -> DeadLetter | None:
        message = consumer.poll(0.5)
        value = message.value() if message is not None and not message.error() else None
        if value is not None:
            letters.append(DeadLetter.model_validate_json(value))
        return next((letter for letter in letters if accept(letter)), None)

    try:
        return eventually(probe, timeout=timeout, what=what)
    finally:
        consumer.close()
