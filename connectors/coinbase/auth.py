"""JWT signing for Coinbase Advanced Trade (CDP API keys).

Every REST request carries a fresh JWT: header {alg, kid=<key name>, nonce=<random hex>}, claims {sub=<key name>,
iss="cdp", nbf=now, exp=now+120, uri="<METHOD> <host><path>"} with no query string in `uri`. A websocket subscribe
message carries a fresh JWT without the `uri` claim. The clock and the nonce source are injected so tokens are
reproducible in tests. Nothing here logs or repr()s a key or a token.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable, Mapping
from enum import StrEnum

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import SecretStr

from connectors.coinbase.constants import JWT_ISSUER, JWT_LIFETIME_S
from core.clock import Clock


class SigningAlgorithm(StrEnum):
    ES256 = "ES256"
    """EC P-256 key in PEM (the CDP default for Advanced Trade keys)."""
    EDDSA = "EdDSA"
    """Ed25519 key, base64 of the 32-byte seed or of seed + public key (64 bytes)."""


class CredentialsError(Exception):
    """The configured credentials cannot be used. The message never contains key material."""


SigningKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def load_signing_key(private_key: SecretStr, algorithm: SigningAlgorithm) -> SigningKey:
    raw = private_key.get_secret_value().strip()
    if algorithm is SigningAlgorithm.ES256:
        return _load_ec_key(raw)
    return _load_ed25519_key(raw)


def _load_ec_key(raw: str) -> ec.EllipticCurvePrivateKey:
    # Keys kept in environment variables often carry literal "\n" instead of newlines.
    pem = raw.replace("\\n", "\n").encode()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise CredentialsError("private key is not an unencrypted PEM key (ES256 needs an EC P-256 key; "
                               "for an Ed25519 key set algorithm=EdDSA)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CredentialsError("ES256 needs an EC P-256 (secp256r1) private key")
    return key


def _load_ed25519_key(raw: str) -> ed25519.Ed25519PrivateKey:
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise CredentialsError("EdDSA private key must be base64") from None
    if len(decoded) not in (32, 64):
        raise CredentialsError(f"EdDSA private key must decode to 32 or 64 bytes, got {len(decoded)}")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(decoded[:32])
    if len(decoded) == 64:
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if public != decoded[32:]:
            raise CredentialsError("EdDSA private key: the public half does not match the seed")
    return key


def _random_nonce() -> str:
    return secrets.token_hex(16)


class JwtSigner:
    """Mints the per-request and per-subscribe JWTs. `uri_host` is the REST host as it appears in the `uri` claim
    (`api.coinbase.com` in production)."""

    def __init__(self, key_name: str, private_key: SecretStr, algorithm: SigningAlgorithm, uri_host: str,
                 clock: Clock, nonce: Callable[[], str] = _random_nonce) -> None:
        self._key_name = key_name
        self._key = load_signing_key(private_key, algorithm)
        self._algorithm = algorithm
        self._uri_host = uri_host
        self._clock = clock
        self._nonce = nonce

    def __repr__(self) -> str:
        return f"JwtSigner(key_name={self._key_name!r}, algorithm={self._algorithm.value})"

    def rest_token(self, method: str, path: str) -> str:
        """`path` is the full URL path (e.g. /api/v3/brokerage/accounts), without the query string."""
        if "?" in path:
            raise ValueError("the uri claim must not carry a query string")
        return self._token({"uri": f"{method.upper()} {self._uri_host}{path}"})

    def ws_token(self) -> str:
        return self._token({})

    def headers(self, method: str, path: str, body: bytes) -> Mapping[str, str]:
        """The shared HTTP client's signing hook: the body is not part of a Coinbase JWT."""
        return {"Authorization": f"Bearer {self.rest_token(method, path)}"}

    def _token(self, extra: dict[str, str]) -> str:
        now = int(self._clock.now().timestamp())
        claims: dict[str, object] = {"sub": self._key_name, "iss": JWT_ISSUER, "nbf": now,
                                     "exp": now + JWT_LIFETIME_S, **extra}
        return jwt.encode(claims, self._key, algorithm=self._algorithm.value,
                          headers={"kid": self._key_name, "nonce": self._nonce()})
