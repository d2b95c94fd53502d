"""The instrument registry and connector health through the running platform (worker, sinks and API against the
real Kafka, Postgres and Redis) with the Coinbase stand-in: the venue's instruments under canonical ids on the
compacted topic, in the table and the API; orders for unknown or untradeable instruments refused with their
reason; a failed read that keeps the last listing; a dropped websocket whose REST fallback /health shows; and
configured instruments that the catalog lacks, valid when the venue lists them, refused at start-up when not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # ConfigResource: re-exported without __all__
    AdminClient,
    ConfigResource,
)

from agents.worker import run_worker
from connectors.registry import build_registry, require_listed
from connectors.simulated.market import default_catalog
from core.market import Quote
from streams.kafka import ensure_topics, read_to_end
from streams.records import InstrumentListed, decode
from streams.shared_state import latest_quotes_key
from streams.topics import REFERENCE_INSTRUMENTS, topic_name
from tests.integration.test_safety import api, settled, submit
from tests.kit.processes import free_port, running
from tests.kit.venues import Served, served
from tests.kit.waiting import eventually
from tests.standins.base import Fault
from tests.standins.coinbase import CoinbaseStandIn, generate_key
from tradestream.config import CoinbaseSettings, ConfigError, ConnectorSettings, Settings, StrategySettings

pytestmark = pytest.mark.integration

BTC = "crypto_spot:BTC-USD"
ETH = "crypto_spot:ETH-USD"
SOL = "crypto_spot:SOL-USD"


@dataclass
class Stack:
    settings: Settings
    venue: Served[CoinbaseStandIn]
    logs: Path


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    key = generate_key("ES256")
    secrets_file = tmp_path_factory.mktemp("files") / "coinbase.json"
    secrets_file.write_text(json.dumps({"name": key.key_name, "privateKey": key.secret}))
    secrets_file.chmod(0o600)
    logs = tmp_path_factory.mktemp("logs")
    with served(lambda: CoinbaseStandIn({key.key_name: key.public_key})) as venue:
        coinbase = CoinbaseSettings(rest_url=venue.standin.base_url, ws_market_url=venue.standin.ws_url,
                                    ws_user_url=venue.standin.ws_user_url, instruments=(BTC,),
                                    secrets_file=secrets_file, timeout_s=2.0, retry_attempts=2, retry_base_s=0.01,
                                    retry_cap_s=0.05)
        configured = settings.model_copy(update={
            "api_port": free_port(),
            # The strategy is given nothing to trade: the only orders are the tests' own.
            "strategy": StrategySettings(params={"fast": 5, "slow": 20, "quantity": {}}),
            "connectors": ConnectorSettings(coinbase=coinbase, poll_interval_s=0.3, instruments_refresh_s=1.0,
                                            health_interval_s=0.5)})
        ensure_topics(configured)
        with running(configured, "sinks", "worker", "api", log_dir=logs):
            eventually(lambda: (instrument(configured, ETH) or {}).get("listed_by") == ["coinbase"], timeout=60,
                       what="the venue's instruments in the registry")
            yield Stack(configured, venue, logs)


def instrument(settings: Settings, instrument_id: str) -> dict[str, Any] | None:
    response = api(settings, "GET", f"/v1/instruments/{instrument_id}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def coinbase_health(settings: Settings) -> dict[str, Any]:
    response = api(settings, "GET", "/health")
    (report,) = response.json()["connectors"]["connectors"]
    assert report["connector"] == "coinbase"
    return {**report, "http_status": response.status_code}


def test_the_venues_instruments_are_in_the_registry_under_canonical_ids_on_the_topic_table_and_api(
        stack: Stack) -> None:
    btc, sol, apple = (instrument(stack.settings, i) for i in (BTC, SOL, "equity:AAPL"))

    assert btc is not None and sol is not None and apple is not None
    # The configured (simulated) BTC, with the venue's own increments and its product id.
    assert (btc["listed_by"], btc["venue"], btc["venue_symbols"], btc["tradeable"], btc["status"]) == (
        ["simulated", "coinbase"], "coinbase", {"coinbase": "BTC-USD"}, True, "online")
    assert (Decimal(btc["tick_size"]), Decimal(btc["lot_size"])) == (Decimal("0.01"), Decimal("0.00000001"))
    assert (sol["tradeable"], sol["status"], sol["listed_by"]) == (False, "trading_disabled", ["coinbase"])
    assert apple["listed_by"] == ["simulated"]
    assert instrument(stack.settings, "crypto_spot:BIT-27FEB26-CDE") is None  # a future: not a spot product
    listed = api(stack.settings, "GET", "/v1/instruments", params={"venue": "coinbase"}).json()["data"]
    assert {i["instrument_id"] for i in listed} == {BTC, ETH, SOL}

    topic = topic_name(REFERENCE_INSTRUMENTS, stack.settings.topic_prefix)
    records = [(key, decode(InstrumentListed, value)) for key, value in read_to_end(stack.settings, topic)]
    assert records and all(key == r.instrument.instrument_id.encode() for key, r in records)
    assert {r.instrument.instrument_id for _, r in records} >= {BTC, ETH, SOL, "equity:AAPL"}
    admin = AdminClient({"bootstrap.servers": stack.settings.bootstrap_servers})
    (config,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values()
    assert config.result(timeout=10)["cleanup.policy"].value == "compact"


def test_orders_for_unknown_or_untradeable_instruments_are_rejected_with_their_reason(stack: Stack) -> None:
    untradeable = settled(stack.settings, submit(stack.settings, instrument_id=SOL, quantity="1",
                                                 limit_price="150.00"))
    unknown = settled(stack.settings, submit(stack.settings, instrument_id="crypto_spot:NOPE-USD", quantity="1",
                                             limit_price="1.00"))
    venue_only = settled(stack.settings, submit(stack.settings, instrument_id=ETH, quantity="0.5",
                                                limit_price="3000.00"))

    assert (untradeable["status"], untradeable["reason_code"], untradeable["reason_detail"]) == (
        "rejected", "INSTRUMENT_NOT_TRADEABLE", f"instrument={SOL} status=trading_disabled")
    assert (unknown["status"], unknown["reason_code"]) == ("rejected", "UNKNOWN_INSTRUMENT")
    assert (venue_only["status"], venue_only["reason_code"]) == ("open", "PAPER_SIMULATED")  # rests: no quote


def test_a_failed_instruments_read_keeps_the_last_listing_and_is_reported_in_health(stack: Stack) -> None:
    stack.venue.call(lambda standin: setattr(standin, "products_available", False))
    try:
        failing = eventually(lambda: (r := coinbase_health(stack.settings))["problems"] and r, timeout=30,
                             what="the failed instruments read in /health")
        # Orders still see the venue's instruments while its listing cannot be read.
        order = settled(stack.settings, submit(stack.settings, instrument_id=ETH, quantity="0.5",
                                               limit_price="3000.00"))
    finally:
        stack.venue.call(lambda standin: setattr(standin, "products_available", True))

    assert failing["http_status"] == 200
    assert (failing["state"], failing["fallback"]) == ("degraded", None)
    assert failing["problems"][0].startswith("instruments: VenueServerError:")
    assert failing["last_error"] == failing["problems"][0]
    assert (order["status"], order["reason_code"]) == ("open", "PAPER_SIMULATED")
    eth = instrument(stack.settings, ETH)
    assert eth is not None and (eth["tradeable"], eth["listed_by"]) == (True, ["coinbase"])
    recovered = eventually(lambda: (r := coinbase_health(stack.settings))["state"] == "ok" and r, timeout=30,
                           what="the instruments read to succeed again")
    assert recovered["problems"] == [] and recovered["last_error"] == failing["last_error"]


def test_a_refresh_follows_the_venue_and_a_delisted_instrument_stays_known_but_not_tradeable(stack: Stack) -> None:
    def relist(standin: CoinbaseStandIn) -> None:
        standin.set_trading_disabled("SOL-USD", False)
        standin.delist("ETH-USD")

    stack.venue.call(relist)
    eventually(lambda: (instrument(stack.settings, SOL) or {}).get("tradeable") is True, timeout=30,
               what="SOL tradeable after the refresh")
    eth = eventually(lambda: (e := instrument(stack.settings, ETH)) and e["status"] == "delisted" and e,
                     timeout=30, what="ETH delisted after the refresh")

    assert (eth["tradeable"], eth["listed_by"], eth["venue_symbols"]) == (False, [], {"coinbase": "ETH-USD"})
    delisted = settled(stack.settings, submit(stack.settings, instrument_id=ETH, quantity="0.5",
                                              limit_price="3000.00"))
    assert (delisted["reason_code"], delisted["reason_detail"]) == (
        "INSTRUMENT_NOT_TRADEABLE", f"instrument={ETH} status=delisted")
    relisted = settled(stack.settings, submit(stack.settings, instrument_id=SOL, quantity="1", limit_price="150.00"))
    assert (relisted["status"], relisted["reason_code"]) == ("open", "PAPER_SIMULATED")


def test_a_dropped_websocket_falls_back_to_rest_polling_and_health_shows_it(stack: Stack) -> None:
    eventually(lambda: coinbase_health(stack.settings)["state"] == "ok", timeout=30, what="coinbase ok")

    def drop(standin: CoinbaseStandIn) -> None:
        standin.ws_available = False
        standin.inject(Fault.DROP_WEBSOCKET)

    stack.venue.call(drop)
    degraded = eventually(lambda: (r := coinbase_health(stack.settings))["fallback"] and r, timeout=30,
                          what="the REST fallback in /health")
    # Quotes keep reaching the market view, polled over REST.
    stack.venue.call(lambda s: s.set_top_of_book("BTC-USD", Decimal("96000.00"), Decimal("96000.10"), Decimal("1")))
    store = redis.Redis.from_url(stack.settings.redis)
    eventually(lambda: (raw := store.hget(latest_quotes_key(stack.settings), BTC)) is not None
               and Quote.model_validate_json(raw).bid == Decimal("96000.00"), timeout=30, what="a polled quote")
    stack.venue.call(lambda standin: setattr(standin, "ws_available", True))
    recovered = eventually(lambda: (r := coinbase_health(stack.settings))["state"] == "ok" and r, timeout=60,
                           what="the websocket back")

    assert degraded["http_status"] == 200  # a venue's trouble is reported, not a reason to fail /health
    assert (degraded["state"], degraded["fallback"], degraded["market_data_mode"]) == (
        "degraded", "rest-polling", "polling")
    assert "polling REST" in degraded["detail"] and degraded["latency_ms"] >= 0
    assert (recovered["fallback"], recovered["market_data_mode"]) == (None, "streaming")
    tokens = stack.venue.call(lambda standin: list(standin.tokens))
    body = api(stack.settings, "GET", "/health").text
    assert tokens and not any(token in body for token in tokens)


@pytest.fixture(scope="module")
def coinbase() -> Iterator[tuple[Served[CoinbaseStandIn], dict[str, str]]]:
    key = generate_key("ES256")
    with served(lambda: CoinbaseStandIn({key.key_name: key.public_key})) as venue:
        yield venue, {"COINBASE_API_KEY_NAME": key.key_name, "COINBASE_API_PRIVATE_KEY": key.secret}


async def check_listed(venue: Served[CoinbaseStandIn], environ: dict[str, str], *instrument_ids: str) -> None:
    settings = ConnectorSettings(coinbase=CoinbaseSettings(
        rest_url=venue.standin.base_url, ws_market_url=venue.standin.ws_url, ws_user_url=venue.standin.ws_user_url,
        instruments=instrument_ids, timeout_s=2.0, retry_attempts=1))
    registry = build_registry(settings, default_catalog(), environ)
    try:
        await require_listed(registry, default_catalog(), "simulated")
    finally:
        await registry.close()


async def test_a_configured_instrument_the_catalog_lacks_is_valid_when_the_venue_lists_it(
        coinbase: tuple[Served[CoinbaseStandIn], dict[str, str]]) -> None:
    await check_listed(*coinbase, BTC, ETH)  # ETH: the venue's only


async def test_a_configured_instrument_nobody_lists_stops_start_up_naming_it(
        coinbase: tuple[Served[CoinbaseStandIn], dict[str, str]]) -> None:
    with pytest.raises(ConfigError, match=r"connectors\.coinbase\.instruments: 'crypto_spot:NOPE-USD' is neither "
                                          r"in the catalog nor listed by the venue \(coinbase does not list it\)"):
        await check_listed(*coinbase, ETH, "crypto_spot:NOPE-USD")


async def test_an_unreadable_listing_confirms_nothing(
        coinbase: tuple[Served[CoinbaseStandIn], dict[str, str]]) -> None:
    venue, environ = coinbase
    venue.call(lambda standin: setattr(standin, "products_available", False))
    try:
        with pytest.raises(ConfigError, match=r"'crypto_spot:ETH-USD' is neither .* \(its listing could not be read: "
                                              r"VenueServerError"):
            await check_listed(venue, environ, ETH)
    finally:
        venue.call(lambda standin: setattr(standin, "products_available", True))


def test_the_worker_refuses_to_start_with_an_instrument_nobody_lists(
        coinbase: tuple[Served[CoinbaseStandIn], dict[str, str]], settings: Settings,
        monkeypatch: pytest.MonkeyPatch) -> None:
    venue, environ = coinbase
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    configured = settings.model_copy(update={"connectors": ConnectorSettings(coinbase=CoinbaseSettings(
        rest_url=venue.standin.base_url, instruments=("crypto_spot:NOPE-USD",), timeout_s=2.0, retry_attempts=1))})
    with pytest.raises(ConfigError, match="'crypto_spot:NOPE-USD' is neither"):
        run_worker(configured)
