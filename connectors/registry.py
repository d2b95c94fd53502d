"""The enabled venue connectors, built from the settings with each connector's own configuration loader.

Credentials never come from the settings: each loader reads its venue's environment variables, or the owner-only
secrets file the settings name (a path, not a secret). One connector serves one venue account: Kalshi and Coinbase
credentials open one account each; IBKR gets one connector per IBKR account our accounts are mapped to. Building
validates everything and raises `ConfigError` naming the field, so a bad connector stops start-up.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import ValidationError

from connectors.base import Connector
from connectors.coinbase import CoinbaseConfig, CoinbaseConnector, CredentialsError
from connectors.coinbase.config import ENV_SECRETS_FILE as COINBASE_SECRETS_FILE_ENV
from connectors.http import redact
from connectors.ibkr import IbkrConnector, load_config
from connectors.ibkr.config import ENV_PREFIX as IBKR_ENV_PREFIX
from connectors.ibkr.config import SECRETS_FILE_ENV as IBKR_SECRETS_FILE_ENV
from connectors.kalshi import KalshiConfig, KalshiConfigError, KalshiConnector
from connectors.kalshi.config import ENV_PRIVATE_KEY_FILE as KALSHI_KEY_FILE_ENV
from connectors.resilience import BackoffPolicy
from core.instruments import InstrumentCatalog, InstrumentRegistry, Venue
from core.venue import ConnectorHealth
from tradestream.config import (
    CoinbaseSettings,
    ConfigError,
    ConnectorSettings,
    IbkrSettings,
    KalshiSettings,
    VenueSettings,
)


@dataclass(frozen=True)
class Binding:
    """One connector, the venue account behind it and our accounts it serves."""

    name: str
    """`kalshi`, `coinbase` or `ibkr:<IBKR account>`: names its cursors and state."""
    venue: Venue
    connector: Connector
    account_ids: frozenset[str]
    instrument_ids: tuple[str, ...]


@dataclass(frozen=True)
class HealthCheck:
    binding: Binding
    health: ConnectorHealth | None
    """None when the check itself failed (see `error`)."""
    error: str = ""

    @property
    def reachable(self) -> bool:
        return self.health is not None and self.health.reachable


class ConnectorRegistry:
    def __init__(self, bindings: Sequence[Binding]) -> None:
        self.bindings = tuple(bindings)
        self._by_account = {(account_id, b.venue): b for b in self.bindings for account_id in b.account_ids}

    def binding_for(self, account_id: str, venue: Venue) -> Binding | None:
        """The connector through which this account trades on this venue, if any."""
        return self._by_account.get((account_id, venue))

    def bindings_of(self, account_id: str) -> list[Binding]:
        return [b for b in self.bindings if account_id in b.account_ids]

    async def check(self, timeout_s: float = 30.0, *, listen_s: float = 0.0) -> list[HealthCheck]:
        """Every connector's health, asked at the same time. With `listen_s`, each connector first streams the
        quotes of its instruments that long, so its market data mode (and fallback) is what a worker would see;
        without, it is whatever the running streams make it (the worker's own)."""
        async def one(binding: Binding) -> HealthCheck:
            listening = None
            if listen_s > 0 and binding.instrument_ids:
                listening = asyncio.get_running_loop().create_task(_drain(binding.connector, binding.instrument_ids))
            try:
                async with asyncio.timeout(timeout_s + listen_s):
                    if listening is not None:
                        await asyncio.wait([listening], timeout=listen_s)
                    health = await binding.connector.health()
            except Exception as exc:  # a check that cannot complete says: not reachable, and why
                return HealthCheck(binding, None, f"{type(exc).__name__}: {exc}")
            finally:
                if listening is not None:
                    listening.cancel()
                    await asyncio.gather(listening, return_exceptions=True)
            if listening is not None and not listening.cancelled() and (error := listening.exception()) is not None:
                # The quote stream itself failed: the health says whether the venue is there; this says what broke.
                note = f"quotes: {type(error).__name__}: {error}"
                health = health.model_copy(update={"detail": "; ".join(filter(None, (health.detail, note)))})
            return HealthCheck(binding, health)

        return list(await asyncio.gather(*(one(b) for b in self.bindings)))

    async def close(self) -> None:
        await asyncio.gather(*(b.connector.close() for b in self.bindings), return_exceptions=True)


async def _drain(connector: Connector, instrument_ids: Sequence[str]) -> None:
    async for _ in connector.quotes(instrument_ids):
        pass


def build_registry(settings: ConnectorSettings, catalog: InstrumentCatalog,
                   environ: Mapping[str, str] | None = None) -> ConnectorRegistry:
    env = dict(os.environ if environ is None else environ)
    bindings: list[Binding] = []
    if (kalshi := settings.kalshi) is not None:
        bindings.append(_bind("kalshi", Venue.KALSHI, kalshi, catalog, kalshi.accounts,
                              partial(_kalshi_connector, env, kalshi)))
    if (coinbase := settings.coinbase) is not None:
        bindings.append(_bind("coinbase", Venue.COINBASE, coinbase, catalog, coinbase.accounts,
                              partial(_coinbase_connector, env, coinbase)))
    if (ibkr := settings.ibkr) is not None:
        backed: dict[str | None, tuple[str, ...]] = dict(ibkr.account_ids().items())
        # Without mapped accounts the connector still serves checks and quotes, for the loader's own account.
        for ibkr_account, ours in (backed or {None: ()}).items():
            name = f"ibkr:{ibkr_account}" if ibkr_account else "ibkr"
            bindings.append(_bind(name, Venue.IBKR, ibkr, catalog, ours,
                                  partial(_ibkr_connector, env, ibkr, catalog, ibkr_account)))
    return ConnectorRegistry(bindings)


def _bind(name: str, venue: Venue, venue_settings: VenueSettings, catalog: InstrumentCatalog,
          account_ids: Iterable[str], build: Callable[[], Connector]) -> Binding:
    field = f"connectors.{venue.value}"
    for instrument_id in venue_settings.instruments:
        # One the catalog does not know may still be listed by the venue: `require_listed` checks that.
        instrument = catalog.get(instrument_id)
        if instrument is not None and instrument.venue is not venue:
            raise ConfigError(f"invalid configuration:\n  {field}.instruments: {instrument_id!r} is on "
                              f"{instrument.venue.value} in the catalog, not on {venue.value}")
    try:
        connector = build()
    except ValidationError as exc:
        # The location and message only: the input of a credentials model is not echoed.
        lines = [f"  {field}.{'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
    except ConfigError as exc:  # IBKR's loader names its own fields
        lines = [f"  {field}: {line.strip()}" for line in str(exc).splitlines()[1:]]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None
    except (KalshiConfigError, CredentialsError) as exc:  # their messages never carry key material
        raise ConfigError(f"invalid configuration:\n  {field}: {exc}") from None
    return Binding(name=name, venue=venue, connector=connector, account_ids=frozenset(account_ids),
                   instrument_ids=venue_settings.instruments)


def _with_file(env: dict[str, str], variable: str, venue_settings: VenueSettings) -> dict[str, str]:
    """The environment the loader reads, with the settings' secrets file under the loader's own variable."""
    if venue_settings.secrets_file is None:
        return env
    return {**env, variable: str(venue_settings.secrets_file)}


def _overrides(venue_settings: VenueSettings, **fields: Any) -> dict[str, Any]:
    """The connector config fields the settings set (None leaves the connector's default)."""
    fields.update(retry_attempts=venue_settings.retry_attempts, retry_base_s=venue_settings.retry_base_s,
                  retry_cap_s=venue_settings.retry_cap_s)
    return {name: value for name, value in fields.items() if value is not None}


def _kalshi_connector(env: dict[str, str], kalshi: KalshiSettings) -> Connector:
    return KalshiConnector(KalshiConfig.from_env(_with_file(env, KALSHI_KEY_FILE_ENV, kalshi), **_overrides(
        kalshi, rest_url=kalshi.rest_url, ws_url=kalshi.ws_url, timeout_s=kalshi.timeout_s)))


def _coinbase_connector(env: dict[str, str], coinbase: CoinbaseSettings) -> Connector:
    return CoinbaseConnector(CoinbaseConfig.from_env(_with_file(env, COINBASE_SECRETS_FILE_ENV, coinbase), **_overrides(
        coinbase, rest_url=coinbase.rest_url, ws_market_url=coinbase.ws_market_url, ws_user_url=coinbase.ws_user_url,
        timeout_s=coinbase.timeout_s)))


def _ibkr_connector(env: dict[str, str], ibkr: IbkrSettings, catalog: InstrumentCatalog,
                    account: str | None) -> Connector:
    settings: dict[str, str | None] = {
        "ACCOUNT_ID": account, "BASE_URL": ibkr.base_url, "WS_URL": ibkr.ws_url,
        # The watch list is the quoted instruments, with the catalog's tick sizes (IBKR's contract info has none).
        # One the catalog does not know takes the loader's default tick for its asset class, or is refused, named.
        "WATCHLIST": ",".join(_watch_entry(catalog, i) for i in ibkr.instruments) or None,
    }
    loader_env = _with_file(env, IBKR_SECRETS_FILE_ENV, ibkr)
    loader_env.update({f"{IBKR_ENV_PREFIX}{key}": value for key, value in settings.items() if value is not None})
    config = load_config(loader_env)
    if ibkr.timeout_s is not None:
        config = type(config).model_validate({**dict(config), "request_timeout_s": ibkr.timeout_s})
    default = BackoffPolicy()
    backoff = BackoffPolicy(base_s=ibkr.retry_base_s or default.base_s, cap_s=ibkr.retry_cap_s or default.cap_s,
                            max_attempts=ibkr.retry_attempts or default.max_attempts)
    return IbkrConnector(config, backoff=backoff)


def _watch_entry(catalog: InstrumentCatalog, instrument_id: str) -> str:
    instrument = catalog.get(instrument_id)
    return f"{instrument_id}@{format(instrument.tick_size.normalize(), 'f')}" if instrument else instrument_id


async def require_listed(registry: ConnectorRegistry, catalog: InstrumentCatalog, base_source: str) -> None:
    """Every instrument a connector is configured to quote is in the catalog or in that connector's listing,
    merged by canonical id as the worker's instrument registry merges them; else `ConfigError` names each one.
    Only connectors quoting an instrument the catalog lacks are read; a read that fails confirms nothing."""
    unknown = [b for b in registry.bindings if any(catalog.get(i) is None for i in b.instrument_ids)]
    listings = await asyncio.gather(*(b.connector.instruments() for b in unknown), return_exceptions=True)
    merged = InstrumentRegistry(catalog, base_source)
    unread: dict[str, str] = {}
    for binding, listing in zip(unknown, listings, strict=True):
        if isinstance(listing, Exception):
            unread[binding.name] = redact(f"{type(listing).__name__}: {listing}")[:300]
        elif isinstance(listing, BaseException):
            raise listing
        else:
            merged.apply(binding.name, listing)
    known = merged.catalog()
    problems: dict[str, str] = {}
    for binding in registry.bindings:
        for instrument_id in binding.instrument_ids:
            instrument = known.get(instrument_id)
            if instrument is not None and instrument.venue is binding.venue:
                continue
            why = (f"its listing could not be read: {unread[binding.name]}" if binding.name in unread
                   else f"{binding.name} does not list it")
            field = f"connectors.{binding.venue.value}.instruments"
            problems[f"{field} {instrument_id}"] = (f"  {field}: {instrument_id!r} is neither in the catalog nor "
                                                    f"listed by the venue ({why})")
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(problems.values()))
