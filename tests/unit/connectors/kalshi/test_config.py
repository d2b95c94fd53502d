from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError

from connectors.kalshi.config import KalshiConfig, KalshiConfigError
from connectors.kalshi.constants import KalshiEnvironment

PEM = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"


def write_key(tmp_path: Path, mode: int) -> Path:
    path = tmp_path / "kalshi.key"
    path.write_text(PEM)
    path.chmod(mode)
    return path


def test_demo_is_the_default_and_production_is_explicit() -> None:
    demo = KalshiConfig(key_id="k", private_key_pem=SecretStr(PEM))
    production = KalshiConfig(key_id="k", private_key_pem=SecretStr(PEM), environment=KalshiEnvironment.PRODUCTION)

    assert demo.rest_base_url == "https://demo-api.kalshi.co/trade-api/v2"
    assert demo.ws_base_url == "wss://demo-api.kalshi.co/trade-api/ws/v2"
    assert production.rest_base_url == "https://external-api.kalshi.com/trade-api/v2"
    assert production.ws_base_url == "wss://external-api-ws.kalshi.com/trade-api/ws/v2"


def test_basic_tier_rate_limits_are_separate_for_reads_and_writes() -> None:
    config = KalshiConfig(key_id="k", private_key_pem=SecretStr(PEM))

    assert (config.read_rate_per_s, config.write_rate_per_s) == (20.0, 10.0)


def test_from_env_with_an_inline_key() -> None:
    config = KalshiConfig.from_env({"KALSHI_KEY_ID": "k", "KALSHI_PRIVATE_KEY": PEM,
                                    "KALSHI_ENVIRONMENT": "production"})

    assert config.private_key_pem.get_secret_value() == PEM
    assert config.environment is KalshiEnvironment.PRODUCTION


def test_from_env_reads_a_key_file_only_its_owner_can_read(tmp_path: Path) -> None:
    path = write_key(tmp_path, 0o600)

    config = KalshiConfig.from_env({"KALSHI_KEY_ID": "k", "KALSHI_PRIVATE_KEY_FILE": str(path)})

    assert config.private_key_pem.get_secret_value() == PEM


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_key(tmp_path, mode)

    with pytest.raises(KalshiConfigError, match="chmod 600") as caught:
        KalshiConfig.from_env({"KALSHI_KEY_ID": "k", "KALSHI_PRIVATE_KEY_FILE": str(path)})

    assert f"{mode:04o}" in str(caught.value) and "c2VjcmV0" not in str(caught.value)


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KalshiConfigError, match="cannot read the key file"):
        KalshiConfig.from_env({"KALSHI_KEY_ID": "k", "KALSHI_PRIVATE_KEY_FILE": str(tmp_path / "none")})


@pytest.mark.parametrize(("environ", "problem"), [
    ({"KALSHI_PRIVATE_KEY": PEM}, "KALSHI_KEY_ID is not set"),
    ({"KALSHI_KEY_ID": "k"}, "neither"),
    ({"KALSHI_KEY_ID": "k", "KALSHI_PRIVATE_KEY": PEM, "KALSHI_PRIVATE_KEY_FILE": "/x"}, "only one"),
    ({"KALSHI_KEY_ID": "k", "KALSHI_PRIVATE_KEY": PEM, "KALSHI_ENVIRONMENT": "staging"}, "must be one of"),
])
def test_from_env_refuses_an_incomplete_or_ambiguous_environment(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(KalshiConfigError, match=problem) as caught:
        KalshiConfig.from_env(environ)

    assert "c2VjcmV0" not in str(caught.value)


def test_a_rest_url_without_the_signed_path_is_refused() -> None:
    with pytest.raises(ValidationError, match="/trade-api/"):
        KalshiConfig(key_id="k", private_key_pem=SecretStr(PEM), rest_url="http://127.0.0.1:8080")


def test_page_limit_cannot_exceed_kalshis_maximum() -> None:
    with pytest.raises(ValidationError):
        KalshiConfig(key_id="k", private_key_pem=SecretStr(PEM), page_limit=1001)


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        KalshiConfig(key_id="k", private_key_pem=SecretStr(PEM), api_secret="x")  # type: ignore[call-arg]


def test_the_key_never_appears_in_repr_or_dumps(rsa_key: tuple[str, rsa.RSAPublicKey]) -> None:
    config = KalshiConfig(key_id="k", private_key_pem=SecretStr(rsa_key[0]))

    shown = repr(config) + str(config) + repr(config.model_dump()) + config.model_dump_json()

    assert not [line for line in rsa_key[0].splitlines() if "-----" not in line and line in shown]


def test_a_key_file_owned_by_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_key(tmp_path, 0o400)
    monkeypatch.setattr(os, "getuid", lambda: path.stat().st_uid + 1)

    with pytest.raises(KalshiConfigError, match="not owned by the user"):
        KalshiConfig.from_env({"KALSHI_KEY_ID": "k", "KALSHI_PRIVATE_KEY_FILE": str(path)})
