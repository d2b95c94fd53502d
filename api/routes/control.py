"""Control: kill switches (global, venue, strategy, user), live_enabled per user and connector, risk policies.

Every change is audited with its actor (the X-Actor header until sign-in arrives) and made durable on its
compacted topic before the fast view the order path reads is updated: an order sent after the response sees it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ActorDep, ControlDep, SettingsDep
from api.schemas.control import (
    KillSwitches,
    KillSwitchUpdate,
    LiveEnabledFlags,
    LiveEnabledUpdate,
    RiskPolicies,
)
from core.control import KillSwitch, KillSwitchScope, LiveEnabled

router = APIRouter(prefix="/v1/control", tags=["control"])

Target = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-*]+$")]


@router.get("/kill-switches")
async def list_kill_switches(control: ControlDep) -> KillSwitches:
    switches = await asyncio.to_thread(control.kill_switches)
    return KillSwitches(data=sorted(switches.values(), key=lambda s: s.key))


@router.put("/kill-switches/{scope}/{target}")
async def set_kill_switch(scope: KillSwitchScope, target: Target, body: KillSwitchUpdate, control: ControlDep,
                          actor: ActorDep) -> KillSwitch:
    """Set a kill switch. `halted` also cancels the resting orders it covers; use target `*` for global."""
    switch = KillSwitch(scope=scope, target="*" if scope is KillSwitchScope.GLOBAL else target, state=body.state,
                        actor=actor, reason=body.reason, at=datetime.now(UTC))
    await asyncio.to_thread(control.set_kill_switch, switch)
    return switch


@router.get("/live-enabled")
async def list_live_enabled(control: ControlDep) -> LiveEnabledFlags:
    return LiveEnabledFlags(data=await asyncio.to_thread(control.live_enabled_flags))


@router.put("/live-enabled/{user_id}/{connector}")
async def set_live_enabled(user_id: Target, connector: Target, body: LiveEnabledUpdate, control: ControlDep,
                           actor: ActorDep) -> LiveEnabled:
    flag = LiveEnabled(user_id=user_id, connector=connector, enabled=body.enabled, actor=actor, at=datetime.now(UTC))
    await asyncio.to_thread(control.set_live_enabled, flag)
    return flag


@router.get("/risk-policies")
async def list_risk_policies(control: ControlDep, settings: SettingsDep) -> RiskPolicies:
    book = await asyncio.to_thread(control.policy_book)
    if book is None:
        return RiskPolicies(source="settings-default", data=[settings.risk])
    return RiskPolicies(source="file", data=list(book.policies))
