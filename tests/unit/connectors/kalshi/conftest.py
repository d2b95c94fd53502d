"""Recorded Kalshi payloads (2026 format) and a throwaway RSA key for the pure unit tests."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.standins.kalshi import generate_key

PAYLOADS = json.loads((Path(__file__).parents[3] / "standins" / "resources" / "kalshi" / "payloads.json").read_text())


Payload = Callable[[str], Any]


@pytest.fixture
def payload() -> Payload:
    """`payload("market")`: a fresh deep copy of a recorded payload, safe to modify."""
    return lambda name: copy.deepcopy(PAYLOADS[name])


@pytest.fixture(scope="session")
def rsa_key() -> tuple[str, rsa.RSAPublicKey]:
    return generate_key()
