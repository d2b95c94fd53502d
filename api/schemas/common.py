"""Types shared by the resource schemas."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainValidator, WithJsonSchema

DECIMAL_PATTERN = r"^[0-9]{1,20}(\.[0-9]{1,18})?$"
_DECIMAL = re.compile(DECIMAL_PATTERN)


def _decimal_string(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(f"must be a decimal string such as \"0.5\", not a JSON {type(value).__name__}")
    if not _DECIMAL.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain decimal such as \"0.5\" (digits, an optional point, digits)")
    return Decimal(value)


DecimalString = Annotated[
    Decimal,
    PlainValidator(_decimal_string),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN, "examples": ["0.5"]}, mode="validation"),
]
"""Money or a quantity on input: only a string of digits is accepted, so no float ever loses precision."""


class Public(BaseModel):
    """Base of response schemas. Decimal fields are serialized as strings."""

    model_config = ConfigDict(frozen=True, from_attributes=True, use_attribute_docstrings=True)


class RequestModel(BaseModel):
    """Base of request schemas: unknown fields are refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


class ErrorBody(BaseModel):
    """Every error: a code to group by and a human-readable reason."""

    error: str
    detail: str


class FieldError(BaseModel):
    field: str
    reason: str


class ValidationErrorBody(ErrorBody):
    fields: list[FieldError]


T = TypeVar("T", bound=BaseModel)


class Page(BaseModel, Generic[T]):
    data: list[T]
    count: int
