import os
from pathlib import Path

import pytest

from tradestream.config import ENV_PREFIX, ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each case sees only the variables it sets, not the machine's (CI may set ports)."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)


def test_defaults_load(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.bootstrap_servers.startswith("127.0.0.1:")
    assert settings.accounts[0].mode.value == "paper"


def test_invalid_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADESTREAM_KAFKA_PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"kafka_port: .*integer.*'not-a-port'"):
        load_settings()


def test_nested_invalid_value_names_the_nested_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADESTREAM_RISK__MAX_ORDER_NOTIONAL", "-5")
    with pytest.raises(ConfigError, match=r"risk\.max_order_notional: .*must be > 0"):
        load_settings()


def test_unknown_env_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADESTREAM_KAFKA_PROT", "1")
    with pytest.raises(ConfigError, match="TRADESTREAM_KAFKA_PROT: unknown setting"):
        load_settings()


def test_toml_file_is_read_and_its_unknown_keys_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('api_port = 8123\n[feed]\nseed = 7\n')
    monkeypatch.setenv("TRADESTREAM_CONFIG", str(good))
    settings = load_settings()
    assert (settings.api_port, settings.feed.seed) == (8123, 7)
    bad = tmp_path / "bad.toml"
    bad.write_text('[feed]\nsede = 7\n')
    monkeypatch.setenv("TRADESTREAM_CONFIG", str(bad))
    with pytest.raises(ConfigError, match=r"feed\.sede: unknown setting"):
        load_settings()


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRADESTREAM_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match="file not found"):
        load_settings()


def test_strategy_account_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADESTREAM_STRATEGY__ACCOUNT_ID", "ghost")
    with pytest.raises(ConfigError, match=r"strategy\.account_id: 'ghost' is not a configured account"):
        load_settings()


def test_one_nested_risk_value_changes_only_that_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADESTREAM_RISK__MAX_ORDER_NOTIONAL", "5000")
    settings = load_settings()
    assert settings.risk.max_order_notional == 5000
    assert settings.risk.max_position_quantity == load_settings().risk.max_position_quantity != 0


def test_errors_never_echo_a_secret_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADESTREAM_POSTGRES_DSN", "postgresql://u:hunter2@h/db")
    monkeypatch.setenv("TRADESTREAM_REDIS_URL", "redis://:hunter3@h/0")
    monkeypatch.setenv("TRADESTREAM_API_PORT", "hunter4")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "api_port" in str(caught.value) and "hunter4" in str(caught.value)
    monkeypatch.setenv("TRADESTREAM_API_PORT", "8000")
    monkeypatch.setenv("TRADESTREAM_STRATEGY__ACCOUNT_ID", "ghost")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value) and "hunter3" not in str(caught.value)
