"""Kalshi request signing: RSA-PSS (SHA-256, MGF1-SHA-256, salt = digest length) over timestamp + METHOD + path.

The path starts at /trade-api/ and carries no query string and no host; the body is not signed. The clock is
injected so signatures are reproducible in tests. Neither the key nor a signature is ever logged or put in an
error message.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import SecretStr

from connectors.kalshi.config import KalshiConfigError
from connectors.kalshi.constants import WS_SIGNED_PATH
from core.clock import Clock

HEADER_KEY = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE = "KALSHI-ACCESS-SIGNATURE"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def signature_message(timestamp_ms: str, method: str, path: str) -> bytes:
    """What Kalshi signs: e.g. `1703123456789GET/trade-api/v2/portfolio/orders` (any query is cut off)."""
    bare = path.split("?", 1)[0]
    if not bare.startswith("/trade-api/"):
        raise ValueError(f"a signed path starts at /trade-api/, got {bare!r}")
    return f"{timestamp_ms}{method.upper()}{bare}".encode()


def epoch_ms(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(milliseconds=1)


class KalshiSigner:
    """Signs REST requests (as the shared HTTP client's `Signer`) and the websocket handshake."""

    def __init__(self, key_id: str, private_key_pem: SecretStr, clock: Clock) -> None:
        try:
            key = serialization.load_pem_private_key(private_key_pem.get_secret_value().encode(), password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            # The library's message could quote the input: say only what is wrong.
            raise KalshiConfigError("the Kalshi private key is not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KalshiConfigError("the Kalshi private key must be an RSA key")
        self._key = key
        self._key_id = key_id
        self._clock = clock

    def __repr__(self) -> str:
        return "KalshiSigner(key=***)"

    def headers(self, method: str, path: str) -> dict[str, str]:
        timestamp = str(epoch_ms(self._clock.now()))
        signature = self._key.sign(signature_message(timestamp, method, path), _PSS, hashes.SHA256())
        return {HEADER_KEY: self._key_id, HEADER_TIMESTAMP: timestamp,
                HEADER_SIGNATURE: base64.b64encode(signature).decode()}

    def __call__(self, method: str, path: str, body: bytes) -> Mapping[str, str]:
        return self.headers(method, path)

    def websocket_headers(self) -> dict[str, str]:
        return self.headers("GET", WS_SIGNED_PATH)
