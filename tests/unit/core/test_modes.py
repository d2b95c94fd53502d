import pytest

from core.modes import LiveGate, resolve_mode
from core.reasons import ReasonCode
from core.types import ExecutionMode

OPEN_GATE = LiveGate(live_enabled=True, risk_policy_loaded=True, kill_switch_healthy=True)


def test_paper_is_always_simulated() -> None:
    decision = resolve_mode(ExecutionMode.PAPER, ExecutionMode.PAPER, OPEN_GATE)
    assert decision.allowed and decision.effective_mode is ExecutionMode.PAPER
    assert decision.reason_code is ReasonCode.PAPER_SIMULATED


def test_shadow_write_is_simulated() -> None:
    decision = resolve_mode(ExecutionMode.SHADOW, ExecutionMode.SHADOW, OPEN_GATE)
    assert decision.effective_mode is ExecutionMode.SHADOW
    assert decision.reason_code is ReasonCode.SHADOW_WRITE_SIMULATED


@pytest.mark.parametrize(("requested", "account"), [(ExecutionMode.LIVE, ExecutionMode.PAPER),
                                                    (ExecutionMode.PAPER, ExecutionMode.LIVE),
                                                    (ExecutionMode.SHADOW, ExecutionMode.LIVE)])
def test_mode_other_than_the_accounts_is_blocked(requested: ExecutionMode, account: ExecutionMode) -> None:
    decision = resolve_mode(requested, account, OPEN_GATE)
    assert not decision.allowed and decision.effective_mode is None
    assert decision.reason_code is ReasonCode.MODE_ACCOUNT_MISMATCH


@pytest.mark.parametrize(("gate", "code"), [
    (None, ReasonCode.LIVE_NOT_ENABLED),
    (LiveGate(live_enabled=False, risk_policy_loaded=True, kill_switch_healthy=True), ReasonCode.LIVE_NOT_ENABLED),
    (LiveGate(live_enabled=True, risk_policy_loaded=False, kill_switch_healthy=True), ReasonCode.NO_RISK_POLICY),
    (LiveGate(live_enabled=True, risk_policy_loaded=True, kill_switch_healthy=False),
     ReasonCode.KILL_SWITCH_NOT_HEALTHY),
])
def test_live_without_each_gate_condition_is_blocked_with_its_reason(gate: LiveGate | None,
                                                                      code: ReasonCode) -> None:
    decision = resolve_mode(ExecutionMode.LIVE, ExecutionMode.LIVE, gate)
    assert not decision.allowed
    assert decision.reason_code is code


def test_live_with_every_condition_passes() -> None:
    decision = resolve_mode(ExecutionMode.LIVE, ExecutionMode.LIVE, OPEN_GATE)
    assert decision.allowed and decision.effective_mode is ExecutionMode.LIVE
