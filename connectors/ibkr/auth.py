"""IBKR authentication: no per-request signing. Through the local Client Portal gateway the brokerage session
lives in the gateway (a person logs in there) and requests carry nothing; through OAuth they carry a bearer
token. Either way the session must be checked (POST /iserver/auth/status) and kept alive (POST /tickle about
every minute)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from pydantic import SecretStr

from connectors.errors import AuthenticationError, ConnectorError
from connectors.http import Signer
from connectors.ibkr.schemas import AuthStatus, TickleReply
from core.instruments import Venue
from tradestream.logging import get_logger

log = get_logger(__name__)


def bearer_signer(token: SecretStr) -> Signer:
    def sign(method: str, path: str, body: bytes) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    return sign


class SessionKeeper:
    """Knows whether the brokerage session can serve requests, and keeps it alive with a background tickle."""

    def __init__(self, auth_status: Callable[[], Awaitable[AuthStatus]], tickle: Callable[[], Awaitable[TickleReply]],
                 interval_s: float) -> None:
        self._auth_status = auth_status
        self._tickle = tickle
        self._interval_s = interval_s
        self._status: AuthStatus | None = None
        self._session: SecretStr | None = None
        self._task: asyncio.Task[None] | None = None
        self.generation = 0
        """Counts the times the session became usable: what IBKR wants called first is called again after each."""

    def observe(self, status: AuthStatus) -> None:
        if status.usable and not (self._status is not None and self._status.usable):
            self.generation += 1
        self._status = status

    def lost(self) -> None:
        """A request was refused as unauthenticated: check again before the next one."""
        self._status = None

    async def require(self) -> None:
        """Raise AuthenticationError unless the session is authenticated, connected and not competing."""
        if self._status is None or not self._status.usable:
            self.observe(await self._auth_status())
        status = self._status
        assert status is not None
        if not status.usable:
            raise AuthenticationError(Venue.IBKR, "brokerage session not usable: authenticated="
                                      f"{status.authenticated} competing={status.competing} "
                                      f"connected={status.connected}")

    async def session_id(self) -> SecretStr:
        """The session id the websocket logs in with (from /tickle)."""
        if self._session is None:
            await self.tickle_once()
        assert self._session is not None
        return self._session

    async def tickle_once(self) -> None:
        reply = await self._tickle()
        self._session = reply.session
        self.observe(reply.iserver.auth_status)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep_alive(), name="ibkr-tickle")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.tickle_once()
            except AuthenticationError:
                self.lost()
                log.warning("ibkr.tickle_unauthenticated")
            except ConnectorError as exc:
                log.warning("ibkr.tickle_failed", error=type(exc).__name__, status=exc.status)
