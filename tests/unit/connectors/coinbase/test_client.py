"""The REST client's pure parts: the error body -> typed error mapping and the rate-limit headers."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from connectors.coinbase.client import RateLimitState, RestClient, malformed
from connectors.coinbase.config import CoinbaseConfig
from connectors.errors import (
    AuthenticationError,
    DuplicateClientOrderIdError,
    RateLimitedError,
    VenueClientError,
    VenueServerError,
)
from tests.standins.coinbase import generate_key


@pytest.fixture
def client() -> RestClient:
    key = generate_key("ES256")
    config = CoinbaseConfig(key_name=key.key_name, private_key=SecretStr(key.secret))
    return RestClient(config, lambda method, path, body: {})


@pytest.mark.parametrize(("status", "code", "expected"), [
    (401, "UNAUTHENTICATED", AuthenticationError), (403, "PERMISSION_DENIED", AuthenticationError),
    (400, "PERMISSION_DENIED", AuthenticationError), (429, "RESOURCE_EXHAUSTED", RateLimitedError),
    (400, "RESOURCE_EXHAUSTED", RateLimitedError), (409, "ALREADY_EXISTS", DuplicateClientOrderIdError),
    (400, "DUPLICATE_CLIENT_ORDER_ID", DuplicateClientOrderIdError), (500, "INTERNAL", VenueServerError),
    (503, "UNAVAILABLE", VenueServerError), (400, "INVALID_ARGUMENT", VenueClientError),
    (404, "NOT_FOUND", VenueClientError)])
def test_error_body_maps_to_a_typed_error(client: RestClient, status: int, code: str, expected: type) -> None:
    error = client.read_error(status, {"error": code, "error_details": "details", "message": "message"})
    assert type(error) is expected
    assert error is not None and error.status == status
    if expected is not RateLimitedError:
        assert error.code == code


def test_a_body_off_the_error_shape_falls_back_to_the_status(client: RestClient) -> None:
    assert client.read_error(401, None) is None
    assert client.read_error(500, {"unexpected": True}) is None
    assert isinstance(client.read_error(429, "Too Many Requests"), RateLimitedError)


def test_429_carries_the_reset_time_of_the_last_answer(client: RestClient) -> None:
    client.limits.observe(httpx.Headers({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.25"}))
    error = client.read_error(429, {"error": "RESOURCE_EXHAUSTED"})
    assert isinstance(error, RateLimitedError) and error.retry_after_s == 0.25


@pytest.mark.parametrize(("header", "expected"), [("2", 2.0), ("1000000005", 5.0), ("999", 10.0), ("-3", 0.0),
                                                  ("soon", None)])
def test_reset_header_is_read_as_seconds_or_unix_time(header: str, expected: float | None) -> None:
    state = RateLimitState(cap_s=10.0, wall=lambda: 1_000_000_000.0)
    state.observe(httpx.Headers({"x-ratelimit-reset": header}))
    assert state.retry_after_s() == expected


async def test_an_exhausted_window_pauses_the_next_request() -> None:
    now = [100.0]
    state = RateLimitState(cap_s=10.0, monotonic=lambda: now[0])
    state.observe(httpx.Headers({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.01"}))
    await state.wait_if_exhausted()  # sleeps ~10 ms, then the window is open again
    state.observe(httpx.Headers({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "1"}))
    now[0] += 100  # would be a long wait if the window were still considered exhausted
    await state.wait_if_exhausted()


def test_malformed_keeps_the_redacted_body_and_names_the_fields() -> None:
    from pydantic import BaseModel

    class Shape(BaseModel):
        accounts: list[int]

    payload = {"jwt": "eyJhbGciOi.secret.token", "accounts": "nope"}
    try:
        Shape.model_validate(payload)
    except Exception as exc:
        error = malformed("GET /accounts", payload, exc)
    assert "accounts" in str(error) and "nope" not in str(error)
    assert "eyJhbGciOi" not in error.raw_body and "nope" in error.raw_body
