"""Liveness of each process, published to Redis for /health: a key per component with a short TTL."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from typing import Any

import redis

from streams.shared_state import HEARTBEAT_TTL_S, heartbeat_key
from tradestream.config import Settings


class Heartbeat:
    """Rate-limited: calling `beat` on every loop iteration writes at most once every `every_s` seconds."""

    def __init__(self, settings: Settings, component: str, every_s: float = 2.0) -> None:
        self._client = redis.Redis.from_url(settings.redis, socket_timeout=2)
        self._key = heartbeat_key(settings, component)
        self._every_s = every_s
        self._last = 0.0

    def beat(self, stats: dict[str, Any] | None = None) -> None:
        now = time.monotonic()
        if now - self._last < self._every_s:
            return
        self._last = now
        payload = {"pid": os.getpid(), "at": datetime.now(UTC).isoformat(), **(stats or {})}
        self._client.set(self._key, json.dumps(payload, default=str), ex=HEARTBEAT_TTL_S)
