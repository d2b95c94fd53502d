"""Topic replay through the running pipeline gives the same trades as the backtest engine on the same quotes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Producer

from backtest.data import market_data
from backtest.engine import Backtest, BacktestConfig
from backtest.replay import read_recorded_quotes, replay, restamped
from connectors.simulated.market import SimulatedMarket, default_catalog
from core.strategies import STRATEGIES
from streams.kafka import ensure_topics, producer_config
from streams.topics import Key, TopicSpec, topic_name
from tests.kit.processes import running
from tests.kit.waiting import eventually
from tradestream.config import Settings, StrategySettings

pytestmark = pytest.mark.integration

PARAMS = {"fast": 3, "slow": 8, "quantity": {"crypto_spot:BTC-USD": "0.01", "equity:AAPL": "5"}}
ROUND = timedelta(milliseconds=250)
"""The recorded rhythm: slower than the pipeline's round trip, as market data is."""


def recording(settings: Settings, rounds: int) -> str:
    """A recorded market-data topic, as an earlier session would have left it."""
    spec = TopicSpec("recorded.md.quotes", Key.INSTRUMENT, "Quote", "A recorded session's quotes.")
    ensure_topics(settings, [spec])
    topic = topic_name(spec, settings.topic_prefix)
    market = SimulatedMarket(seed=21)
    start = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    producer = Producer(producer_config(settings))
    for n in range(rounds):
        for quote in market.next_round(start + n * ROUND):
            producer.produce(topic, key=quote.instrument_id.encode(), value=quote.model_dump_json().encode())
    assert producer.flush(10) == 0
    return topic


def test_replayed_topic_and_backtest_give_the_same_trades(settings: Settings, tmp_path: Path) -> None:
    strategy = StrategySettings(name="sma_crossover", strategy_id="replay-1", params=PARAMS)
    live = settings.model_copy(update={"strategy": strategy})
    ensure_topics(live)
    recorded = read_recorded_quotes(live, recording(live, rounds=80))
    quotes = restamped(recorded, datetime.now(UTC) + timedelta(seconds=1))
    engine = Backtest(STRATEGIES["sma_crossover"]("replay-1", PARAMS),
                      BacktestConfig(account=live.accounts[0], policy=live.risk), default_catalog(),
                      market_data((), quotes)).run()
    expected = [(f.instrument_id, f.side.value, f.quantity, f.price) for f in engine.trades]
    assert len(expected) >= 4  # the data gives the strategy signals both ways

    with running(live, "sinks", "worker", log_dir=tmp_path):
        assert replay(live, restamped(quotes, datetime.now(UTC))) == len(quotes)

        def pipeline_trades() -> list[tuple[str, str, Decimal, Decimal]] | None:
            with psycopg.connect(live.dsn) as conn:
                rows = conn.execute("SELECT instrument_id, side, quantity, price FROM fills"
                                    " WHERE strategy_id = 'replay-1' ORDER BY ts, instrument_id").fetchall()
            return rows if len(rows) >= len(expected) else None

        trades = eventually(pipeline_trades, timeout=60, what="the replayed session's fills")
    by_instrument = sorted(trades, key=lambda t: t[0])
    assert by_instrument == sorted(expected, key=lambda t: t[0])
