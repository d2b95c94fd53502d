"""JWT minting: claims, headers, both algorithms, and keys that never show."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import jwt
import pytest
from pydantic import SecretStr

from connectors.coinbase.auth import CredentialsError, JwtSigner, SigningAlgorithm, load_signing_key
from core.clock import ManualClock
from tests.standins.coinbase import GeneratedKey, generate_key

NOW = datetime(2026, 3, 2, 14, 0, 0, tzinfo=UTC)


def signer(key: GeneratedKey, nonce: str = "00ff") -> JwtSigner:
    return JwtSigner(key.key_name, SecretStr(key.secret), SigningAlgorithm(key.algorithm), "api.coinbase.com",
                     ManualClock(NOW), nonce=lambda: nonce)


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_rest_token_when_signed_then_header_and_claims_are_the_documented_ones(algorithm: str) -> None:
    key = generate_key("ES256" if algorithm == "ES256" else "EdDSA")
    token = signer(key, nonce="a1b2c3").rest_token("get", "/api/v3/brokerage/accounts")
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, key.public_key, algorithms=[algorithm], issuer="cdp",
                        options={"verify_nbf": False, "verify_exp": False})
    assert (header["alg"], header["kid"], header["nonce"]) == (algorithm, key.key_name, "a1b2c3")
    nbf = int(NOW.timestamp())
    assert claims == {"sub": key.key_name, "iss": "cdp", "nbf": nbf, "exp": nbf + 120,
                      "uri": "GET api.coinbase.com/api/v3/brokerage/accounts"}


def test_ws_token_has_no_uri_claim() -> None:
    key = generate_key("ES256")
    claims = jwt.decode(signer(key).ws_token(), key.public_key, algorithms=["ES256"],
                        options={"verify_nbf": False, "verify_exp": False})
    assert "uri" not in claims and claims["sub"] == key.key_name


def test_uri_with_a_query_string_is_refused() -> None:
    with pytest.raises(ValueError, match="query string"):
        signer(generate_key("ES256")).rest_token("GET", "/api/v3/brokerage/accounts?limit=1")


def test_default_nonce_is_fresh_random_hex() -> None:
    key = generate_key("ES256")
    fresh = JwtSigner(key.key_name, SecretStr(key.secret), SigningAlgorithm.ES256, "h", ManualClock(NOW))
    nonces = {jwt.get_unverified_header(fresh.ws_token())["nonce"] for _ in range(5)}
    assert len(nonces) == 5 and all(int(n, 16) >= 0 and len(n) == 32 for n in nonces)


def test_signing_hook_returns_a_bearer_header() -> None:
    headers = signer(generate_key("EdDSA")).headers("POST", "/api/v3/brokerage/orders", b"{}")
    assert list(headers) == ["Authorization"] and headers["Authorization"].startswith("Bearer ey")


def test_pem_with_escaped_newlines_from_an_environment_variable_loads() -> None:
    key = generate_key("ES256")
    assert load_signing_key(SecretStr(key.secret.replace("\n", "\\n")), SigningAlgorithm.ES256)


def test_eddsa_accepts_the_bare_32_byte_seed() -> None:
    key = generate_key("EdDSA")
    seed = base64.b64encode(base64.b64decode(key.secret)[:32]).decode()
    assert load_signing_key(SecretStr(seed), SigningAlgorithm.EDDSA)


def test_eddsa_key_whose_public_half_does_not_match_is_refused() -> None:
    raw = base64.b64decode(generate_key("EdDSA").secret)
    other = base64.b64decode(generate_key("EdDSA").secret)
    with pytest.raises(CredentialsError, match="public half"):
        load_signing_key(SecretStr(base64.b64encode(raw[:32] + other[32:]).decode()), SigningAlgorithm.EDDSA)


@pytest.mark.parametrize(("secret_of", "algorithm"), [("EdDSA", SigningAlgorithm.ES256),
                                                      ("ES256", SigningAlgorithm.EDDSA)])
def test_key_of_the_wrong_kind_is_refused_without_echoing_it(secret_of: str, algorithm: SigningAlgorithm) -> None:
    key = generate_key("EdDSA" if secret_of == "EdDSA" else "ES256")
    with pytest.raises(CredentialsError) as caught:
        load_signing_key(SecretStr(key.secret), algorithm)
    assert key.secret[:24] not in str(caught.value) and caught.value.__cause__ is None


def test_a_p384_key_is_not_an_es256_key() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(CredentialsError, match="P-256"):
        load_signing_key(SecretStr(pem), SigningAlgorithm.ES256)


def test_repr_names_the_key_but_never_shows_it() -> None:
    key = generate_key("ES256")
    text = repr(signer(key))
    assert key.key_name in text and "PRIVATE" not in text
