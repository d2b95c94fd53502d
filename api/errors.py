"""Typed API errors and the handlers that render every error as `{"error": CODE, "detail": "..."}`.

Bad input is a 4xx with a code, never a 500; a dependency that does not answer is a 503.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
from http import HTTPStatus
from typing import Any

import psycopg
import redis.exceptions
from aiokafka.errors import KafkaError
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.reasons import ReasonCode
from streams.control import ControlWriteError
from tradestream.logging import get_logger

log = get_logger(__name__)


class ErrorCode(StrEnum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    IDEMPOTENCY_KEY_REQUIRED = "IDEMPOTENCY_KEY_REQUIRED"
    IDEMPOTENCY_KEY_INVALID = "IDEMPOTENCY_KEY_INVALID"
    IDEMPOTENCY_CONFLICT = ReasonCode.IDEMPOTENCY_CONFLICT.value
    UNKNOWN_ACCOUNT = ReasonCode.UNKNOWN_ACCOUNT.value
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    ORDER_NOT_CANCELLABLE = "ORDER_NOT_CANCELLABLE"
    RECONCILIATION_NOT_FOUND = "RECONCILIATION_NOT_FOUND"
    INSTRUMENT_NOT_FOUND = "INSTRUMENT_NOT_FOUND"
    DEPENDENCY_UNAVAILABLE = "DEPENDENCY_UNAVAILABLE"
    INTERNAL_ERROR = "INTERNAL_ERROR"


DEPENDENCY_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,  # includes the pool's PoolTimeout and PoolClosed
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    KafkaError,
    ControlWriteError,
)
"""Failures of Postgres, Redis or Kafka (not of our own code): the request may succeed later."""


class ApiError(Exception):
    def __init__(self, status: int, code: ErrorCode, detail: str) -> None:
        super().__init__(f"{code.value}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


def error_response(status: int, code: str, detail: str, headers: Mapping[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status, headers=headers)


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(request)"


def _reason(error: dict[str, Any]) -> str:
    # A ValueError raised by one of our validators carries the reason itself; pydantic's own errors a message.
    cause = (error.get("ctx") or {}).get("error")
    return str(cause) if isinstance(cause, Exception) else str(error["msg"])


async def _on_api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.detail)


async def _on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [{"field": _field(tuple(e["loc"])), "reason": _reason(e)} for e in exc.errors()]
    detail = "; ".join(f"{f['field']}: {f['reason']}" for f in fields)
    return error_response(422, ErrorCode.VALIDATION_ERROR, detail, fields=fields)


async def _on_http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    return error_response(exc.status_code, HTTPStatus(exc.status_code).name, str(exc.detail), headers=exc.headers)


async def _on_dependency_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable", path=request.url.path, error=f"{type(exc).__name__}: {exc}")
    return error_response(503, ErrorCode.DEPENDENCY_UNAVAILABLE, f"{type(exc).__name__}: {exc}")


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return error_response(500, ErrorCode.INTERNAL_ERROR, "internal error; see the server log")


ExceptionHandler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


def exception_handlers() -> dict[int | type[Exception], ExceptionHandler]:
    """The handlers for `FastAPI(exception_handlers=...)`; the most specific class wins."""
    handlers: dict[int | type[Exception], ExceptionHandler] = {
        ApiError: _on_api_error,
        RequestValidationError: _on_validation_error,
        StarletteHTTPException: _on_http_error,
        Exception: _on_unexpected_error,
    }
    handlers.update(dict.fromkeys(DEPENDENCY_ERRORS, _on_dependency_error))
    return handlers
