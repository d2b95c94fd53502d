"""IBKR connector configuration: frozen, unknown fields refused, cross-field rules checked at construction.

Loaded from TRADESTREAM_IBKR_* environment variables and, optionally, a JSON secrets file that only its owner
may read (TRADESTREAM_IBKR_SECRETS_FILE). The OAuth bearer token is a SecretStr: it is never logged.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from connectors.ibkr.constants import (
    DEFAULT_TICK_SIZES,
    ENDPOINT_MIN_INTERVAL_S,
    GATEWAY_BASE_URL,
    GATEWAY_WS_URL,
    PAPER_ACCOUNT_PREFIX,
    REQUESTS_PER_S,
    US_STOCK_SIZE_LOT,
)
from connectors.ibkr.parsing import ContractSpec, parse_instrument_id
from core.types import Positive
from tradestream.config import ConfigError

ENV_PREFIX = "TRADESTREAM_IBKR_"
SECRETS_FILE_ENV = f"{ENV_PREFIX}SECRETS_FILE"
_ENV_FIELDS = ("base_url", "ws_url", "account_id", "tls_verify", "tls_ca_file", "oauth_token", "watchlist")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WatchEntry(_Section):
    """One instrument the connector serves, named by its canonical id (see `parse_instrument_id`)."""

    instrument_id: str
    tick_size: Positive | None = None

    @model_validator(mode="after")
    def _resolvable(self) -> WatchEntry:
        spec = parse_instrument_id(self.instrument_id)
        if self.tick_size is None and spec.asset_class not in DEFAULT_TICK_SIZES:
            raise ValueError(f"{self.instrument_id}: a {spec.asset_class.value} needs tick_size (IBKR's contract "
                             "info does not give one)")
        return self

    @property
    def spec(self) -> ContractSpec:
        return parse_instrument_id(self.instrument_id)

    @property
    def tick(self) -> Decimal:
        return self.tick_size if self.tick_size is not None else DEFAULT_TICK_SIZES[self.spec.asset_class]


class IbkrConfig(_Section):
    base_url: str = GATEWAY_BASE_URL
    """The local Client Portal gateway, or https://api.ibkr.com/v1/api/ with an OAuth token."""
    ws_url: str = GATEWAY_WS_URL
    account_id: str = Field(pattern=r"^[A-Z0-9]{2,32}$")
    tls_verify: bool = True
    """The local gateway serves a self-signed certificate: trust it with tls_ca_file, or turn verification off
    explicitly (allowed for a loopback gateway only)."""
    tls_ca_file: Path | None = None
    oauth_token: SecretStr | None = None
    watchlist: tuple[WatchEntry, ...] = Field(min_length=1)

    request_timeout_s: float = Field(default=10.0, gt=0)
    requests_per_s: float = Field(default=REQUESTS_PER_S, gt=0)
    endpoint_min_interval_s: dict[str, float] = Field(default_factory=lambda: dict(ENDPOINT_MIN_INTERVAL_S))
    tickle_interval_s: float = Field(default=60.0, gt=0)
    ws_keepalive_interval_s: float = Field(default=45.0, gt=0)
    poll_interval_s: float = Field(default=1.0, gt=0)
    """REST snapshot polling period while the websocket is down."""
    snapshot_attempts: int = Field(default=5, ge=1)
    snapshot_retry_delay_s: float = Field(default=0.5, ge=0)
    max_confirmations: int = Field(default=5, ge=1)
    """Order warnings answered in a row before the placement is abandoned."""
    order_lookup_attempts: int = Field(default=3, ge=1)
    order_lookup_delay_s: float = Field(default=1.0, ge=0)
    reconnect_base_s: float = Field(default=0.5, gt=0)
    reconnect_cap_s: float = Field(default=30.0, gt=0)
    us_stock_size_lot: Decimal = US_STOCK_SIZE_LOT

    @model_validator(mode="after")
    def _consistent(self) -> IbkrConfig:
        base = httpx.URL(self.base_url)
        loopback = base.host in _LOOPBACK_HOSTS
        if not self.base_url.endswith("/"):
            raise ValueError("base_url must end with '/' (e.g. https://localhost:5000/v1/api/)")
        if base.scheme != "https" and not loopback:
            raise ValueError("base_url: plain http is allowed for a loopback gateway only")
        if httpx.URL(self.ws_url).scheme not in ("wss", "ws"):
            raise ValueError("ws_url must be a ws:// or wss:// URL")
        if not self.tls_verify and not loopback:
            raise ValueError("tls_verify may be turned off for a loopback gateway only")
        if not loopback and self.oauth_token is None:
            raise ValueError("a remote base_url (OAuth) needs oauth_token")
        ids = [entry.instrument_id for entry in self.watchlist]
        if len(set(ids)) != len(ids):
            raise ValueError("watchlist: instrument ids must be unique")
        return self

    @property
    def is_paper(self) -> bool:
        return self.account_id.startswith(PAPER_ACCOUNT_PREFIX)


def _watchlist_from_env(raw: str) -> list[dict[str, str]]:
    """`equity:AAPL,future:ES-202612@0.25`: canonical ids, each with an optional `@tick_size`."""
    entries = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        instrument_id, _, tick = item.partition("@")
        entries.append({"instrument_id": instrument_id, **({"tick_size": tick} if tick else {})})
    return entries


def _read_secrets_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"invalid configuration:\n  {SECRETS_FILE_ENV}: file not found: {path}")
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(f"invalid configuration:\n  {SECRETS_FILE_ENV}: {path} must be owned by this user and "
                          "readable by its owner only (chmod 600)")
    try:
        content = json.loads(path.read_text())
    except ValueError:
        raise ConfigError(f"invalid configuration:\n  {SECRETS_FILE_ENV}: {path} is not JSON") from None
    if not isinstance(content, dict):
        raise ConfigError(f"invalid configuration:\n  {SECRETS_FILE_ENV}: {path} must hold a JSON object")
    return content


def load_config(environ: Mapping[str, str] | None = None) -> IbkrConfig:
    """Build the config from the environment (and the secrets file it names), or raise ConfigError naming each
    bad field. Environment values override the file's."""
    env = os.environ if environ is None else environ
    known = {f"{ENV_PREFIX}{name.upper()}" for name in _ENV_FIELDS} | {SECRETS_FILE_ENV}
    unknown = sorted(key for key in env if key.startswith(ENV_PREFIX) and key not in known)
    if unknown:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  {key}: unknown setting" for key in unknown))
    values: dict[str, Any] = {}
    if secrets_file := env.get(SECRETS_FILE_ENV):
        values.update(_read_secrets_file(Path(secrets_file)))
    for name in _ENV_FIELDS:
        raw = env.get(f"{ENV_PREFIX}{name.upper()}")
        if raw is not None:
            values[name] = _watchlist_from_env(raw) if name == "watchlist" else raw
    try:
        return IbkrConfig.model_validate(values)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(config)"
            # Echo the offending input of a single field, never of the token nor of the whole model (which
            # holds the token).
            loc = error["loc"]
            shown = f" (got {error.get('input')!r})" if loc and "oauth_token" not in loc else ""
            lines.append(f"  {field}: {error['msg']}{shown}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
