"""What the worker remembers about a connector's failures: current problems, the last error, no secrets."""

from agents.connector_health import ConnectorIssues
from connectors.errors import VenueServerError
from core.instruments import Venue


def test_failed_then_recovered_leaves_no_problem_but_keeps_the_last_error() -> None:
    issues = ConnectorIssues()

    issues.failed("kalshi", "instruments", VenueServerError(Venue.KALSHI, "HTTP 503", status=503))
    during = issues.current("kalshi")
    issues.recovered("kalshi", "instruments")

    assert during == ["instruments: VenueServerError: kalshi: HTTP 503"]
    assert issues.current("kalshi") == []
    last = issues.last("kalshi")
    assert last is not None and last[0] == during[0]


def test_recorded_errors_are_redacted_and_bounded() -> None:
    issues = ConnectorIssues()

    issues.record("coinbase", "quotes", RuntimeError('refused {"jwt": "eyJhbGciOi.secret.part", "x": 1}' + "y" * 900))

    last = issues.last("coinbase")
    assert last is not None
    assert "eyJhbGciOi" not in last[0] and '"jwt": "***"' in last[0]
    assert len(last[0]) <= len("quotes: ") + 500
    assert issues.current("coinbase") == []
