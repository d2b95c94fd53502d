"""Kalshi connector configuration: endpoints, credentials (never logged), rate limits and timings.

Credentials come from the environment (`KALSHI_KEY_ID` plus `KALSHI_PRIVATE_KEY` or `KALSHI_PRIVATE_KEY_FILE`)
or are passed in; a key file must be readable by its owner only.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from connectors.kalshi.constants import (
    BASIC_READS_PER_S,
    BASIC_WRITES_PER_S,
    MAX_PAGE_LIMIT,
    REST_URLS,
    WS_URLS,
    KalshiEnvironment,
    SelfTradePrevention,
)
from connectors.resilience import BackoffPolicy

ENV_KEY_ID = "KALSHI_KEY_ID"
ENV_PRIVATE_KEY = "KALSHI_PRIVATE_KEY"
ENV_PRIVATE_KEY_FILE = "KALSHI_PRIVATE_KEY_FILE"
ENV_ENVIRONMENT = "KALSHI_ENVIRONMENT"


class KalshiConfigError(ValueError):
    """The Kalshi configuration is unusable. The message names the problem, never the key material."""


class KalshiConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: KalshiEnvironment = KalshiEnvironment.DEMO
    """Demo by default: production is chosen explicitly."""
    rest_url: str | None = None
    """Overrides the environment's REST base URL (must end in /trade-api/v2: the path is signed)."""
    ws_url: str | None = None
    key_id: str = Field(min_length=1)
    private_key_pem: SecretStr

    read_rate_per_s: float = Field(default=BASIC_READS_PER_S, gt=0)
    write_rate_per_s: float = Field(default=BASIC_WRITES_PER_S, gt=0)
    timeout_s: float = Field(default=5.0, gt=0)
    retry_base_s: float = Field(default=0.2, gt=0)
    retry_cap_s: float = Field(default=10.0, gt=0)
    retry_attempts: int = Field(default=6, ge=1)
    reconnect_base_s: float = Field(default=0.5, gt=0)
    reconnect_cap_s: float = Field(default=30.0, gt=0)
    ws_ping_interval_s: float = Field(default=10.0, gt=0)
    ws_open_timeout_s: float = Field(default=10.0, gt=0)
    poll_interval_s: float = Field(default=2.0, gt=0)
    """Quote polling period while the websocket is down."""
    lookup_attempts: int = Field(default=3, ge=1)
    """Order look-ups by client order id after a 409 or a lost answer (the venue may lag)."""
    page_limit: int = Field(default=MAX_PAGE_LIMIT, ge=1, le=MAX_PAGE_LIMIT)
    series_tickers: tuple[str, ...] = ()
    """Restrict `instruments()` to these series; empty means every open market."""
    self_trade_prevention: SelfTradePrevention = SelfTradePrevention.TAKER_AT_CROSS

    @model_validator(mode="after")
    def _caps_above_bases(self) -> KalshiConfig:
        if self.retry_cap_s < self.retry_base_s or self.reconnect_cap_s < self.reconnect_base_s:
            raise ValueError("backoff caps must not be below their bases")
        if self.rest_url is not None and not urlsplit(self.rest_url).path.startswith("/trade-api/"):
            raise ValueError("rest_url must include the /trade-api/... path: it is part of every signature")
        return self

    @property
    def rest_base_url(self) -> str:
        return self.rest_url or REST_URLS[self.environment]

    @property
    def ws_base_url(self) -> str:
        return self.ws_url or WS_URLS[self.environment]

    @property
    def retry_policy(self) -> BackoffPolicy:
        return BackoffPolicy(base_s=self.retry_base_s, cap_s=self.retry_cap_s, max_attempts=self.retry_attempts)

    @property
    def reconnect_policy(self) -> BackoffPolicy:
        """Only its delays are used: reconnecting never gives up."""
        return BackoffPolicy(base_s=self.reconnect_base_s, cap_s=self.reconnect_cap_s)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> KalshiConfig:
        key_id = environ.get(ENV_KEY_ID)
        if not key_id:
            raise KalshiConfigError(f"{ENV_KEY_ID} is not set")
        inline, path = environ.get(ENV_PRIVATE_KEY), environ.get(ENV_PRIVATE_KEY_FILE)
        if inline and path:
            raise KalshiConfigError(f"set only one of {ENV_PRIVATE_KEY} and {ENV_PRIVATE_KEY_FILE}")
        if path:
            pem = read_secret_file(Path(path))
        elif inline:
            pem = SecretStr(inline)
        else:
            raise KalshiConfigError(f"neither {ENV_PRIVATE_KEY} nor {ENV_PRIVATE_KEY_FILE} is set")
        fields: dict[str, Any] = {"key_id": key_id, "private_key_pem": pem}
        if ENV_ENVIRONMENT in environ:
            try:
                fields["environment"] = KalshiEnvironment(environ[ENV_ENVIRONMENT])
            except ValueError:
                raise KalshiConfigError(f"{ENV_ENVIRONMENT} must be one of "
                                        f"{[e.value for e in KalshiEnvironment]}") from None
        return cls(**{**fields, **overrides})


def read_secret_file(path: Path) -> SecretStr:
    """Read a key file, refusing one that its group or other users could read or that someone else owns."""
    try:
        info = path.stat()
    except OSError as exc:
        raise KalshiConfigError(f"cannot read the key file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KalshiConfigError(f"the key file {path} is not a regular file")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KalshiConfigError(f"the key file {path} is accessible by group or others "
                                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}")
    if info.st_uid != os.getuid():
        raise KalshiConfigError(f"the key file {path} is not owned by the user running the connector")
    return SecretStr(path.read_text())
