"""Schemas of the control resources: kill switches, live_enabled flags, risk policies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.control import KillSwitch, LiveEnabled, TradingState
from core.risk import RiskPolicy


class KillSwitchUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: TradingState
    reason: str = Field(default="", max_length=500)


class KillSwitches(BaseModel):
    data: list[KillSwitch]


class LiveEnabledUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class LiveEnabledFlags(BaseModel):
    data: list[LiveEnabled]


class RiskPolicies(BaseModel):
    source: str
    """`file` when a policy book was published from the policy file, else `settings-default`."""
    data: list[RiskPolicy]


class CancelAccepted(BaseModel):
    order_id: str
    status: str = "cancel_requested"
