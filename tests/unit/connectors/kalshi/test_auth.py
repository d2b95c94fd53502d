from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pydantic import SecretStr

from connectors.kalshi.auth import KalshiSigner, epoch_ms, signature_message
from connectors.kalshi.config import KalshiConfigError
from core.clock import ManualClock

NOW = datetime(2026, 1, 5, 14, 30, 0, 123000, tzinfo=UTC)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)


def verify(public: rsa.RSAPublicKey, headers: dict[str, str], method: str, path: str) -> None:
    message = f"{headers['KALSHI-ACCESS-TIMESTAMP']}{method}{path}".encode()
    public.verify(base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"]), message, PSS, hashes.SHA256())


def test_signature_message_is_timestamp_method_and_path_without_query() -> None:
    assert (signature_message("1703123456789", "get", "/trade-api/v2/portfolio/orders?limit=5&status=resting")
            == b"1703123456789GET/trade-api/v2/portfolio/orders")


def test_signature_message_refuses_a_path_without_the_trade_api_prefix() -> None:
    with pytest.raises(ValueError, match="/trade-api/"):
        signature_message("1", "GET", "/portfolio/orders")


def test_headers_carry_the_key_id_and_the_injected_clock_in_milliseconds(
        rsa_key: tuple[str, rsa.RSAPublicKey]) -> None:
    signer = KalshiSigner("key-1", SecretStr(rsa_key[0]), ManualClock(NOW))

    headers = signer.headers("POST", "/trade-api/v2/portfolio/events/orders")

    assert headers["KALSHI-ACCESS-KEY"] == "key-1"
    assert headers["KALSHI-ACCESS-TIMESTAMP"] == "1767623400123" == str(epoch_ms(NOW))


def test_signature_is_rsa_pss_sha256_with_a_digest_length_salt(rsa_key: tuple[str, rsa.RSAPublicKey]) -> None:
    pem, public = rsa_key
    signer = KalshiSigner("key-1", SecretStr(pem), ManualClock(NOW))

    headers = dict(signer("DELETE", "/trade-api/v2/portfolio/events/orders/abc", b'{"ignored":true}'))

    verify(public, headers, "DELETE", "/trade-api/v2/portfolio/events/orders/abc")
    with pytest.raises(InvalidSignature):
        verify(public, headers, "DELETE", "/trade-api/v2/portfolio/events/orders/xyz")


def test_websocket_handshake_is_signed_over_get_and_the_ws_path(rsa_key: tuple[str, rsa.RSAPublicKey]) -> None:
    pem, public = rsa_key
    headers = KalshiSigner("key-1", SecretStr(pem), ManualClock(NOW)).websocket_headers()

    verify(public, headers, "GET", "/trade-api/ws/v2")


def test_a_key_that_is_not_rsa_is_refused() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()

    with pytest.raises(KalshiConfigError, match="must be an RSA key"):
        KalshiSigner("key-1", SecretStr(pem), ManualClock(NOW))


def test_an_unreadable_key_is_refused_without_echoing_it(rsa_key: tuple[str, rsa.RSAPublicKey]) -> None:
    broken = rsa_key[0].replace("A", "*", 40)

    with pytest.raises(KalshiConfigError) as caught:
        KalshiSigner("key-1", SecretStr(broken), ManualClock(NOW))

    assert not any(line in str(caught.value) for line in broken.splitlines()[1:-2])
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_repr_never_shows_the_key(rsa_key: tuple[str, rsa.RSAPublicKey]) -> None:
    signer = KalshiSigner("key-1", SecretStr(rsa_key[0]), ManualClock(NOW))

    assert repr(signer) == "KalshiSigner(key=***)"
