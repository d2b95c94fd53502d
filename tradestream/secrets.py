"""Secrets the platform's own processes share: read from settings, or kept in a file only the owner can read."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from tradestream.config import Settings


class SecretFileError(Exception):
    pass


def read_owner_only(path: Path) -> bytes:
    """Read a secret file, refusing one that the group or others can read."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(f"{path} is readable by group or others (mode {stat.filemode(mode)}); "
                              f"run: chmod 600 {path}")
    return path.read_bytes().strip()


def risk_seal_key(settings: Settings) -> bytes:
    """The key the risk gate seals decisions with and the OMS checks them against."""
    if settings.risk_seal_key is not None:
        return settings.risk_seal_key.get_secret_value().encode()
    path = settings.state_dir / "secrets" / "risk-seal.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return read_owner_only(path)
