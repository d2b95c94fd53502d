from datetime import timedelta

import pytest

from core.accounts import Account, Owner
from core.audit import AuditAction, AuditEntry, AuditEvent, chain, verify_chain
from core.control import KillSwitch, KillSwitchScope, TradingState, trading_state_for
from core.policy import PolicyError, parse_policy_document
from core.risk import RiskDecision, evaluate
from core.seal import is_sealed, seal
from core.types import ExecutionMode
from tests.kit.builders import T0, intent, policy, risk_context


def switch(scope: KillSwitchScope, target: str, state: TradingState) -> KillSwitch:
    return KillSwitch(scope=scope, target=target, state=state, actor="ops", at=T0)


def test_the_most_restrictive_covering_switch_wins() -> None:
    switches = {s.key: s for s in [switch(KillSwitchScope.VENUE, "coinbase", TradingState.REDUCE_ONLY),
                                   switch(KillSwitchScope.STRATEGY, "s1", TradingState.HALTED),
                                   switch(KillSwitchScope.USER, "bob", TradingState.HALTED)]}
    assert trading_state_for(switches, "coinbase", "s2", "alice")[0] is TradingState.REDUCE_ONLY
    state, reason = trading_state_for(switches, "coinbase", "s1", "alice")
    assert state is TradingState.HALTED and "strategy:s1" in reason
    assert trading_state_for(switches, "kalshi", "s2", "alice")[0] is TradingState.ACTIVE
    switches["global:*"] = switch(KillSwitchScope.GLOBAL, "*", TradingState.HALTED)
    assert trading_state_for(switches, "kalshi", "s2", "alice")[0] is TradingState.HALTED


def decision() -> RiskDecision:
    return evaluate(intent(), risk_context(), policy(), T0)


def test_a_sealed_decision_verifies_and_any_change_breaks_the_seal() -> None:
    key = b"k" * 32
    sealed = seal(decision(), key)
    assert is_sealed(sealed, key)
    assert not is_sealed(sealed, b"x" * 32)
    forged = sealed.model_copy(update={"approved": True, "reason_detail": "trust me"})
    assert not is_sealed(forged, key)
    assert not is_sealed(decision(), key)


def event(n: int) -> AuditEvent:
    return AuditEvent(action=AuditAction.KILL_SWITCH_CHANGED, actor="ops", subject=f"global:*#{n}",
                      at=T0 + timedelta(seconds=n), before={"state": "active"}, after={"state": "halted"})


def test_audit_chain_verifies_and_names_the_first_tampered_entry() -> None:
    entries: list[AuditEntry] = []
    for n in range(5):
        entries.append(chain(event(n), entries[-1] if entries else None))
    assert verify_chain(entries) is None
    tampered = entries.copy()
    tampered[2] = tampered[2].model_copy(update={"event": event(99)})
    broken = verify_chain(tampered)
    assert broken is not None and broken.seq == 3 and "altered" in broken.reason
    assert verify_chain(entries[:2] + entries[3:]) == verify_chain(entries[:2] + entries[3:])
    missing = verify_chain(entries[:2] + entries[3:])
    assert missing is not None and missing.seq == 4


ACCOUNT = Account(account_id="a1", owner=Owner(org_id="acme", user_id="alice"), mode=ExecutionMode.LIVE)
DOC = """
[[policies]]
policy_id = "acme"
version = 3
scope = "org:acme"
max_order_notional = "5000"
max_position_quantity = "10"

[[policies]]
policy_id = "a1-tight"
version = 1
scope = "account:a1"
max_order_notional = "100"
max_position_quantity = "1"
asset_class_caps = { crypto_spot = "1000" }
"""


def test_account_policy_beats_org_policy_beats_default() -> None:
    book = parse_policy_document(DOC, "policies.toml")
    chosen = book.for_account(ACCOUNT)
    assert chosen is not None and chosen.policy_id == "a1-tight" and chosen.explicit
    other = ACCOUNT.model_copy(update={"account_id": "a2"})
    fallback = book.for_account(other)
    assert fallback is not None and fallback.policy_id == "acme"
    assert parse_policy_document("", "empty").for_account(ACCOUNT) is None


@pytest.mark.parametrize(("text", "message"), [
    ("[[policies]]\npolicy_id='x'\nversion=1\nmax_order_notional='-1'\nmax_position_quantity='1'\n",
     "policies.0.max_order_notional"),
    ("[[policies]]\npolicy_id='x'\nversion=1\nmax_order_notional='1'\nmax_position_quantity='1'\nbogus=1\n",
     "policies.0.bogus"),
    ("not toml [", "not valid TOML"),
    (DOC + DOC.replace('"acme"\nversion = 3', '"acme2"\nversion = 1'), "more than one policy for scope"),
])
def test_invalid_documents_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy_document(text, "policies.toml")
