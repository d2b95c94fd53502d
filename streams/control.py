"""The control plane: kill switches, live_enabled flags, the risk policy book and accounts' trading state.

A change is made durable and visible in this order: the audit event and the compacted control topic (acked),
then the Redis view the order path reads. Any order submitted after a change returns sees the change: a halt
stops the next order, not "eventually". Redis is rebuilt from the compacted topics when lost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from confluent_kafka import Producer

from core.audit import AuditAction, AuditEvent
from core.commands import CancelOrder, CancelScope
from core.control import KillSwitch, LiveEnabled, TradingState
from core.policy import PolicyBook
from streams.kafka import headers, producer_config
from streams.records import encode
from streams.topics import AUDIT, KILL_SWITCH, LIVE_ENABLED, ORDER_COMMANDS, RISK_POLICY, TopicSpec, topic_name
from tradestream.config import Settings

DELIVERY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ControlKeys:
    kill_switches: str
    live_enabled: str
    trading_state: str
    policy_book: str

    @classmethod
    def of(cls, settings: Settings) -> ControlKeys:
        p = settings.topic_prefix
        return cls(kill_switches=f"{p}control:kill_switches", live_enabled=f"{p}control:live_enabled",
                   trading_state=f"{p}control:trading_state", policy_book=f"{p}control:policy_book")


class ControlWriteError(Exception):
    """A control change could not be made durable; nothing was changed in the fast view."""


class ControlPlane:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = ControlKeys.of(settings)
        self._redis = redis.Redis.from_url(settings.redis, socket_timeout=2)
        self._producer = Producer(producer_config(settings, **{"linger.ms": 0}))

    def _publish(self, spec: TopicSpec, key: str, record: Any, trace_id: str | None = None) -> None:
        errors: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                errors.append(str(err))

        self._producer.produce(topic_name(spec, self.settings.topic_prefix), key=key.encode(), value=encode(record),
                               headers=headers(trace_id, type(record).__name__), on_delivery=delivered)
        remaining = self._producer.flush(DELIVERY_TIMEOUT_S)
        if remaining or errors:
            raise ControlWriteError(f"{spec.name}: not acknowledged by Kafka ({errors or 'timeout'})")

    def audit(self, event: AuditEvent) -> None:
        self._publish(AUDIT, event.subject, event, event.trace_id)

    def kill_switches(self) -> dict[str, KillSwitch]:
        raw = self._redis.hgetall(self.keys.kill_switches)
        return {k.decode(): KillSwitch.model_validate_json(v) for k, v in raw.items()}  # type: ignore[union-attr]

    def set_kill_switch(self, switch: KillSwitch) -> KillSwitch | None:
        """Apply a kill switch; a halt also asks the OMS to cancel the resting orders it covers."""
        before = self.kill_switches().get(switch.key)
        self.audit(AuditEvent(action=AuditAction.KILL_SWITCH_CHANGED, actor=switch.actor, subject=switch.key,
                              at=switch.at, before=before.model_dump(mode="json") if before else None,
                              after=switch.model_dump(mode="json")))
        self._publish(KILL_SWITCH, switch.key, switch)
        self._redis.hset(self.keys.kill_switches, switch.key, switch.model_dump_json())
        if switch.state is TradingState.HALTED:
            for account in self.settings.accounts:
                self._publish(ORDER_COMMANDS, account.account_id,
                              CancelScope(account_id=account.account_id, switch=switch, at=switch.at))
        return before

    def live_enabled_flags(self) -> list[LiveEnabled]:
        raw = self._redis.hgetall(self.keys.live_enabled)
        return sorted((LiveEnabled.model_validate_json(v) for v in raw.values()),
                      key=lambda f: f.key)

    def cancel_order(self, command: CancelOrder) -> None:
        self._publish(ORDER_COMMANDS, command.account_id, command)

    def set_live_enabled(self, flag: LiveEnabled) -> None:
        raw = self._redis.hget(self.keys.live_enabled, flag.key)
        before = LiveEnabled.model_validate_json(raw) if isinstance(raw, bytes) else None
        self.audit(AuditEvent(action=AuditAction.LIVE_ENABLED_CHANGED, actor=flag.actor, subject=flag.key,
                              at=flag.at, before=before.model_dump(mode="json") if before else None,
                              after=flag.model_dump(mode="json")))
        self._publish(LIVE_ENABLED, flag.key, flag)
        self._redis.hset(self.keys.live_enabled, flag.key, flag.model_dump_json())

    def policy_book(self) -> PolicyBook | None:
        raw = self._redis.get(self.keys.policy_book)
        return PolicyBook.model_validate_json(raw) if isinstance(raw, bytes) else None

    def publish_policy_book(self, book: PolicyBook, actor: str, source: str) -> None:
        before = self.policy_book()
        self.audit(AuditEvent(action=AuditAction.RISK_POLICY_CHANGED, actor=actor, subject=source,
                              at=datetime.now(UTC), before=before.model_dump(mode="json") if before else None,
                              after=book.model_dump(mode="json")))
        self._publish(RISK_POLICY, "book", book)
        self._redis.set(self.keys.policy_book, book.model_dump_json())

    def reject_policy_book(self, problem: str, actor: str, source: str) -> None:
        self.audit(AuditEvent(action=AuditAction.RISK_POLICY_REJECTED, actor=actor, subject=source,
                              at=datetime.now(UTC), after={"error": problem}))

    def set_trading_state(self, account_id: str, state: TradingState, reason: str, actor: str) -> None:
        raw = self._redis.hget(self.keys.trading_state, account_id)
        before = json.loads(raw) if isinstance(raw, bytes) else None
        after = {"state": state.value, "reason": reason}
        if before == after:
            return
        self.audit(AuditEvent(action=AuditAction.TRADING_STATE_CHANGED, actor=actor, subject=f"account:{account_id}",
                              at=datetime.now(UTC), before=before, after=after))
        self._redis.hset(self.keys.trading_state, account_id, json.dumps(after))

    def close(self) -> None:
        self._producer.flush(DELIVERY_TIMEOUT_S)
        self._redis.close()
