"""Control records: kill switches and live_enabled flags. Their topics are compacted (latest per key wins)."""

from __future__ import annotations

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
