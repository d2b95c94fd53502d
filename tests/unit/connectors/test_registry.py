"""Connector settings and the registry built from them: which connectors exist for which accounts, credentials
only from each connector's own loader, and every bad value stopping start-up with its field named."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from connectors.coinbase import CoinbaseConnector
from connectors.ibkr import IbkrConnector
from connectors.kalshi import KalshiConnector
from connectors.registry import build_registry
from connectors.simulated.market import default_catalog
from core.accounts import Account
from core.instruments import Venue
from core.types import ExecutionMode
from tests.kit.builders import OWNER
from tests.standins.coinbase import generate_key as coinbase_key
from tests.standins.kalshi import generate_key as kalshi_key
from tradestream.config import ENV_PREFIX, ConfigError, ConnectorSettings, Settings, load_settings

KALSHI_PEM, _ = kalshi_key()
COINBASE = coinbase_key("ES256")
ENV = {"KALSHI_KEY_ID": "key-1", "KALSHI_PRIVATE_KEY": KALSHI_PEM, "COINBASE_API_KEY_NAME": COINBASE.key_name,
       "COINBASE_API_PRIVATE_KEY": COINBASE.secret}
ACCOUNTS = [Account(account_id=name, owner=OWNER, mode=mode) for name, mode in (
    ("paper-main", ExecutionMode.PAPER), ("live-1", ExecutionMode.LIVE), ("live-2", ExecutionMode.LIVE),
    ("shadow-1", ExecutionMode.SHADOW))]
ALL: dict[str, Any] = {
    "kalshi": {"rest_url": "http://127.0.0.1:1/trade-api/v2", "accounts": ["live-1", "shadow-1"]},
    "coinbase": {"accounts": ["live-1"], "instruments": ["crypto_spot:BTC-USD"]},
    "ibkr": {"base_url": "http://127.0.0.1:1/v1/api/", "instruments": ["equity:AAPL", "future:ES-202612"],
             "accounts": {"live-1": "DU1111111", "shadow-1": "DU1111111", "live-2": "DU2222222"}},
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


def settings(connectors: dict[str, Any]) -> Settings:
    return load_settings(accounts=ACCOUNTS, connectors=connectors)


def build(connectors: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    return build_registry(settings(connectors).connectors, default_catalog(), ENV if environ is None else environ)


def test_no_connector_section_means_no_connector() -> None:
    assert build_registry(ConnectorSettings(), default_catalog(), ENV).bindings == ()


def test_each_enabled_venue_gets_its_connector_and_ibkr_one_per_venue_account() -> None:
    registry = build(ALL)
    assert [(b.name, type(b.connector), sorted(b.account_ids)) for b in registry.bindings] == [
        ("kalshi", KalshiConnector, ["live-1", "shadow-1"]), ("coinbase", CoinbaseConnector, ["live-1"]),
        ("ibkr:DU1111111", IbkrConnector, ["live-1", "shadow-1"]), ("ibkr:DU2222222", IbkrConnector, ["live-2"])]
    assert registry.binding_for("live-2", Venue.IBKR).name == "ibkr:DU2222222"
    assert registry.binding_for("live-2", Venue.KALSHI) is None
    assert registry.binding_for("paper-main", Venue.COINBASE) is None
    assert [b.name for b in registry.bindings_of("shadow-1")] == ["kalshi", "ibkr:DU1111111"]


def test_an_ibkr_connector_without_mapped_accounts_uses_its_loaders_account() -> None:
    registry = build({"ibkr": {"base_url": "http://127.0.0.1:1/v1/api/", "instruments": ["equity:AAPL"]}},
                     {"TRADESTREAM_IBKR_ACCOUNT_ID": "DU3333333"})
    (binding,) = registry.bindings
    assert (binding.name, binding.account_ids) == ("ibkr", frozenset())


def test_credentials_missing_from_the_environment_name_the_connector() -> None:
    with pytest.raises(ConfigError, match=r"connectors\.kalshi: KALSHI_KEY_ID is not set"):
        build({"kalshi": {}}, {})
    with pytest.raises(ConfigError, match=r"connectors\.coinbase: set COINBASE_API_KEY_NAME"):
        build({"coinbase": {}}, {})
    with pytest.raises(ConfigError, match=r"connectors\.ibkr: .*account_id"):
        build({"ibkr": {"instruments": ["equity:AAPL"]}}, {})


def test_the_secrets_file_is_read_by_the_connectors_loader_and_must_be_its_owners(tmp_path: Path) -> None:
    secrets = tmp_path / "coinbase.json"
    secrets.write_text(json.dumps({"name": COINBASE.key_name, "privateKey": COINBASE.secret}))
    secrets.chmod(0o600)
    (binding,) = build({"coinbase": {"secrets_file": str(secrets)}}, {}).bindings
    assert isinstance(binding.connector, CoinbaseConnector)
    secrets.chmod(0o640)
    with pytest.raises(ConfigError, match=r"connectors\.coinbase: .*accessible by group or others") as caught:
        build({"coinbase": {"secrets_file": str(secrets)}}, {})
    assert COINBASE.secret.splitlines()[1] not in str(caught.value)


def test_a_bad_connector_value_is_named_without_echoing_credentials() -> None:
    with pytest.raises(ConfigError, match=r"connectors\.kalshi\.\(config\): .*rest_url must include") as caught:
        build({"kalshi": {"rest_url": "http://127.0.0.1:1/v2"}})
    assert KALSHI_PEM.splitlines()[1] not in str(caught.value)
    with pytest.raises(ConfigError, match=r"connectors\.kalshi: the Kalshi private key is not"):
        build({"kalshi": {}}, {**ENV, "KALSHI_PRIVATE_KEY": "not a key"})


def test_an_instrument_of_another_venue_in_the_catalog_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"connectors\.coinbase\.instruments: 'equity:AAPL' is on ibkr in the "
                                          r"catalog, not on coinbase"):
        build({"coinbase": {"instruments": ["equity:AAPL"]}})


def test_an_instrument_the_catalog_lacks_is_left_to_the_venues_listing() -> None:
    (binding,) = build({"coinbase": {"instruments": ["crypto_spot:DOGE-USD"]}}).bindings
    assert binding.instrument_ids == ("crypto_spot:DOGE-USD",)


@pytest.mark.parametrize(("connectors", "message"), [
    ({"kalshi": {"rest_ur": "x"}}, r"connectors\.kalshi\.rest_ur: unknown setting"),
    ({"kalshi": {"accounts": ["paper-main"]}}, r"connectors\.kalshi\.accounts: 'paper-main' is not a configured "
                                                r"live or shadow account"),
    ({"coinbase": {"accounts": ["ghost"]}}, r"connectors\.coinbase\.accounts: 'ghost' is not"),
    ({"kalshi": {"accounts": ["live-1", "live-2"]}}, r"connectors\.kalshi\.accounts: \['live-1', 'live-2'\] would "
                                                      r"be live ledgers of one venue account"),
    ({"ibkr": {"accounts": {"live-1": "du-lower"}}}, r"connectors\.ibkr\.accounts\.live-1: String should match"),
    ({"ibkr": {"timeout_s": 0}}, r"connectors\.ibkr\.timeout_s: Input should be greater than 0"),
    ({"poll_interval_s": -1}, r"connectors\.poll_interval_s: Input should be greater than 0"),
])
def test_bad_connector_settings_stop_start_up_naming_the_field(connectors: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings(connectors)


def test_the_ibkr_loaders_own_variables_are_left_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADESTREAM_IBKR_ACCOUNT_ID", "DU1234567")
    monkeypatch.setenv("TRADESTREAM_CONNECTORS__COINBASE__RETRY_ATTEMPTS", "2")
    assert load_settings(accounts=ACCOUNTS).connectors.coinbase is not None
