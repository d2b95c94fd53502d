"""Every topic of the platform, declared once: name, key, partitions, retention, compaction, record.

Order-flow topics are keyed by account and share one partition count, so one account's intents, decisions,
order events and positions are co-partitioned and handled by one worker. Market data is keyed by instrument.
Control and reference topics are compacted: the latest value per key is the state. All producers use the murmur2
partitioner (Kafka's Java default, also aiokafka's), so a key lands on the same partition whoever writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DAY_MS = 24 * 3600 * 1000


class Key(StrEnum):
    ACCOUNT = "account_id"
    INSTRUMENT = "instrument_id"
    CONTROL = "control key (scope:target or user:connector)"
    SOURCE_TOPIC = "source topic"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: Key
    record: str
    description: str
    retention_ms: int = 30 * DAY_MS
    compacted: bool = False
    single_partition: bool = False
    """Control and audit topics keep one total order."""

    def partitions(self, default: int) -> int:
        return 1 if self.single_partition else default

    def config(self) -> dict[str, str]:
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms)}


MD_QUOTES = TopicSpec("md.quotes", Key.INSTRUMENT, "Quote", "Top-of-book quotes from every feed.",
                      retention_ms=7 * DAY_MS)
ORDER_INTENTS = TopicSpec("orders.intents", Key.ACCOUNT, "OrderIntent",
                          "Wishes to trade from strategies and the API, before risk.")
ORDER_DECISIONS = TopicSpec("orders.decisions", Key.ACCOUNT, "RiskDecision",
                            "The risk gate's approval or denial of each intent; only the risk gate writes here.")
ORDER_EVENTS = TopicSpec("orders.events", Key.ACCOUNT, "OrderUpdated | FillReported",
                         "Order state changes and fills, from the OMS and execution router.")
ORDER_COMMANDS = TopicSpec("orders.commands", Key.ACCOUNT, "CancelOrder | CancelScope | MatchResting",
                           "Requests to the OMS: cancel an order, cancel a halted scope, match resting orders.")
POSITIONS = TopicSpec("portfolio.positions", Key.ACCOUNT, "PositionUpdated", "Positions after each fill.")
PNL = TopicSpec("portfolio.pnl", Key.ACCOUNT, "PnlSnapshot", "Account PnL snapshots, after fills and on a timer.")
KILL_SWITCH = TopicSpec("control.kill_switch", Key.CONTROL, "KillSwitch",
                        "Kill-switch state per scope and target.", compacted=True, single_partition=True)
LIVE_ENABLED = TopicSpec("control.live_enabled", Key.CONTROL, "LiveEnabled",
                         "live_enabled per user and connector.", compacted=True, single_partition=True)
RISK_POLICY = TopicSpec("control.risk_policy", Key.CONTROL, "PolicyBook",
                        "The risk policy book in force (key `book`).", compacted=True, single_partition=True)
AUDIT = TopicSpec("audit.events", Key.CONTROL, "AuditEvent",
                  "Config, policy, kill-switch, live_enabled, mode, ledger (shadow seed, settlement) and integrity "
                  "events; chained by the audit sink.",
                  retention_ms=-1, single_partition=True)
SHADOW_SEEDS = TopicSpec("portfolio.shadow_seeds", Key.ACCOUNT, "ShadowSeed",
                         "Opening ledgers of shadow accounts, read from their venue accounts; applied once.")
SETTLEMENTS = TopicSpec("portfolio.settlements", Key.ACCOUNT, "Settlement",
                        "Positions to close at their settled instrument's price; the portfolio applies each once.")
RECONCILIATION = TopicSpec("reconcile.reports", Key.ACCOUNT, "ReconciliationReport",
                           "Each reconciliation of an account against its venue: matched, mismatched or unknown.",
                           retention_ms=-1)
REFERENCE_INSTRUMENTS = TopicSpec(
    "reference.instruments", Key.INSTRUMENT, "InstrumentListed",
    "The instrument registry: each canonical instrument as merged from the configured catalog and the enabled "
    "connectors' listings, with its venue symbols and the sources listing it; the latest record per id is the "
    "registry (an instrument no source lists any more stays, not tradeable).", compacted=True)
DEAD_LETTER = TopicSpec("deadletter", Key.SOURCE_TOPIC, "DeadLetter",
                        "Messages that failed to decode or validate, with the reason; kept for inspection.")

ALL_TOPICS: tuple[TopicSpec, ...] = (MD_QUOTES, ORDER_INTENTS, ORDER_DECISIONS, ORDER_EVENTS, ORDER_COMMANDS,
                                     POSITIONS, PNL, KILL_SWITCH, LIVE_ENABLED, RISK_POLICY, AUDIT, SHADOW_SEEDS,
                                     SETTLEMENTS, RECONCILIATION, REFERENCE_INSTRUMENTS, DEAD_LETTER)


def topic_name(spec: TopicSpec, prefix: str) -> str:
    return f"{prefix}{spec.name}"
