"""Seals on risk decisions: the risk gate signs each decision with a key only it and the OMS hold, so an
approval forged onto the decisions topic by any other producer is recognised and refused."""

from __future__ import annotations

import hashlib
import hmac

from core.risk import RiskDecision


def _digest(decision: RiskDecision, key: bytes) -> str:
    body = decision.model_copy(update={"seal": ""}).model_dump_json().encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def seal(decision: RiskDecision, key: bytes) -> RiskDecision:
    return decision.model_copy(update={"seal": _digest(decision, key)})


def is_sealed(decision: RiskDecision, key: bytes) -> bool:
    return bool(decision.seal) and hmac.compare_digest(decision.seal, _digest(decision, key))
