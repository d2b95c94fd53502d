"""Configuration: environment, owner-only secrets files, and keys that never show."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from connectors.coinbase.auth import CredentialsError, SigningAlgorithm
from connectors.coinbase.config import CoinbaseConfig
from connectors.coinbase.constants import REST_URL, SANDBOX_REST_URL, WS_MARKET_URL, WS_USER_URL
from tests.standins.coinbase import generate_key


def write_secrets(tmp_path: Path, document: object, mode: int) -> Path:
    path = tmp_path / "cdp_api_key.json"
    path.write_text(json.dumps(document))
    os.chmod(path, mode)
    return path


def test_defaults_point_at_production() -> None:
    key = generate_key("ES256")
    config = CoinbaseConfig(key_name=key.key_name, private_key=SecretStr(key.secret))
    assert (config.rest_url, config.ws_market_url, config.ws_user_url) == (REST_URL, WS_MARKET_URL, WS_USER_URL)
    assert config.algorithm is SigningAlgorithm.ES256 and config.uri_host == "api.coinbase.com"


def test_from_env_reads_credentials_and_urls() -> None:
    key = generate_key("EdDSA")
    config = CoinbaseConfig.from_env({"COINBASE_API_KEY_NAME": key.key_name, "COINBASE_API_PRIVATE_KEY": key.secret,
                                      "COINBASE_JWT_ALGORITHM": "EdDSA",
                                      "COINBASE_REST_URL": SANDBOX_REST_URL},
                                     timeout_s=3.0)
    assert config.algorithm is SigningAlgorithm.EDDSA and config.timeout_s == 3.0
    assert config.uri_host == "api-sandbox.coinbase.com"


def test_from_env_without_credentials_names_what_is_missing() -> None:
    with pytest.raises(CredentialsError, match="COINBASE_API_PRIVATE_KEY"):
        CoinbaseConfig.from_env({"COINBASE_API_KEY_NAME": "organizations/o/apiKeys/k"})


def test_owner_only_secrets_file_is_read(tmp_path: Path) -> None:
    key = generate_key("ES256")
    path = write_secrets(tmp_path, {"name": key.key_name, "privateKey": key.secret}, 0o600)
    config = CoinbaseConfig.from_env({"COINBASE_API_SECRETS_FILE": str(path)})
    assert config.key_name == key.key_name
    assert config.private_key.get_secret_value() == key.secret


def test_ed25519_key_file_uses_id_and_its_algorithm(tmp_path: Path) -> None:
    key = generate_key("EdDSA")
    path = write_secrets(tmp_path, {"id": key.key_name, "privateKey": key.secret, "algorithm": "EdDSA"}, 0o400)
    assert CoinbaseConfig.from_secrets_file(path).algorithm is SigningAlgorithm.EDDSA


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644, 0o610])
def test_secrets_file_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    key = generate_key("ES256")
    path = write_secrets(tmp_path, {"name": key.key_name, "privateKey": key.secret}, mode)
    with pytest.raises(CredentialsError, match="chmod 600") as caught:
        CoinbaseConfig.from_secrets_file(path)
    assert f"{mode:04o}" in str(caught.value)


def test_unreadable_secrets_file_never_quotes_its_content(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "k", "privateKey": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI')
    os.chmod(path, 0o600)
    with pytest.raises(CredentialsError) as caught:
        CoinbaseConfig.from_secrets_file(path)
    assert "MHcCAQEEI" not in str(caught.value) and caught.value.__cause__ is None


def test_missing_secrets_file_is_a_credentials_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read"):
        CoinbaseConfig.from_secrets_file(tmp_path / "absent.json")


def test_bad_key_is_refused_at_construction_without_echoing_it() -> None:
    secret = "-----BEGIN EC PRIVATE KEY-----\nTHISISNOTAKEYBUTLOOKSSECRET\n-----END EC PRIVATE KEY-----\n"
    with pytest.raises(CredentialsError) as caught:
        CoinbaseConfig(key_name="organizations/o/apiKeys/k", private_key=SecretStr(secret))
    assert "THISISNOTAKEY" not in str(caught.value)


def test_validation_errors_never_echo_the_key() -> None:
    key = generate_key("ES256")
    with pytest.raises(ValidationError) as caught:
        CoinbaseConfig(key_name="", private_key=SecretStr(key.secret), timeout_s=-1)
    assert "PRIVATE KEY" not in str(caught.value) and key.secret[40:60] not in str(caught.value)


def test_config_repr_hides_the_key() -> None:
    key = generate_key("ES256")
    config = CoinbaseConfig(key_name=key.key_name, private_key=SecretStr(key.secret))
    assert key.secret[40:60] not in repr(config) and key.secret[40:60] not in str(config)
    assert "**********" in repr(config)


def test_config_is_frozen_and_rejects_unknown_fields() -> None:
    key = generate_key("ES256")
    config = CoinbaseConfig(key_name=key.key_name, private_key=SecretStr(key.secret))
    with pytest.raises(ValidationError):
        config.timeout_s = 1.0  # type: ignore[misc]
    with pytest.raises(ValidationError):
        CoinbaseConfig(key_name=key.key_name, private_key=SecretStr(key.secret), api_secret="x")  # type: ignore[call-arg]
