"""The built-in strategies, by the name a worker's settings or `tradestream backtest` refer to them."""

from __future__ import annotations

from typing import Any

from core.strategies.event_mean_reversion import EventMeanReversion
from core.strategies.sma import SmaCrossover
from core.strategy import Strategy

STRATEGIES: dict[str, type[Strategy[Any]]] = {
    "sma_crossover": SmaCrossover,
    "event_mean_reversion": EventMeanReversion,
}

__all__ = ["STRATEGIES", "EventMeanReversion", "SmaCrossover"]
