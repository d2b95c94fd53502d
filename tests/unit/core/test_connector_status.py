"""A connector's state for operators: down, degraded (fallback in use or a failing read) or ok."""

from datetime import timedelta

from core.instruments import Venue
from core.venue import REST_POLLING, ConnectorHealth, ConnectorState, MarketDataMode, connector_status
from tests.kit.builders import T0


def health(**overrides: object) -> ConnectorHealth:
    fields: dict[str, object] = {"venue": Venue.KALSHI, "reachable": True, "authenticated": True,
                                 "market_data_mode": MarketDataMode.STREAMING, "latency_ms": 3.5, "checked_at": T0}
    return ConnectorHealth.model_validate({**fields, **overrides})


def test_status_when_streaming_without_problems_then_ok_without_fallback() -> None:
    status = connector_status("kalshi", Venue.KALSHI, health(), [], None, T0)

    assert (status.state, status.fallback, status.latency_ms, status.last_error) == (ConnectorState.OK, None, 3.5, "")


def test_status_when_polling_then_degraded_with_the_rest_polling_fallback() -> None:
    status = connector_status("kalshi", Venue.KALSHI, health(market_data_mode=MarketDataMode.POLLING), [], None, T0)

    assert (status.state, status.fallback) == (ConnectorState.DEGRADED, REST_POLLING)


def test_status_when_a_read_is_failing_then_degraded_with_the_problem_and_last_error() -> None:
    failed_at = T0 - timedelta(seconds=4)
    problem = "instruments: VenueServerError: kalshi: HTTP 503"

    status = connector_status("kalshi", Venue.KALSHI, health(), [problem], (problem, failed_at), T0)

    assert (status.state, status.problems, status.last_error, status.last_error_at) == (
        ConnectorState.DEGRADED, (problem,), problem, failed_at)


def test_status_when_unreachable_unauthenticated_or_unchecked_then_down() -> None:
    unreachable = connector_status("kalshi", Venue.KALSHI, health(reachable=False, latency_ms=None), [], None, T0)
    refused = connector_status("kalshi", Venue.KALSHI, health(authenticated=False), [], None, T0)
    unchecked = connector_status("kalshi", Venue.KALSHI, None, ["health: TimeoutError: "], None, T0)

    assert {unreachable.state, refused.state, unchecked.state} == {ConnectorState.DOWN}
    assert (unchecked.market_data_mode, unchecked.fallback, unchecked.reachable) == (None, None, False)
