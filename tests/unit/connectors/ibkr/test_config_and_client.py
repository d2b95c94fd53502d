"""IBKR configuration loading and the client's pure helpers: error mapping, redaction, websocket decoding."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from connectors.errors import (
    AuthenticationError,
    MalformedResponseError,
    RateLimitedError,
    VenueClientError,
    VenueServerError,
)
from connectors.ibkr import IbkrConfig, WatchEntry, load_config
from connectors.ibkr.auth import SessionKeeper, bearer_signer
from connectors.ibkr.client import MarketDataSocket, raw_body, read_error
from connectors.ibkr.constants import OAUTH_BASE_URL, OAUTH_WS_URL
from connectors.ibkr.schemas import AuthStatus, TickleReply
from tests.standins.ibkr import resource
from tradestream.config import ConfigError

TOKEN = "oauth-token-0f1e2d3c4b5a"
WATCH = (WatchEntry(instrument_id="equity:AAPL"),)


def _env(**values: str) -> dict[str, str]:
    return {f"TRADESTREAM_IBKR_{key.upper()}": value for key, value in values.items()}


# --- config ---------------------------------------------------------------------------------------------------------

def test_the_environment_builds_a_config_with_a_watch_list() -> None:
    config = load_config(_env(account_id="DU1234567",
                              watchlist="equity:AAPL, future:ES-202612@0.25,metal:XAUUSD"))

    assert config.is_paper and config.tls_verify
    assert [(e.instrument_id, e.tick) for e in config.watchlist] == [
        ("equity:AAPL", Decimal("0.01")), ("future:ES-202612", Decimal("0.25")), ("metal:XAUUSD", Decimal("0.01"))]
    assert config.base_url == "https://localhost:5000/v1/api/"


def test_a_live_account_is_not_paper() -> None:
    assert not IbkrConfig(account_id="U7654321", watchlist=WATCH).is_paper


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="TRADESTREAM_IBKR_ACOUNT_ID: unknown setting"):
        load_config(_env(acount_id="DU1", watchlist="equity:AAPL"))


def test_a_future_without_a_tick_size_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs tick_size"):
        load_config(_env(account_id="DU1234567", watchlist="future:ES-202612"))


@pytest.mark.parametrize("overrides", [
    {"base_url": "https://api.ibkr.com/v1/api/"},
    {"base_url": "https://api.ibkr.com/v1/api/", "oauth_token": TOKEN, "tls_verify": False},
    {"base_url": "http://gateway.internal:5000/v1/api/"},
    {"base_url": "https://localhost:5000/v1/api"},
    {"ws_url": "https://localhost:5000/v1/api/ws"},
])
def test_unsafe_or_inconsistent_connection_settings_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        IbkrConfig(account_id="DU1234567", watchlist=WATCH, **overrides)


def test_the_local_gateway_may_skip_tls_verification_only_when_told() -> None:
    config = IbkrConfig(account_id="DU1234567", watchlist=WATCH, tls_verify=False)

    assert not config.tls_verify


def test_the_oauth_endpoint_with_a_token_is_accepted() -> None:
    config = IbkrConfig(account_id="U7654321", watchlist=WATCH, base_url=OAUTH_BASE_URL, ws_url=OAUTH_WS_URL,
                        oauth_token=SecretStr(TOKEN))

    assert TOKEN not in repr(config) and TOKEN not in str(config.model_dump())


def test_the_secrets_file_is_read_only_when_its_owner_alone_can_read_it(tmp_path: Path) -> None:
    secrets = tmp_path / "ibkr.json"
    secrets.write_text(json.dumps({"oauth_token": TOKEN, "account_id": "U7654321"}))
    env = _env(secrets_file=str(secrets), base_url="https://api.ibkr.com/v1/api/", watchlist="equity:AAPL")

    secrets.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by its owner only"):
        load_config(env)
    secrets.chmod(0o600)
    config = load_config(env)

    assert config.oauth_token is not None and config.oauth_token.get_secret_value() == TOKEN
    assert config.account_id == "U7654321"


def test_a_config_error_never_echoes_the_token(tmp_path: Path) -> None:
    secrets = tmp_path / "ibkr.json"
    secrets.write_text(json.dumps({"oauth_token": TOKEN}))
    os.chmod(secrets, 0o600)

    with pytest.raises(ConfigError) as caught:
        load_config(_env(secrets_file=str(secrets), base_url="https://api.ibkr.com/v1/api/", tls_verify="false",
                         account_id="U1", watchlist="equity:AAPL"))

    assert TOKEN not in str(caught.value)


# --- client helpers -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "kind"), [(401, AuthenticationError), (403, AuthenticationError),
                                              (429, RateLimitedError), (503, VenueServerError),
                                              (400, VenueClientError), (404, VenueClientError)])
def test_an_ibkr_error_body_maps_to_a_typed_error(status: int, kind: type[Exception]) -> None:
    error = read_error(status, {"error": "no bridge"})

    assert type(error) is kind and error is not None and "no bridge" in str(error)


def test_a_body_without_an_error_message_falls_back_to_the_generic_mapping() -> None:
    assert read_error(500, None) is None and read_error(400, {"message": "x"}) is None


def test_raw_bodies_mask_the_session_id() -> None:
    text = raw_body({"session": "abc123secret", "iserver": {"authStatus": {"authenticated": True}}})

    assert "abc123secret" not in text and "authenticated" in text


def test_the_bearer_signer_adds_the_token_header() -> None:
    assert bearer_signer(SecretStr(TOKEN))("GET", "/v1/api/tickle", b"") == {"Authorization": f"Bearer {TOKEN}"}


def test_only_market_data_messages_come_out_of_the_socket() -> None:
    data = resource("market_data.json")

    assert MarketDataSocket._decode(json.dumps(data["smd"]).encode()) is not None
    assert all(MarketDataSocket._decode(json.dumps(data[k])) is None for k in ("system", "sts", "tic"))
    with pytest.raises(MalformedResponseError):
        MarketDataSocket._decode("not json")
    with pytest.raises(MalformedResponseError):
        MarketDataSocket._decode(json.dumps({"topic": "smd+265598", "84": ["230"]}))


# --- session --------------------------------------------------------------------------------------------------------

async def test_the_session_generation_moves_each_time_the_session_becomes_usable() -> None:
    answers = [AuthStatus(authenticated=True, competing=False, connected=True)]

    async def auth_status() -> AuthStatus:
        return answers[-1]

    async def tickle() -> TickleReply:
        raise AssertionError("not called")

    keeper = SessionKeeper(auth_status, tickle, interval_s=60)
    await keeper.require()
    await keeper.require()
    keeper.lost()
    answers.append(AuthStatus(authenticated=False, competing=False, connected=True))
    with pytest.raises(AuthenticationError):
        await keeper.require()
    answers.append(AuthStatus(authenticated=True, competing=False, connected=True))
    await keeper.require()

    assert keeper.generation == 2
