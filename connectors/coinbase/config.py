"""Connector settings: where the venue is, who we are, and how hard we may push it.

Credentials come from environment variables or from a JSON secrets file that only its owner may read (the file
Coinbase hands out: {"name": <key name>, "privateKey": <key>}, with "id" accepted for "name" as CDP Ed25519 key
files use it). The private key is a `SecretStr`: its repr, str and every error message hide it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, SecretStr

from connectors.coinbase.auth import CredentialsError, SigningAlgorithm, load_signing_key
from connectors.coinbase.constants import (
    DEFAULT_REST_BURST,
    DEFAULT_REST_RATE_PER_S,
    REST_URL,
    WS_MARKET_URL,
    WS_USER_URL,
)
from connectors.resilience import BackoffPolicy

ENV_KEY_NAME = "COINBASE_API_KEY_NAME"
ENV_PRIVATE_KEY = "COINBASE_API_PRIVATE_KEY"
ENV_SECRETS_FILE = "COINBASE_API_SECRETS_FILE"
ENV_ALGORITHM = "COINBASE_JWT_ALGORITHM"
ENV_REST_URL = "COINBASE_REST_URL"
ENV_WS_MARKET_URL = "COINBASE_WS_MARKET_URL"
ENV_WS_USER_URL = "COINBASE_WS_USER_URL"


class CoinbaseConfig(BaseModel):
    # hide_input_in_errors: a validation error must never echo the private key it was given.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    rest_url: str = REST_URL
    ws_market_url: str = WS_MARKET_URL
    ws_user_url: str = WS_USER_URL
    key_name: str = Field(min_length=1)
    """`organizations/{org}/apiKeys/{id}` (ES256 keys) or the key id (Ed25519 keys)."""
    private_key: SecretStr
    algorithm: SigningAlgorithm = SigningAlgorithm.ES256

    rest_rate_per_s: PositiveFloat = DEFAULT_REST_RATE_PER_S
    rest_burst: PositiveFloat = DEFAULT_REST_BURST
    timeout_s: PositiveFloat = 10.0
    retry_base_s: PositiveFloat = 0.2
    retry_cap_s: PositiveFloat = 10.0
    retry_attempts: PositiveInt = 6

    ws_open_timeout_s: PositiveFloat = 10.0
    ws_reconnect_base_s: PositiveFloat = 0.5
    ws_reconnect_cap_s: PositiveFloat = 30.0
    ws_stale_after_s: PositiveFloat = 15.0
    """No message (heartbeats arrive every second) for this long means the socket is dead: reconnect."""
    ws_max_message_bytes: PositiveInt = 16 * 1024 * 1024
    """A level2 snapshot of a deep book is larger than the websockets library's 1 MiB default."""
    poll_interval_s: PositiveFloat = 1.0
    """REST polling period of best_bid_ask while the market data socket is down."""

    quote_currency: str = Field(default="USD", min_length=2)
    """Spot positions are the base-currency balances of products quoted in this currency."""
    fills_lookback_s: PositiveFloat = 300.0
    """A fill may be listed late; fills_since re-reads this far behind its high-water mark (deduplicated)."""
    recovery_window_s: PositiveFloat = 3600.0
    """How far before an order's creation the client-order-id lookup searches the venue's order history."""

    def model_post_init(self, context: Any, /) -> None:
        # Load the key once now so a bad key fails at construction (CredentialsError, never a ValidationError that
        # would carry the raw input).
        load_signing_key(self.private_key, self.algorithm)

    @property
    def uri_host(self) -> str:
        """The host as written in the JWT `uri` claim: no scheme, no port."""
        return httpx.URL(self.rest_url).host

    @property
    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(base_s=self.retry_base_s, cap_s=self.retry_cap_s, max_attempts=self.retry_attempts)

    @property
    def ws_backoff(self) -> BackoffPolicy:
        """Reconnect delays; reconnects never give up, so max_attempts is unused."""
        return BackoffPolicy(base_s=self.ws_reconnect_base_s, cap_s=self.ws_reconnect_cap_s)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> CoinbaseConfig:
        env = os.environ if environ is None else environ
        settings: dict[str, Any] = {}
        for var, field in ((ENV_REST_URL, "rest_url"), (ENV_WS_MARKET_URL, "ws_market_url"),
                           (ENV_WS_USER_URL, "ws_user_url"), (ENV_ALGORITHM, "algorithm")):
            if env.get(var):
                settings[field] = env[var]
        settings.update(overrides)
        if env.get(ENV_SECRETS_FILE):
            return cls.from_secrets_file(Path(env[ENV_SECRETS_FILE]), **settings)
        missing = [var for var in (ENV_KEY_NAME, ENV_PRIVATE_KEY) if not env.get(var)]
        if missing:
            raise CredentialsError(f"set {' and '.join(missing)} (or {ENV_SECRETS_FILE})")
        return cls(key_name=env[ENV_KEY_NAME], private_key=SecretStr(env[ENV_PRIVATE_KEY]), **settings)

    @classmethod
    def from_secrets_file(cls, path: Path, **overrides: Any) -> CoinbaseConfig:
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise CredentialsError(f"{path}: cannot read the secrets file: {exc.strerror}") from None
        if not stat.S_ISREG(mode):
            raise CredentialsError(f"{path}: the secrets file is not a regular file")
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CredentialsError(f"{path}: the secrets file is accessible by group or others "
                                   f"(mode {stat.S_IMODE(mode):04o}); restrict it to its owner: chmod 600 {path}")
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            # The parser's message may quote the file's content: keep it out.
            raise CredentialsError(f"{path}: the secrets file is not readable JSON") from None
        if not isinstance(document, dict):
            raise CredentialsError(f"{path}: the secrets file must hold a JSON object")
        key_name = document.get("name") or document.get("id")
        private_key = document.get("privateKey")
        if not isinstance(key_name, str) or not isinstance(private_key, str):
            raise CredentialsError(f"{path}: the secrets file needs string fields \"name\" (or \"id\") and "
                                   "\"privateKey\"")
        if isinstance(document.get("algorithm"), str):
            overrides.setdefault("algorithm", document["algorithm"])
        return cls(key_name=key_name, private_key=SecretStr(private_key), **overrides)
