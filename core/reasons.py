"""Every allow/block reason in the platform, in one documented list.

Dashboards group by the code; the detail carries key=value facts, e.g.
`MAX_ORDER_NOTIONAL_EXCEEDED: notional=5200 limit=5000`.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    # allowed
    APPROVED = "APPROVED"
    PAPER_SIMULATED = "PAPER_SIMULATED"
    SHADOW_WRITE_SIMULATED = "SHADOW_WRITE_SIMULATED"
    LIVE_GATE_PASSED = "LIVE_GATE_PASSED"
    # instrument and order shape
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    INSTRUMENT_NOT_TRADEABLE = "INSTRUMENT_NOT_TRADEABLE"
    PRICE_OFF_TICK = "PRICE_OFF_TICK"
    QUANTITY_OFF_LOT = "QUANTITY_OFF_LOT"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    # pre-trade risk
    NO_MARKET_PRICE = "NO_MARKET_PRICE"
    MAX_ORDER_NOTIONAL_EXCEEDED = "MAX_ORDER_NOTIONAL_EXCEEDED"
    MAX_POSITION_EXCEEDED = "MAX_POSITION_EXCEEDED"
    STALE_QUOTE = "STALE_QUOTE"
    PRICE_OUTSIDE_BAND = "PRICE_OUTSIDE_BAND"
    EQUITY_UNKNOWN = "EQUITY_UNKNOWN"
    CONCENTRATION_EXCEEDED = "CONCENTRATION_EXCEEDED"
    ASSET_CLASS_CAP_EXCEEDED = "ASSET_CLASS_CAP_EXCEEDED"
    MAX_LEVERAGE_EXCEEDED = "MAX_LEVERAGE_EXCEEDED"
    ORDER_RATE_EXCEEDED = "ORDER_RATE_EXCEEDED"
    # trading state: kill switches and drawdown
    KILL_SWITCH_HALTED = "KILL_SWITCH_HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"
    # integrity of the order flow
    UNSEALED_DECISION = "UNSEALED_DECISION"
    # execution mode and the live gate
    MODE_ACCOUNT_MISMATCH = "MODE_ACCOUNT_MISMATCH"
    LIVE_NOT_ENABLED = "LIVE_NOT_ENABLED"
    NO_RISK_POLICY = "NO_RISK_POLICY"
    KILL_SWITCH_NOT_HEALTHY = "KILL_SWITCH_NOT_HEALTHY"
    CONNECTOR_UNAVAILABLE = "CONNECTOR_UNAVAILABLE"
    SHADOW_NOT_SEEDED = "SHADOW_NOT_SEEDED"
    # the venue's answer to a live write
    VENUE_REJECTED = "VENUE_REJECTED"
    VENUE_UNSUPPORTED = "VENUE_UNSUPPORTED"
    VENUE_OUTCOME_UNKNOWN = "VENUE_OUTCOME_UNKNOWN"
    VENUE_OUTCOME_RESOLVED = "VENUE_OUTCOME_RESOLVED"
    VENUE_CANCEL_REJECTED = "VENUE_CANCEL_REJECTED"
    # order lifecycle
    DUPLICATE_SUBMISSION = "DUPLICATE_SUBMISSION"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    NOT_MARKETABLE_RESTING = "NOT_MARKETABLE_RESTING"
    NO_QUOTE_RESTING = "NO_QUOTE_RESTING"
    FILLED_AT_TOUCH = "FILLED_AT_TOUCH"
    CANCELLED_BY_USER = "CANCELLED_BY_USER"
    CANCELLED_BY_KILL_SWITCH = "CANCELLED_BY_KILL_SWITCH"


REASON_DOCS: dict[ReasonCode, str] = {
    ReasonCode.APPROVED: "The risk gate found no rule broken.",
    ReasonCode.PAPER_SIMULATED: "Paper account: the order is executed by the fill simulator, never a venue.",
    ReasonCode.SHADOW_WRITE_SIMULATED: "Shadow account: the write is blocked and simulated against the real book.",
    ReasonCode.LIVE_GATE_PASSED: "Live account with live_enabled, a loaded risk policy and a healthy kill switch.",
    ReasonCode.UNKNOWN_INSTRUMENT: "The instrument id is not in the instrument registry.",
    ReasonCode.INSTRUMENT_NOT_TRADEABLE: "The instrument is in the registry but cannot be traded now: its venue "
                                         "lists it as inactive, closed, halted or disabled, it is no longer "
                                         "listed, or it has expired (detail `status=...`).",
    ReasonCode.PRICE_OFF_TICK: "The limit price is not a multiple of the instrument's tick size.",
    ReasonCode.QUANTITY_OFF_LOT: "The quantity is not a multiple of the instrument's lot size.",
    ReasonCode.UNKNOWN_ACCOUNT: "The account is not configured.",
    ReasonCode.NO_MARKET_PRICE: "No quote is known for the instrument, so notional cannot be bounded.",
    ReasonCode.MAX_ORDER_NOTIONAL_EXCEEDED: "quantity x price x multiplier is above the policy's max_order_notional.",
    ReasonCode.MAX_POSITION_EXCEEDED: "The position after the order would be above max_position_quantity.",
    ReasonCode.STALE_QUOTE: "The latest quote is older than the policy's max_quote_age_s.",
    ReasonCode.PRICE_OUTSIDE_BAND: "The limit price is further from the mid than price_band_bps (fat-finger guard).",
    ReasonCode.EQUITY_UNKNOWN: "The account's equity could not be marked, so exposure limits cannot be checked.",
    ReasonCode.CONCENTRATION_EXCEEDED: "One instrument's position would exceed max_concentration of equity.",
    ReasonCode.ASSET_CLASS_CAP_EXCEEDED: "Gross exposure in the asset class would exceed its cap.",
    ReasonCode.MAX_LEVERAGE_EXCEEDED: "Gross exposure over equity would exceed max_gross_leverage.",
    ReasonCode.ORDER_RATE_EXCEEDED: "The account sent max_orders_per_window orders within order_rate_window_s.",
    ReasonCode.KILL_SWITCH_HALTED: "A kill switch covering the order (global, venue, strategy or user) is halted.",
    ReasonCode.REDUCE_ONLY: "The account or a covering kill switch is reduce-only and the order would not reduce.",
    ReasonCode.UNSEALED_DECISION: "An approval without the risk gate's valid seal: forged or corrupted; refused.",
    ReasonCode.MODE_ACCOUNT_MISMATCH: "The requested mode is not the account's mode; ledgers never mix modes.",
    ReasonCode.LIVE_NOT_ENABLED: "live_enabled is not true for this user and connector.",
    ReasonCode.NO_RISK_POLICY: "No risk policy is loaded for the account.",
    ReasonCode.KILL_SWITCH_NOT_HEALTHY: "A kill switch covering the order is reduce-only or halted.",
    ReasonCode.CONNECTOR_UNAVAILABLE: "No connector for the instrument's venue is configured in this worker.",
    ReasonCode.SHADOW_NOT_SEEDED: "The shadow ledger has not been seeded from the venue account yet; nothing is "
                                  "simulated against a ledger that does not mirror the real one.",
    ReasonCode.VENUE_REJECTED: "The venue refused the order (funds, price, credentials...); nothing was placed.",
    ReasonCode.VENUE_UNSUPPORTED: "The venue cannot take this order (type, time in force, quantity); never sent.",
    ReasonCode.VENUE_OUTCOME_UNKNOWN: "The venue did not answer the write after every retry: the order may exist. "
                                      "It stays pending until the fill poller or reconciliation finds out; it is "
                                      "never re-sent under a new id nor marked rejected on a guess.",
    ReasonCode.VENUE_OUTCOME_RESOLVED: "An order whose venue outcome was unknown was found at the venue.",
    ReasonCode.VENUE_CANCEL_REJECTED: "The venue refused the cancel (the order had filled or was gone); the order "
                                      "stays as the venue reports it.",
    ReasonCode.DUPLICATE_SUBMISSION: "The idempotency key was seen before: the existing order is returned.",
    ReasonCode.IDEMPOTENCY_CONFLICT: "The idempotency key was used before with a different order body.",
    ReasonCode.NOT_MARKETABLE_RESTING: "A limit order that does not cross rests until the market reaches it.",
    ReasonCode.NO_QUOTE_RESTING: "No quote is known yet; the simulator fills the order when one arrives.",
    ReasonCode.CANCELLED_BY_USER: "Cancelled on request (API or operator).",
    ReasonCode.CANCELLED_BY_KILL_SWITCH: "Cancelled because a kill switch covering it was halted.",
    ReasonCode.FILLED_AT_TOUCH: "The simulator filled the order at the opposite touch.",
}
