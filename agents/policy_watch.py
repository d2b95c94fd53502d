"""Hot reload of the risk policy file: validated as a whole, published and audited; an invalid file is refused
with its reason (also audited) and the policies in force stay as they were."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agents.kit import AgentKit
from core.policy import PolicyBook, PolicyError, parse_policy_document
from tradestream.logging import get_logger

log = get_logger(__name__)


def load_policy_file(path: Path) -> PolicyBook:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot be read: {exc.strerror}") from None
    return parse_policy_document(text, str(path))


def register(kit: AgentKit, path: Path) -> None:
    last_seen: list[tuple[int, int]] = []

    @kit.timer(1.0, "risk_policy_reload", on_leader=True)
    async def reload_policies() -> None:
        try:
            stat = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return
        signature = (stat.st_mtime_ns, stat.st_size)
        if last_seen and last_seen[-1] == signature:
            return
        last_seen[:] = [signature]
        plane = kit.control_plane
        try:
            book = await asyncio.to_thread(load_policy_file, path)
        except PolicyError as exc:
            log.error("risk_policy.rejected", source=str(path), error=str(exc))
            await asyncio.to_thread(plane.reject_policy_book, str(exc), "policy-file", str(path))
            return
        current = await asyncio.to_thread(plane.policy_book)
        if current is None or current.version_key() != book.version_key() or current != book:
            await asyncio.to_thread(plane.publish_policy_book, book, "policy-file", str(path))
            log.info("risk_policy.loaded", source=str(path), policies=book.version_key())
