"""One HTTP client for every venue: signing hook, client-side rate limits, typed errors, retries, safe logging.

Venue modules supply how to sign a request and how to read the venue's error body; everything else (status code
to error type, retry with backoff and jitter, read and write buckets, never logging a secret) lives here once.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from connectors.errors import (
    AuthenticationError,
    ConnectorError,
    MalformedResponseError,
    RateLimitedError,
    VenueClientError,
    VenueServerError,
    VenueUnavailableError,
)
from connectors.resilience import BackoffPolicy, TokenBucket, with_retries
from core.instruments import Venue
from tradestream.logging import SECRET_KEYS, get_logger

log = get_logger(__name__)

Signer = Callable[[str, str, bytes], Mapping[str, str]]
"""(METHOD, path without query, body) -> auth headers."""
ErrorReader = Callable[[int, Any], ConnectorError | None]
"""(status, parsed JSON body or None) -> a venue-specific error, or None to use the generic mapping."""

_SECRET_PATTERN = re.compile(r'("?(?:signature|token|jwt|secret|private_key|authorization|api_key|session|cookie)'
                             r'"?\s*[:=]\s*)("[^"]*"|[^\s,&}]+)', re.IGNORECASE)


def redact(text: str) -> str:
    """Remove anything that looks like a credential from a body before it is logged or raised."""
    return _SECRET_PATTERN.sub(r'\1"***"', text)[:4000]


def scrubbed(value: Any) -> Any:
    """A venue answer as it may leave the connector: secret-named fields hidden, every string redacted."""
    if isinstance(value, dict):
        return {k: "***" if str(k).lower() in SECRET_KEYS else scrubbed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    return redact(value) if isinstance(value, str) else value


@dataclass
class VenueHttpClient:
    venue: Venue
    base_url: str
    signer: Signer | None
    read_bucket: TokenBucket
    write_bucket: TokenBucket
    read_error: ErrorReader | None = None
    timeout_s: float = 5.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    rng: random.Random = field(default_factory=random.Random)
    transport: httpx.AsyncBaseTransport | None = None

    def __post_init__(self) -> None:
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout_s, transport=self.transport)
        self._path_prefix = httpx.URL(self.base_url).path.rstrip("/")

    async def close(self) -> None:
        await self._client.aclose()

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      body: Any = None, write: bool = False, signed: bool = True, retry: bool = True) -> Any:
        """Send a request (retrying transient failures with the very same body) and return the parsed JSON."""
        async def once() -> Any:
            return await self._send(method, path, params, body, write=write, signed=signed)

        if not retry:
            return await once()
        return await with_retries(once, self.backoff, rng=self.rng)

    async def _send(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any, *, write: bool,
                    signed: bool) -> Any:
        await (self.write_bucket if write else self.read_bucket).acquire()
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if signed and self.signer is not None:
            headers.update(self.signer(method.upper(), f"{self._path_prefix}{path}", content))
        try:
            response = await self._client.request(method, path, params=params, content=content or None,
                                                  headers=headers)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise VenueUnavailableError(self.venue, f"{method} {path}: {type(exc).__name__}") from None
        return self._parse(method, path, response)

    def _parse(self, method: str, path: str, response: httpx.Response) -> Any:
        text = response.text
        try:
            payload = response.json() if text else None
        except ValueError:
            payload = None
            if response.is_success:
                raise MalformedResponseError(self.venue, f"{method} {path}: answer is not JSON",
                                             raw_body=redact(text), status=response.status_code) from None
        if response.is_success:
            return payload
        status = response.status_code
        specific = self.read_error(status, payload) if self.read_error else None
        if specific is not None:
            raise specific
        detail = f"{method} {path}: HTTP {status}: {redact(text)[:300]}"
        log.warning("venue.http_error", venue=self.venue.value, method=method, path=path, status=status)
        if status == 429:
            retry_after = response.headers.get("Retry-After")
            raise RateLimitedError(self.venue, detail, retry_after_s=float(retry_after) if retry_after else None)
        if status in (401, 403):
            raise AuthenticationError(self.venue, detail, status=status)
        if status >= 500:
            raise VenueServerError(self.venue, detail, status=status)
        raise VenueClientError(self.venue, detail, status=status)
