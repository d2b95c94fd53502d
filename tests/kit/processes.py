"""Run the platform's processes (`python -m tradestream <component>`) for a test, isolated by its settings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from streams.shared_state import heartbeat_key
from tests.kit.waiting import eventually
from tradestream.config import Settings

HEARTBEATS = {"worker": "worker:stream", "feed": "feed:simulated", "sinks": "sink:ticks"}


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process load the same (isolated) settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADESTREAM_")}
    env.update({
        "TRADESTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "TRADESTREAM_APP_ID": settings.app_id,
        "TRADESTREAM_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "TRADESTREAM_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "TRADESTREAM_POSTGRES_DSN": settings.dsn,
        "TRADESTREAM_REDIS_URL": settings.redis,
        "TRADESTREAM_API_PORT": str(settings.api_port),
        "TRADESTREAM_PNL_INTERVAL_S": str(settings.pnl_interval_s),
        "TRADESTREAM_STATE_DIR": str(settings.state_dir),
        "TRADESTREAM_ACCOUNTS": json.dumps([a.model_dump(mode="json") for a in settings.accounts]),
        "TRADESTREAM_RISK": settings.risk.model_dump_json(),
        "TRADESTREAM_STRATEGY": settings.strategy.model_dump_json(),
        "TRADESTREAM_CONNECTORS": settings.connectors.model_dump_json(),
    })
    if settings.risk_policy_file is not None:
        env["TRADESTREAM_RISK_POLICY_FILE"] = str(settings.risk_policy_file)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(settings: Settings, *components: str, log_dir: Path) -> Iterator[dict[str, Path]]:
    """Start the components, wait for their heartbeats, yield their log paths, stop them (SIGTERM)."""
    env = settings_env(settings)
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for name in components:
            log_path = log_dir / f"{name}.log"
            procs[name] = (subprocess.Popen([sys.executable, "-m", "tradestream", name], env=env,
                                            stdout=log_path.open("w"), stderr=subprocess.STDOUT), log_path)
        store = redis.Redis.from_url(settings.redis)
        for name in components:
            process, log_path = procs[name]
            key = heartbeat_key(settings, HEARTBEATS.get(name, name))

            def alive(process: subprocess.Popen[bytes] = process, key: str = key, log_path: Path = log_path,
                      name: str = name) -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"{log_path.stem} exited with {process.returncode}:\n"
                                         f"{log_path.read_text()[-3000:]}")
                if name == "api":  # the API has no heartbeat; it is up when it accepts connections
                    with socket.socket() as sock:
                        return sock.connect_ex(("127.0.0.1", settings.api_port)) == 0
                return bool(store.exists(key))

            eventually(alive, timeout=60, what=f"{name} to come up")
        yield {name: log for name, (_, log) in procs.items()}
    finally:
        for process, _ in procs.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in procs.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
