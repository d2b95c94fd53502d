"""Structured JSON logs; the trace id of the order being handled is bound to every line."""

from __future__ import annotations

import logging
import logging.config
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

SECRET_KEYS = frozenset({"password", "secret", "token", "signature", "authorization", "api_key", "private_key",
                         "jwt", "dsn"})


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in event:
        if key.lower() in SECRET_KEYS:
            event[key] = "***"
    return event


def _processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]


def json_formatter() -> logging.Formatter:
    """Renders stdlib log records (Faust, aiokafka, uvicorn) as the same JSON lines as our own."""
    processors = _processors()
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *processors[1:]],
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, structlog.stdlib.add_logger_name],
    )


def stdlib_logging_config(level: str) -> dict[str, Any]:
    """A logging.config.dictConfig for libraries that configure logging themselves (Faust's worker)."""
    library_level = "WARNING" if level == "INFO" else level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": library_level, "handlers": ["stderr"]},
        # websockets logs handshake headers and frames at DEBUG: signatures, JWTs, session ids. Never below INFO.
        "loggers": {"websockets": {"level": "INFO" if library_level == "DEBUG" else library_level}},
    }


def configure_logging(level: str = "INFO", service: str = "tradestream") -> None:
    structlog.configure(
        processors=_processors(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    logging.config.dictConfig(stdlib_logging_config(level))


@contextmanager
def traced(trace_id: str | None, **fields: Any) -> Iterator[None]:
    """Bind the trace id (and other fields) to every log line emitted inside the block."""
    with structlog.contextvars.bound_contextvars(trace_id=trace_id, **fields):
        yield


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
