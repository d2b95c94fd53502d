"""Settings: one pydantic-settings object from TRADESTREAM_* env vars and an optional TOML file.

Unknown keys and invalid values stop start-up with the field named (`ConfigError`).
Nested fields use a double underscore in env vars: TRADESTREAM_RISK__MAX_ORDER_NOTIONAL=5000.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from core.accounts import Account, Owner
from core.risk import RiskPolicy
from core.types import ExecutionMode

ENV_PREFIX = "TRADESTREAM_"
CONFIG_FILE_ENV = "TRADESTREAM_CONFIG"
IBKR_ENV_PREFIX = "TRADESTREAM_IBKR_"
"""The IBKR connector's own settings (connectors.ibkr.config); its loader validates them, not ours."""
REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(Exception):
    """Invalid configuration; the message names every offending field."""


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeedSettings(Section):
    seed: int = 42
    interval_ms: int = Field(default=100, ge=1, le=60_000)
    """Time between two quote rounds (one quote per instrument per round)."""


class StrategySettings(Section):
    name: str = "sma_crossover"
    strategy_id: str = "sma-1"
    account_id: str = "paper-main"
    params: dict[str, Any] = Field(default_factory=lambda: {"fast": 5, "slow": 20, "quantity": {
        "event_contract:KXHIGHNY-26NOV30-T60": "10", "crypto_spot:BTC-USD": "0.01", "equity:AAPL": "10",
        "option:AAPL-20261218-C-250": "1", "future:ES-202612": "1", "metal:XAUUSD": "1"}})
    """The default trades every instrument of the simulated market (connectors/simulated/market.py)."""


class VenueSettings(Section):
    """One enabled venue connector. Credentials are never here: the connector's own loader reads them from its
    environment variables or from the owner-only `secrets_file` (in that connector's format)."""

    instruments: tuple[str, ...] = ()
    """Canonical ids quoted from this venue into md.quotes (the shared market view the risk gate reads)."""
    secrets_file: Path | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    """Per request; None keeps the connector's default (as for the retry settings)."""
    retry_attempts: int | None = Field(default=None, ge=1)
    retry_base_s: float | None = Field(default=None, gt=0)
    retry_cap_s: float | None = Field(default=None, gt=0)


class KalshiSettings(VenueSettings):
    rest_url: str | None = None
    """Default: the environment's (demo unless KALSHI_ENVIRONMENT=production)."""
    ws_url: str | None = None
    accounts: tuple[str, ...] = ()
    """Our live and shadow accounts backed by the Kalshi account the credentials open."""


class CoinbaseSettings(VenueSettings):
    rest_url: str | None = None
    ws_market_url: str | None = None
    ws_user_url: str | None = None
    accounts: tuple[str, ...] = ()
    """Our live and shadow accounts backed by the Coinbase account the credentials open."""


IbkrAccountId = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{2,32}$")]


class IbkrSettings(VenueSettings):
    base_url: str | None = None
    ws_url: str | None = None
    accounts: dict[str, IbkrAccountId] = Field(default_factory=dict)
    """Our live and shadow accounts -> the IBKR account (e.g. DU1234567) each one trades."""

    def account_ids(self) -> dict[str, tuple[str, ...]]:
        """IBKR account -> our accounts backed by it."""
        backed: dict[str, tuple[str, ...]] = {}
        for ours, theirs in self.accounts.items():
            backed[theirs] = (*backed.get(theirs, ()), ours)
        return backed


class ConnectorSettings(Section):
    """The venue connectors the worker, `tradestream connectors check` and `tradestream reconcile` use; a venue
    is enabled by having a section."""

    kalshi: KalshiSettings | None = None
    coinbase: CoinbaseSettings | None = None
    ibkr: IbkrSettings | None = None
    poll_interval_s: float = Field(default=2.0, gt=0)
    """How often live fills are polled and live orders whose venue outcome is unknown are looked up."""
    instruments_refresh_s: float = Field(default=300.0, gt=0)
    """How often every enabled connector's instruments are read again into the instrument registry."""
    health_interval_s: float = Field(default=5.0, gt=0)
    """How often the worker publishes each connector's health (shown by /health)."""

    def venue_accounts(self) -> dict[str, tuple[tuple[str, ...], ...]]:
        """Field name -> the groups of our accounts that share one venue account."""
        groups: dict[str, tuple[tuple[str, ...], ...]] = {}
        if self.kalshi is not None:
            groups["kalshi"] = (self.kalshi.accounts,)
        if self.coinbase is not None:
            groups["coinbase"] = (self.coinbase.accounts,)
        if self.ibkr is not None:
            groups["ibkr"] = tuple(self.ibkr.account_ids().values())
        return groups


def _default_accounts() -> list[Account]:
    return [Account(account_id="paper-main", owner=Owner(org_id="default", user_id="operator"),
                    mode=ExecutionMode.PAPER, starting_cash=Decimal("1000000"))]


