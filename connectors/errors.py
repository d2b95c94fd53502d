"""Typed connector errors. Retry is decided by `should_retry(error)` from the type, never from message text."""

from __future__ import annotations

from core.instruments import Venue


class ConnectorError(Exception):
    def __init__(self, venue: Venue, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(f"{venue.value}: {message}")
        self.venue = venue
        self.status = status
        self.code = code


class VenueClientError(ConnectorError):
    """The venue refused the request as invalid (4xx other than auth and rate limit). Not retried."""


class AuthenticationError(VenueClientError):
    """Credentials missing, wrong or expired (401/403). Not retried."""


class OrderRejectedError(VenueClientError):
    """The venue refused an order (insufficient funds, invalid price...). Not retried."""


class DuplicateClientOrderIdError(VenueClientError):
    """The venue already has an order with this client order id; look it up instead of placing again."""


class UnsupportedError(VenueClientError):
    """This venue cannot serve the request (declared in its capabilities)."""


class RetryableError(ConnectorError):
    """A transient failure: the same request (same client order id) may be sent again after a backoff."""


class RateLimitedError(RetryableError):
    def __init__(self, venue: Venue, message: str, *, retry_after_s: float | None = None, status: int = 429) -> None:
        super().__init__(venue, message, status=status)
        self.retry_after_s = retry_after_s


class VenueServerError(RetryableError):
    """5xx from the venue."""


class VenueUnavailableError(RetryableError):
    """Connection refused, reset, or timed out before an answer."""


class MalformedResponseError(ConnectorError):
    """The venue answered in a shape that does not match its documented format. The sanitized raw body is kept
    for the log; the answer is never guessed at."""

    def __init__(self, venue: Venue, message: str, *, raw_body: str, status: int | None = None) -> None:
        super().__init__(venue, message, status=status)
        self.raw_body = raw_body


class SequenceGapError(RetryableError):
    """A stream skipped a sequence number: resubscribe and rebuild from a snapshot."""


def should_retry(error: BaseException) -> bool:
    return isinstance(error, RetryableError)
