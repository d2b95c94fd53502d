"""The API's Kafka producer: acks=all, idempotent, keyed by account with aiokafka's murmur2 partitioner.

The broker may be down when the API starts: reads keep working, /health says so, and the producer is started
on first use once the broker answers.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from tradestream.config import Settings
from tradestream.logging import get_logger

log = get_logger(__name__)

REQUEST_TIMEOUT_MS = 5_000


class IntentProducer:
    def __init__(self, settings: Settings) -> None:
        self._bootstrap = settings.bootstrap_servers
        self._client_id = f"{settings.app_id}-api"
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        """The running producer, started now if it is not yet; a broker that does not answer raises KafkaError."""
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._bootstrap, client_id=self._client_id, acks="all",
                    enable_idempotence=True, linger_ms=0, request_timeout_ms=REQUEST_TIMEOUT_MS,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def start(self) -> None:
        """Connect now if the broker answers; if it does not, connect on first use."""
        try:
            await self._started()
        except KafkaError as exc:
            log.warning("kafka not reachable at start; will connect on first use", error=str(exc))

    async def stop(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def send(self, topic: str, key: str, value: bytes, headers: list[tuple[str, str | bytes | None]]) -> None:
        """Send and wait for the acknowledgement of all in-sync replicas."""
        producer = await self._started()
        await producer.send_and_wait(topic, value=value, key=key.encode(), headers=headers)

    async def broker_count(self) -> int:
        """Ask the cluster for its metadata; raises KafkaError when no broker answers."""
        producer = await self._started()
        metadata = await producer.client.fetch_all_metadata()
        return len(metadata.brokers())
