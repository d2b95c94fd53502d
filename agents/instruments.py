"""The worker's instrument registry: the configured catalog merged with every enabled connector's listing.

Each worker process first resumes from the registry published on reference.instruments (what a connector listed
before stands until it is read again, and what was delisted stays delisted), then reads every connector's
instruments at once, right away and every `connectors.instruments_refresh_s`. A connector whose read fails
changes nothing: its last listing stays, and the failure is logged and shown in its health. The merged catalog is
what this process's risk gate, OMS and portfolio read (`kit.catalog`); the leader publishes every entry that
changed (all of them once it becomes leader) to the compacted topic, which the instruments sink writes to
Postgres. After each listing, a connector is asked which of its venue's instruments that no source lists any more
have settled (`Connector.settlements`): a settled one enters the catalog with its settlement price, which the
portfolio applies to the positions held in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from agents.connector_health import ConnectorIssues
from agents.kit import AgentKit
from connectors.registry import Binding
from core.instruments import Instrument, InstrumentRegistry, ListedInstrument
from streams.kafka import read_to_end
from streams.records import InstrumentListed, RecordError, decode
from streams.topics import REFERENCE_INSTRUMENTS, topic_name
from tradestream.logging import get_logger

log = get_logger(__name__)

BASE_SOURCE = "simulated"
"""The source name of the configured catalog (the simulated feed's instruments)."""
TICK_S = 1.0
LISTING_TIMEOUT_S = 120.0
"""A venue with thousands of markets pages through them; a read that takes longer counts as failed."""


class InstrumentKeeper:
    def __init__(self, kit: AgentKit, bindings: Sequence[Binding], issues: ConnectorIssues) -> None:
        self._kit = kit
        self._bindings = tuple(bindings)
        self._issues = issues
        self.registry = InstrumentRegistry(kit.catalog, BASE_SOURCE)
        self._restored = False
        self._next_refresh = 0.0
        self._published: dict[str, ListedInstrument] = {}
        """What this process published as leader, by instrument id."""

    async def tick(self) -> None:
        """Resume (once), refresh when due, publish what changed."""
        if not self._restored:
            await self.restore()
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_refresh:
            self._next_refresh = loop.time() + self._kit.settings.connectors.instruments_refresh_s
            await self.refresh()
        await self.publish()

    async def restore(self) -> None:
        topic = topic_name(REFERENCE_INSTRUMENTS, self._kit.settings.topic_prefix)
        messages = await asyncio.to_thread(read_to_end, self._kit.settings, topic)
        published: dict[str, InstrumentListed] = {}
        for _, value in messages:
            try:
                record = decode(InstrumentListed, value)
            except RecordError as exc:  # the instruments sink dead-letters it
                log.warning("instruments.record_skipped", topic=topic, error=str(exc))
                continue
            published[record.instrument.instrument_id] = record  # later records of an id replace earlier ones
        self.registry.restore(published.values(), [b.name for b in self._bindings])
        self._restored = True
        self._kit.catalog = self.registry.catalog()
        log.info("instruments.restored", records=len(published), instruments=len(self._kit.catalog))

    async def refresh(self) -> None:
        """Every connector's listing, read at once; the ones that answered replace their previous listing."""
        async def listing(binding: Binding) -> list[Instrument]:
            async with asyncio.timeout(LISTING_TIMEOUT_S):
                return await binding.connector.instruments()

        results = await asyncio.gather(*(listing(b) for b in self._bindings), return_exceptions=True)
        for binding, result in zip(self._bindings, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                self._issues.failed(binding.name, "instruments", result)
                log.warning("instruments.read_failed", connector=binding.name, kept="the last listing",
                            error=self._issues.current(binding.name))
                continue
            self._issues.recovered(binding.name, "instruments")
            self.registry.apply(binding.name, result)
            log.info("instruments.listed", connector=binding.name, instruments=len(result),
                     tradeable=sum(i.tradeable for i in result))
        await asyncio.gather(*(self._settle(b) for b in self._bindings))
        self._kit.catalog = self.registry.catalog()

    async def _settle(self, binding: Binding) -> None:
        """What the connector says of its venue's unlisted, unsettled instruments; a failed read learns nothing."""
        awaiting = self.registry.unsettled_delisted(binding.connector.venue)
        if not awaiting:
            return
        try:
            async with asyncio.timeout(LISTING_TIMEOUT_S):
                settled = await binding.connector.settlements(awaiting)
        except Exception as exc:
            self._issues.failed(binding.name, "settlements", exc)
            log.warning("instruments.settlements_failed", connector=binding.name,
                        error=self._issues.current(binding.name))
            return
        self._issues.recovered(binding.name, "settlements")
        self.registry.settle(settled)
        for instrument in settled:
            log.info("instruments.settled", connector=binding.name, instrument_id=instrument.instrument_id,
                     status=instrument.status, settlement_price=str(instrument.settlement_price))

    async def publish(self) -> None:
        if not self._kit.app.is_leader():
            self._published.clear()  # whoever leads publishes; a new leader publishes everything once
            return
        now = datetime.now(UTC)
        changed = [e for e in self.registry.entries() if self._published.get(e.instrument.instrument_id) != e]
        for entry in changed:
            await self._kit.send(REFERENCE_INSTRUMENTS, entry.instrument.instrument_id,
                                 InstrumentListed(instrument=entry.instrument, listed_by=entry.listed_by,
                                                  updated_at=now), None)
            self._published[entry.instrument.instrument_id] = entry
        if changed:
            log.info("instruments.published", records=len(changed))


def register(kit: AgentKit, bindings: Sequence[Binding], issues: ConnectorIssues) -> InstrumentKeeper:
    keeper = InstrumentKeeper(kit, bindings, issues)
    kit.timer(TICK_S, "instrument_registry")(keeper.tick)
    return keeper