def _default_risk() -> RiskPolicy:
    return RiskPolicy(policy_id="default", version=1, max_order_notional=Decimal("1000000"),
                      max_position_quantity=Decimal("10000"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid",
                                      frozen=True)

    state_dir: Path = REPO_ROOT / ".tradestream"
    kafka_port: int = Field(default=19092, ge=1, le=65535)
    kafka_controller_port: int = Field(default=19093, ge=1, le=65535)
    postgres_port: int = Field(default=15432, ge=1, le=65535)
    redis_port: int = Field(default=16379, ge=1, le=65535)
    kafka_bootstrap: str | None = None
    """Overrides 127.0.0.1:kafka_port, e.g. for an existing cluster."""
    postgres_dsn: SecretStr | None = None
    redis_url: SecretStr | None = None
    risk_seal_key: SecretStr | None = None
    """Key of the risk gate's decision seals; default: a 0600 file in the state dir, made on first use."""
    risk_policy_file: Path | None = None
    """TOML policy book (`[[policies]]`), reloaded when it changes; without one, `risk` is the default policy."""

    app_id: str = Field(default="tradestream", pattern=r"^[a-z][a-z0-9_\-]{0,63}$")
    topic_prefix: str = Field(default="", pattern=r"^([a-z0-9_\-]{1,40}\.)?$")
    """Prepended to every topic name; ends with a dot, e.g. `test-1a2b.`"""
    topic_partitions: int = Field(default=1, ge=1, le=256)
    """Partitions of each keyed topic: how many workers can share the order flow. Set it to the parallelism you
    plan before the topics exist (a keyed topic's partitions cannot change without moving its keys). One worker
    gains nothing from more, and pays for them: the Python Kafka client encodes and decodes every assigned
    partition on every fetch, about a millisecond of CPU per order with four partitions per topic."""
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    pnl_interval_s: float = Field(default=2.0, gt=0)

    feed: FeedSettings = FeedSettings()
    strategy: StrategySettings = StrategySettings()
    accounts: list[Account] = Field(default_factory=_default_accounts, min_length=1)
    risk: RiskPolicy = Field(default_factory=_default_risk)
    connectors: ConnectorSettings = ConnectorSettings()

    @field_validator("risk", mode="before")
    @classmethod
    def _risk_over_defaults(cls, value: Any) -> Any:
        """A partial risk section (`TRADESTREAM_RISK__MAX_ORDER_NOTIONAL=5000`) changes only what it names."""
        if isinstance(value, dict):
            return {**_default_risk().model_dump(), **value}
        return value

    @model_validator(mode="after")
    def _accounts_consistent(self) -> Settings:
        ids = [a.account_id for a in self.accounts]
        if len(set(ids)) != len(ids):
            raise ValueError("accounts: account_id values must be unique")
        if self.strategy.account_id not in ids:
            raise ValueError(f"strategy.account_id: {self.strategy.account_id!r} is not a configured account")
        return self

    @field_validator("connectors")
    @classmethod
    def _connector_accounts(cls, value: ConnectorSettings, info: ValidationInfo) -> ConnectorSettings:
        # A field validator (accounts are validated before it): its error echoes the connector settings only.
        modes = {a.account_id: a.mode for a in info.data.get("accounts", ())}
        for venue, groups in value.venue_accounts().items():
            for group in groups:
                for account_id in group:
                    if modes.get(account_id) not in (ExecutionMode.LIVE, ExecutionMode.SHADOW):
                        raise ValueError(f"connectors.{venue}.accounts: {account_id!r} is not a configured live or "
                                         "shadow account")
                # Two ledgers for one real account could never both reconcile: one live account per venue account.
                live = [a for a in group if modes[a] is ExecutionMode.LIVE]
                if len(live) > 1:
                    raise ValueError(f"connectors.{venue}.accounts: {live} would be live ledgers of one venue account")
        return value

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def dsn(self) -> str:
        if self.postgres_dsn is not None:
            return self.postgres_dsn.get_secret_value()
        return f"postgresql://tradestream@127.0.0.1:{self.postgres_port}/tradestream"

    @property
    def redis(self) -> str:
        return self.redis_url.get_secret_value() if self.redis_url else f"redis://127.0.0.1:{self.redis_port}/0"

    def account(self, account_id: str) -> Account | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)


def _unknown_env_keys() -> list[str]:
    """pydantic-settings ignores env vars that match no field; we refuse them so a typo cannot pass silently."""
    known = {name.upper() for name in Settings.model_fields} | {CONFIG_FILE_ENV[len(ENV_PREFIX):]}
    unknown = []
    for key in os.environ:
        if key.startswith(ENV_PREFIX) and not key.startswith(IBKR_ENV_PREFIX):
            top = key[len(ENV_PREFIX):].split("__", 1)[0]
            if top not in known:
                unknown.append(key)
    return sorted(unknown)


_SECRET_FIELD_WORDS = ("key", "dsn", "url", "secret", "password", "token")


def _shown_input(field: str, value: Any) -> str:
    """The offending value, unless it could hold a secret (a secret field, or a whole section echoed back)."""
    if isinstance(value, dict | list | tuple) or any(word in field.lower() for word in _SECRET_FIELD_WORDS):
        return ""
    return f" (got {value!r})"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings or raise ConfigError naming each bad field and what is wrong with it."""
    unknown = _unknown_env_keys()
    if unknown:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {k}: unknown setting" for k in unknown))
    config_file = os.environ.get(CONFIG_FILE_ENV)
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"invalid configuration:\n  {CONFIG_FILE_ENV}: file not found: {config_file}")
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(settings)"
            if error["type"] == "extra_forbidden":
                lines.append(f"  {field}: unknown setting")
            else:
                lines.append(f"  {field}: {error['msg']}{_shown_input(field, error.get('input'))}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
