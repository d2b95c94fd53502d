"""Control records: kill switches and live_enabled flags. Their topics are compacted (latest per key wins)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

from pydantic import Field

from core.types import Frozen, UtcDatetime


class KillSwitchScope(StrEnum):
    GLOBAL = "global"
    VENUE = "venue"
    STRATEGY = "strategy"
    USER = "user"


class TradingState(StrEnum):
    ACTIVE = "active"
    REDUCE_ONLY = "reduce_only"
    HALTED = "halted"


class KillSwitch(Frozen):
    schema_version: Literal[1] = 1
    scope: KillSwitchScope
    target: str = Field(default="*", min_length=1)
    """What the scope applies to: a venue, strategy or user id; `*` for the global switch."""
    state: TradingState
    actor: str
    reason: str = ""
    at: UtcDatetime

    @property
    def key(self) -> str:
        return f"{self.scope.value}:{self.target}"


class LiveEnabled(Frozen):
    schema_version: Literal[1] = 1
    user_id: str
    connector: str
    enabled: bool
    actor: str
    at: UtcDatetime

    @property
    def key(self) -> str:
        return f"{self.user_id}:{self.connector}"


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCE_ONLY: 1, TradingState.HALTED: 2}


def most_restrictive(states: list[tuple[TradingState, str]]) -> tuple[TradingState, str]:
    return max(states, key=lambda s: _SEVERITY[s[0]], default=(TradingState.ACTIVE, ""))


def covering_switches(switches: Mapping[str, KillSwitch], venue: str, strategy_id: str,
                      user_id: str) -> list[KillSwitch]:
    """The switches that apply to an order: global, its venue, its strategy, its user."""
    keys = (f"{KillSwitchScope.GLOBAL.value}:*", f"{KillSwitchScope.VENUE.value}:{venue}",
            f"{KillSwitchScope.STRATEGY.value}:{strategy_id}", f"{KillSwitchScope.USER.value}:{user_id}")
    return [switches[k] for k in keys if k in switches]


def trading_state_for(switches: Mapping[str, KillSwitch], venue: str, strategy_id: str,
                      user_id: str) -> tuple[TradingState, str]:
    """The most restrictive state among the covering switches, with the key of the switch that set it."""
    return most_restrictive([(s.state, f"kill_switch={s.key} actor={s.actor}")
                             for s in covering_switches(switches, venue, strategy_id, user_id)])
