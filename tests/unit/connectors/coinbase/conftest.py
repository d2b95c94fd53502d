"""Recorded Coinbase payloads (tests/standins/resources/coinbase) for the pure parsing tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RESOURCES = Path(__file__).parents[3] / "standins" / "resources" / "coinbase"


@pytest.fixture
def sample() -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((RESOURCES / f"{name}.json").read_text())
    return load
