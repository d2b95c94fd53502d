"""What the order path reads of the control plane and the market, in one Redis round trip per order."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from core.accounts import Account
from core.control import KillSwitch, LiveEnabled, TradingState, most_restrictive, trading_state_for
from core.market import Quote
from core.policy import PolicyBook
from core.risk import RiskPolicy
from streams.control import ControlKeys
from streams.shared_state import latest_quotes_key
from tradestream.config import Settings


@dataclass(frozen=True)
class OrderPathView:
    quotes: dict[str, Quote]
    switches: dict[str, KillSwitch]
    account_state: tuple[TradingState, str]
    policy: RiskPolicy | None
    live_enabled: LiveEnabled | None

    def trading_state(self, venue: str, strategy_id: str, user_id: str) -> tuple[TradingState, str]:
        return most_restrictive([trading_state_for(self.switches, venue, strategy_id, user_id),
                                 self.account_state])


class ControlView:
    def __init__(self, settings: Settings, client: aioredis.Redis) -> None:
        self._client = client
        self._keys = ControlKeys.of(settings)
        self._quotes_key = latest_quotes_key(settings)
        self._default_book = PolicyBook(policies=(settings.risk,))
        self._book_raw: bytes | None = None
        self._book = self._default_book

    async def read(self, account: Account, instrument_ids: Sequence[str], connector: str) -> OrderPathView:
        pipe = self._client.pipeline(transaction=False)
        ids = list(dict.fromkeys(instrument_ids))
        if ids:
            pipe.hmget(self._quotes_key, ids)
        pipe.hgetall(self._keys.kill_switches)
        pipe.hget(self._keys.trading_state, account.account_id)
        pipe.get(self._keys.policy_book)
        pipe.hget(self._keys.live_enabled, f"{account.owner.user_id}:{connector}")
        results = await pipe.execute()
        raw_quotes = results.pop(0) if ids else []
        raw_switches, raw_state, raw_book, raw_live = results
        quotes = {q.instrument_id: q for q in (Quote.model_validate_json(r) for r in raw_quotes if r)}
        switches = {k.decode(): KillSwitch.model_validate_json(v) for k, v in raw_switches.items()}
        state = json.loads(raw_state) if raw_state else None
        account_state = (TradingState(state["state"]), state["reason"]) if state else (TradingState.ACTIVE, "")
        return OrderPathView(quotes=quotes, switches=switches, account_state=account_state,
                             policy=self._policy_book(raw_book).for_account(account),
                             live_enabled=LiveEnabled.model_validate_json(raw_live) if raw_live else None)

    def _policy_book(self, raw: bytes | None) -> PolicyBook:
        if raw is None:
            return self._default_book
        if raw != self._book_raw:  # parse once per published version, not once per order
            self._book, self._book_raw = PolicyBook.model_validate_json(raw), raw
        return self._book
