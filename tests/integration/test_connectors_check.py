"""`tradestream connectors check` against the three venue stand-ins: health, capabilities, latency and the fallback
in use of each enabled connector, a non-zero exit when one is unreachable, and start-up errors that name the
field."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kit.processes import free_port
from tests.kit.venues import Served, served
from tests.standins.coinbase import CoinbaseStandIn, GeneratedKey
from tests.standins.coinbase import generate_key as coinbase_key
from tests.standins.ibkr import IbkrStandIn
from tests.standins.kalshi import KalshiStandIn
from tests.standins.kalshi import generate_key as kalshi_key
from tradestream.config import CoinbaseSettings, ConnectorSettings, IbkrSettings, KalshiSettings

pytestmark = pytest.mark.integration

KALSHI_KEY_ID = "3c1d7f52-0c6e-4a8e-9d7b-5b2f1e0a9c44"


@dataclass
class Venues:
    kalshi: Served[KalshiStandIn]
    coinbase: Served[CoinbaseStandIn]
    ibkr: Served[IbkrStandIn]
    kalshi_key_file: Path
    coinbase_key: GeneratedKey
    kalshi_pem: str

    def connectors(self, **changes: object) -> ConnectorSettings:
        k, c, i = self.kalshi.standin, self.coinbase.standin, self.ibkr.standin
        settings = ConnectorSettings(
            kalshi=KalshiSettings(rest_url=k.base_url, ws_url=k.ws_url, secrets_file=self.kalshi_key_file,
                                  timeout_s=2.0, retry_attempts=1),
            coinbase=CoinbaseSettings(rest_url=c.base_url, ws_market_url=c.ws_url, ws_user_url=c.ws_user_url,
                                      instruments=("crypto_spot:BTC-USD",), timeout_s=2.0, retry_attempts=1),
            ibkr=IbkrSettings(base_url=i.base_url, ws_url=i.ws_url, instruments=("equity:AAPL",), timeout_s=2.0,
                              retry_attempts=1))
        return settings.model_copy(update=changes)

    def env(self, connectors: ConnectorSettings | str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRADESTREAM_")}
        env.update({"COLUMNS": "250", "KALSHI_KEY_ID": KALSHI_KEY_ID,
                    "COINBASE_API_KEY_NAME": self.coinbase_key.key_name,
                    "COINBASE_API_PRIVATE_KEY": self.coinbase_key.secret,
                    "TRADESTREAM_IBKR_ACCOUNT_ID": self.ibkr.standin.account_id,
                    "TRADESTREAM_CONNECTORS": connectors if isinstance(connectors, str) else
                    connectors.model_dump_json()})
        return env


@pytest.fixture(scope="module")
def venues(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venues]:
    pem, public = kalshi_key()
    key_file = tmp_path_factory.mktemp("keys") / "kalshi.pem"
    key_file.write_text(pem)
    key_file.chmod(0o600)
    key = coinbase_key("ES256")
    with served(lambda: KalshiStandIn({KALSHI_KEY_ID: public})) as k, \
            served(lambda: CoinbaseStandIn({key.key_name: key.public_key})) as c, served(IbkrStandIn) as i:
        yield Venues(k, c, i, key_file, key, pem)


def check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tradestream", "connectors", "check"], capture_output=True,
                          text=True, timeout=120, env=env)


def row(output: str, connector: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith(f"│ {connector} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


def test_every_enabled_connector_is_reachable_with_its_capabilities_and_latency(venues: Venues) -> None:
    result = check(venues.env(venues.connectors()))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {name: row(result.stdout, name) for name in ("kalshi", "coinbase", "ibkr")}
    for name, (_, reachable, authenticated, latency, market_data, fallback, capabilities, _) in rows.items():
        assert (reachable, authenticated) == ("yes", "yes"), name
        assert float(latency) >= 0
        # Quotes streamed before the check (coinbase and ibkr quote an instrument here): no fallback in use.
        assert (market_data, fallback) == ("streaming", "-"), name
        assert "limit" in capabilities and "tif" in capabilities
    assert "event_contract" in rows["kalshi"][6] and "crypto_spot" in rows["coinbase"][6]
    assert "equity" in rows["ibkr"][6]
    assert venues.kalshi_pem.splitlines()[1] not in result.stdout + result.stderr
    # A check reads; it never writes.
    assert [v.call(lambda s: s.write_calls) for v in (venues.kalshi, venues.coinbase, venues.ibkr)] == [0, 0, 0]


def test_an_unreachable_connector_makes_the_check_fail(venues: Venues) -> None:
    down = venues.connectors().kalshi.model_copy(  # type: ignore[union-attr]
        update={"rest_url": f"http://127.0.0.1:{free_port()}/trade-api/v2"})
    result = check(venues.env(venues.connectors(kalshi=down)))
    assert result.returncode == 1, result.stdout + result.stderr
    assert row(result.stdout, "kalshi")[1] == "no"
    assert row(result.stdout, "coinbase")[1] == row(result.stdout, "ibkr")[1] == "yes"


def test_a_market_data_websocket_that_is_down_shows_the_rest_polling_fallback(venues: Venues) -> None:
    coinbase = venues.connectors().coinbase.model_copy(  # type: ignore[union-attr]
        update={"ws_market_url": f"ws://127.0.0.1:{free_port()}/ws"})
    result = check(venues.env(venues.connectors(coinbase=coinbase)))
    assert result.returncode == 0, result.stdout + result.stderr  # degraded, yet reachable
    _, reachable, _, _, market_data, fallback, _, detail = row(result.stdout, "coinbase")
    assert (reachable, market_data, fallback) == ("yes", "polling", "rest-polling")
    assert "websocket down" in detail
    assert row(result.stdout, "ibkr")[4:6] == ["streaming", "-"]


def test_an_unknown_connector_setting_stops_and_names_the_field(venues: Venues) -> None:
    result = check(venues.env('{"kalshi": {"rest_ur": "http://127.0.0.1:1/trade-api/v2"}}'))
    assert result.returncode == 2
    assert "connectors.kalshi.rest_ur" in result.stdout and "unknown setting" in result.stdout


def test_missing_credentials_stop_and_name_the_connector(venues: Venues) -> None:
    env = venues.env(venues.connectors())
    del env["KALSHI_KEY_ID"]
    result = check(env)
    assert result.returncode == 2
    assert "connectors.kalshi: KALSHI_KEY_ID is not set" in result.stdout


def test_a_key_file_others_can_read_is_refused(venues: Venues, tmp_path: Path) -> None:
    exposed = tmp_path / "kalshi.pem"
    exposed.write_text(venues.kalshi_pem)
    exposed.chmod(0o644)
    kalshi_settings = venues.connectors().kalshi.model_copy(update={"secrets_file": exposed})  # type: ignore[union-attr]
    result = check(venues.env(venues.connectors(kalshi=kalshi_settings)))
    assert result.returncode == 2
    assert "accessible by group or others" in result.stdout
    assert venues.kalshi_pem.splitlines()[1] not in result.stdout + result.stderr
