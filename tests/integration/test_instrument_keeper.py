"""The worker's instrument keeper against the real Kafka: it resumes from the published registry, keeps a
connector's last listing when its read fails (and says so), and delists what a successful read no longer has."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from confluent_kafka import Producer

from agents.connector_health import ConnectorIssues
from agents.instruments import InstrumentKeeper
from agents.kit import AgentKit
from connectors.errors import VenueServerError
from connectors.registry import Binding
from core.instruments import DELISTED, Instrument, Venue
from streams.kafka import ensure_topics, headers, producer_config
from streams.records import InstrumentListed, encode
from streams.topics import REFERENCE_INSTRUMENTS, topic_name
from tests.kit.builders import T0, btc
from tests.unit.agents.fakes import FakeConnector
from tradestream.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

ETH = "crypto_spot:ETH-USD"
GONE = "crypto_spot:GONE-USD"


class ListingConnector(FakeConnector):
    def __init__(self) -> None:
        super().__init__()
        self.listing: list[Instrument] | Exception = []

    async def instruments(self) -> list[Instrument]:
        if isinstance(self.listing, Exception):
            raise self.listing
        return self.listing


def coin(instrument_id: str) -> Instrument:
    return btc(instrument_id=instrument_id, venue_symbols={Venue.COINBASE: instrument_id.split(":", 1)[1]})


@pytest_asyncio.fixture(loop_scope="session")
async def kit(settings: Settings) -> AsyncIterator[AgentKit]:
    ensure_topics(settings, [REFERENCE_INSTRUMENTS])
    producer = Producer(producer_config(settings))
    for record in (InstrumentListed(instrument=coin(ETH), listed_by=("coinbase",), updated_at=T0),
                   InstrumentListed(instrument=coin(GONE), listed_by=("a-removed-connector",), updated_at=T0)):
        producer.produce(topic_name(REFERENCE_INSTRUMENTS, settings.topic_prefix),
                         key=record.instrument.instrument_id.encode(), value=encode(record),
                         headers=headers(None, "InstrumentListed"))
    assert producer.flush(30) == 0
    running = AgentKit(settings)
    yield running
    await running.redis.aclose()


async def test_keeper_resumes_keeps_a_failed_listing_and_delists_what_a_read_no_longer_has(kit: AgentKit) -> None:
    connector = ListingConnector()
    issues = ConnectorIssues()
    keeper = InstrumentKeeper(kit, [Binding(name="coinbase", venue=Venue.COINBASE, connector=connector,
                                            account_ids=frozenset(), instrument_ids=())], issues)

    await keeper.restore()
    resumed_eth, resumed_gone = kit.catalog.get(ETH), kit.catalog.get(GONE)
    connector.listing = VenueServerError(Venue.COINBASE, "HTTP 503", status=503)
    await keeper.refresh()
    after_failure = kit.catalog.get(ETH)
    problems = issues.current("coinbase")
    connector.listing = [coin("crypto_spot:SOL-USD")]
    await keeper.refresh()

    assert resumed_eth == coin(ETH)  # the published listing stands until the venue is read again
    assert resumed_gone is not None and (resumed_gone.tradeable, resumed_gone.status) == (False, DELISTED)
    assert after_failure == coin(ETH)
    assert problems == ["instruments: VenueServerError: coinbase: HTTP 503"]
    assert issues.current("coinbase") == []
    eth = kit.catalog.get(ETH)
    assert eth is not None and (eth.tradeable, eth.status) == (False, DELISTED)
    assert kit.catalog.get("crypto_spot:SOL-USD") == coin("crypto_spot:SOL-USD")
    assert kit.catalog.get("equity:AAPL") is not None  # the configured catalog stays
