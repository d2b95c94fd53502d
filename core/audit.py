"""The audit trail: append-only entries, each chained to the previous by a SHA-256 hash.

Anyone may emit an `AuditEvent`; one sequencer (the audit sink) numbers events and chains them into
`AuditEntry`s, so the chain has one order. `verify_chain` recomputes every hash and names the first entry that
does not match: an edited, deleted or inserted entry breaks the chain from that point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from core.types import Frozen, UtcDatetime

GENESIS_HASH = "0" * 64


class AuditAction(StrEnum):
    CONFIG_CHANGED = "config_changed"
    RISK_POLICY_CHANGED = "risk_policy_changed"
    RISK_POLICY_REJECTED = "risk_policy_rejected"
    ORDER_CHANGED = "order_changed"
    FILL = "fill"
    MODE_TRANSITION = "mode_transition"
    KILL_SWITCH_CHANGED = "kill_switch_changed"
    LIVE_ENABLED_CHANGED = "live_enabled_changed"
    FORGED_DECISION_REFUSED = "forged_decision_refused"
    TRADING_STATE_CHANGED = "trading_state_changed"
    SHADOW_LEDGER_SEEDED = "shadow_ledger_seeded"
    SETTLEMENT = "settlement"


class AuditEvent(Frozen):
    schema_version: Literal[1] = 1
    action: AuditAction
    actor: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    """What changed: an order id, a policy scope, a kill-switch key..."""
    at: UtcDatetime
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    trace_id: str | None = None


class AuditEntry(Frozen):
    seq: int = Field(ge=1)
    event: AuditEvent
    prev_hash: str
    hash: str


def entry_hash(seq: int, event: AuditEvent, prev_hash: str) -> str:
    canonical = json.dumps({"seq": seq, "prev": prev_hash, "event": event.model_dump(mode="json")},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def chain(event: AuditEvent, previous: AuditEntry | None) -> AuditEntry:
    seq = previous.seq + 1 if previous else 1
    prev_hash = previous.hash if previous else GENESIS_HASH
    return AuditEntry(seq=seq, event=event, prev_hash=prev_hash, hash=entry_hash(seq, event, prev_hash))


class ChainBreak(Frozen):
    seq: int
    reason: str


def verify_chain(entries: Iterable[AuditEntry]) -> ChainBreak | None:
    """None when the chain is intact, else the first broken entry and why."""
    expected_seq, prev_hash = 1, GENESIS_HASH
    for entry in entries:
        if entry.seq != expected_seq:
            return ChainBreak(seq=entry.seq, reason=f"expected seq {expected_seq}: an entry is missing or inserted")
        if entry.prev_hash != prev_hash:
            return ChainBreak(seq=entry.seq, reason="prev_hash does not match the previous entry's hash")
        if entry.hash != entry_hash(entry.seq, entry.event, entry.prev_hash):
            return ChainBreak(seq=entry.seq, reason="content does not match its hash: the entry was altered")
        expected_seq, prev_hash = entry.seq + 1, entry.hash
    return None
