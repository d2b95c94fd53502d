"""What every agent shares: topics, tables, decoding with dead-lettering, sending with the trace header,
and the latest quotes from the shared market view."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel

from agents.control_view import ControlView
from connectors.simulated.market import default_catalog
from core.accounts import Account
from core.instruments import InstrumentCatalog
from core.market import Quote
from streams.app import create_app, faust_topic
from streams.codecs import model_codec
from streams.control import ControlPlane
from streams.kafka import headers
from streams.records import TRACE_HEADER, DeadLetter, RecordError, encode
from streams.shared_state import latest_quotes_key
from streams.topics import (
    DEAD_LETTER,
    TopicSpec,
)
from tradestream.config import Settings
from tradestream.logging import get_logger
from tradestream.secrets import risk_seal_key

log = get_logger(__name__)

R = TypeVar("R")


class AgentKit:
    def __init__(self, settings: Settings, catalog: InstrumentCatalog | None = None) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.catalog = catalog or default_catalog()
        self.accounts: dict[str, Account] = {a.account_id: a for a in settings.accounts}
        self.redis = aioredis.Redis.from_url(settings.redis)
        self._quotes_key = latest_quotes_key(settings)
        self.control = ControlView(settings, self.redis)
        self.seal_key = risk_seal_key(settings)
        self._control_plane: ControlPlane | None = None
        self._topics: dict[str, Any] = {}

    @property
    def control_plane(self) -> ControlPlane:
        """Synchronous writer for the rare control changes the worker makes; call it through asyncio.to_thread."""
        if self._control_plane is None:
            self._control_plane = ControlPlane(self.settings)
        return self._control_plane

    def topic(self, spec: TopicSpec) -> Any:
        """The app's topic for `spec`, declared on first use (agents and senders alike ask for it here)."""
        topic = self._topics.get(spec.name)
        if topic is None:
            topic = self._topics[spec.name] = faust_topic(self.app, spec, self.settings)
        return topic

    def table(self, name: str, value_model: type[BaseModel] | None) -> Any:
        """A table keyed by str; values are `value_model` objects in memory and JSON in the changelog
        (or raw bytes when value_model is None)."""
        table: Any = self.app.Table(name, default=None, key_type=str, value_type=bytes,
                                    partitions=self.settings.topic_partitions)
        # Faust derives changelog codecs from Record types only; set ours before the changelog topic exists.
        table.key_serializer = "raw"
        table.value_serializer = model_codec(value_model) if value_model else "raw"
        return table

    async def consume(self, stream: Any, parse: Callable[[bytes | None], R], consumer: str,
                      handle: Callable[[R, Any], Awaitable[None]]) -> None:
        """Drive one agent: decode each event and hand it to `handle`. A message that does not decode, or whose
        handling raises, goes to the dead-letter topic with the reason and the stream goes on: Faust would
        otherwise ack it silently or stop the agent."""
        async for event in stream.events():
            record = await self.decode(event, parse, consumer)
            if record is None:
                continue
            try:
                await handle(record, event)
            except Exception as exc:
                log.exception("record.processing_failed", consumer=consumer, trace_id=trace_of(event))
                await self.dead_letter(event, f"processing failed: {type(exc).__name__}: {exc}", consumer)

    def timer(self, interval: float, name: str,
              on_leader: bool = False) -> Callable[[Callable[[], Awaitable[None]]], Any]:
        """A Faust timer whose failures are logged and survived: Faust stops the whole app when a timer raises."""
        def register(body: Callable[[], Awaitable[None]]) -> Any:
            async def guarded() -> None:
                try:
                    await body()
                except Exception:
                    log.exception("timer.failed", timer=name)

            guarded.__name__ = guarded.__qualname__ = name
            return self.app.timer(interval=interval, name=name, on_leader=on_leader)(guarded)
        return register

    async def decode(self, event: Any, parse: Callable[[bytes | None], R], consumer: str) -> R | None:
        """Parse the event's value, or dead-letter it with the reason and return None (processing goes on)."""
        try:
            return parse(event.value)
        except RecordError as exc:
            await self.dead_letter(event, str(exc), consumer)
            return None

    async def dead_letter(self, event: Any, reason: str, consumer: str) -> None:
        message = event.message
        key = message.key.decode(errors="replace") if isinstance(message.key, bytes) else message.key
        record = DeadLetter(source_topic=message.topic, partition=message.partition, offset=message.offset, key=key,
                            value_b64=base64.b64encode(event.value or b"").decode(), error=reason, consumer=consumer,
                            at=datetime.now(UTC))
        log.warning("record.dead_lettered", topic=message.topic, offset=message.offset, reason=reason,
                    consumer=consumer)
        await self.send(DEAD_LETTER, message.topic, record, trace_id=trace_of(event))

    async def send(self, spec: TopicSpec, key: str, record: BaseModel, trace_id: str | None) -> None:
        await self.topic(spec).send(key=key.encode(), value=encode(record),
                                    headers=headers(trace_id, type(record).__name__))

    async def latest_quote(self, instrument_id: str) -> Quote | None:
        raw = await self.redis.hget(self._quotes_key, instrument_id)
        return Quote.model_validate_json(raw) if raw else None

    async def latest_quotes(self) -> dict[str, Quote]:
        raw = await self.redis.hgetall(self._quotes_key)
        quotes = (Quote.model_validate_json(value) for value in raw.values())
        return {quote.instrument_id: quote for quote in quotes}


def trace_of(event: Any) -> str | None:
    value = event.headers.get(TRACE_HEADER) if event.headers else None
    return value.decode() if isinstance(value, bytes) else value
