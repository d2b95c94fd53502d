"""Execution mode resolution: the one decision of which mode an order really runs in, and why.

Called by the execution router immediately before anything is executed; nothing else decides a mode.
"""

from __future__ import annotations

from core.reasons import ReasonCode
from core.types import ExecutionMode, Frozen


class LiveGate(Frozen):
    """The three conditions a live order needs, as read at the moment of routing."""

    live_enabled: bool
    risk_policy_loaded: bool
    kill_switch_healthy: bool


class ModeDecision(Frozen):
    allowed: bool
    effective_mode: ExecutionMode | None
    reason_code: ReasonCode
    reason_detail: str = ""


# The decisions that depend on nothing but the mode (and which live condition is missing): built and validated once,
# shared by every order (frozen records). Only a mismatch carries per-call detail.
_PAPER = ModeDecision(allowed=True, effective_mode=ExecutionMode.PAPER, reason_code=ReasonCode.PAPER_SIMULATED)
_SHADOW = ModeDecision(allowed=True, effective_mode=ExecutionMode.SHADOW,
                       reason_code=ReasonCode.SHADOW_WRITE_SIMULATED)
_LIVE_PASSED = ModeDecision(allowed=True, effective_mode=ExecutionMode.LIVE, reason_code=ReasonCode.LIVE_GATE_PASSED)
_LIVE_BLOCKED = {code: ModeDecision(allowed=False, effective_mode=None, reason_code=code)
                 for code in (ReasonCode.LIVE_NOT_ENABLED, ReasonCode.NO_RISK_POLICY,
                              ReasonCode.KILL_SWITCH_NOT_HEALTHY)}


def resolve_mode(requested: ExecutionMode, account_mode: ExecutionMode, gate: LiveGate | None) -> ModeDecision:
    if requested is not account_mode:
        return ModeDecision(allowed=False, effective_mode=None, reason_code=ReasonCode.MODE_ACCOUNT_MISMATCH,
                            reason_detail=f"requested={requested.value} account_mode={account_mode.value}")
    if requested is ExecutionMode.PAPER:
        return _PAPER
    if requested is ExecutionMode.SHADOW:
        return _SHADOW
    missing = _first_missing_live_condition(gate)
    if missing is not None:
        return _LIVE_BLOCKED[missing]
    return _LIVE_PASSED


def _first_missing_live_condition(gate: LiveGate | None) -> ReasonCode | None:
    if gate is None or not gate.live_enabled:
        return ReasonCode.LIVE_NOT_ENABLED
    if not gate.risk_policy_loaded:
        return ReasonCode.NO_RISK_POLICY
    if not gate.kill_switch_healthy:
        return ReasonCode.KILL_SWITCH_NOT_HEALTHY
    return None
