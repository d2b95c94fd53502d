"""Faust codecs for pydantic models, so Faust tables hold validated objects in memory and JSON in changelogs."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs
from pydantic import BaseModel


class PydanticCodec(codecs.Codec):
    def __init__(self, model: type[BaseModel]) -> None:
        super().__init__()
        self.model = model

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, self.model):
            raise TypeError(f"expected {self.model.__name__}, got {type(obj).__name__}")
        return obj.model_dump_json().encode()

    def _loads(self, s: bytes) -> Any:
        return self.model.model_validate_json(s)


def model_codec(model: type[BaseModel]) -> str:
    """Register (once) and return the codec name for `model`."""
    name = f"pydantic:{model.__module__}.{model.__qualname__}"
    if name not in codecs.codecs:
        codecs.register(name, PydanticCodec(model))
    return name
