"""Records built from values the core has already validated, without validating them again.

Validation costs microseconds per record (the Decimal and datetime validators are Python calls) and pydantic's
`model_construct` is slower still (it runs in Python: 15 us for an `Order` against 12 us validated, 1 us here),
while every order of a backtest makes a handful of records. `trusted` and `evolve` fill the instance directly,
in field order, so a record serialises to the same bytes as a validated one (seals and JSON depend on it).

Use them only where every value comes from validated records or from the core's arithmetic on them; anything
entering from outside (strategies, the API, venues, files) is validated at that boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__


class _Layout:
    """A model's fields in order with their defaults (required fields hold a placeholder); made once per class."""

    def __init__(self, cls: type[BaseModel]) -> None:
        self.template: dict[str, Any] = {}
        self.required: set[str] = set()
        self.factories: list[tuple[str, Callable[[], Any]]] = []
        for name, info in cls.model_fields.items():
            self.template[name] = None if info.is_required() or info.default_factory else info.default
            if info.is_required():
                self.required.add(name)
            elif info.default_factory is not None:
                self.factories.append((name, info.default_factory))  # type: ignore[arg-type]  # takes no data
        # Every field counts as set, as after validation with all fields given. One set is shared by the class's
        # records: pydantic only mutates it on non-frozen models, and copies it before a `model_copy` update.
        if not cls.model_config.get("frozen"):
            raise TypeError(f"{cls.__name__}: trusted construction is for frozen records only")
        self.fields_set = set(self.template)


_LAYOUTS: dict[type[BaseModel], _Layout] = {}


def _layout(cls: type[BaseModel]) -> _Layout:
    layout = _LAYOUTS[cls] = _Layout(cls)
    return layout


def trusted(cls: type[M], **fields: Any) -> M:
    """`cls(**fields)` without validation: omitted fields take their defaults; unknown or missing fields raise."""
    layout = _LAYOUTS.get(cls) or _layout(cls)
    values = layout.template.copy()
    values.update(fields)  # updating keeps each key where the template put it: field order
    if len(values) != len(layout.template) or not layout.required <= fields.keys():
        raise TypeError(f"{cls.__name__}: unknown fields {sorted(fields.keys() - layout.template.keys())}, "
                        f"missing fields {sorted(layout.required - fields.keys())}")
    for name, factory in layout.factories:
        if name not in fields:
            values[name] = factory()
    record = cls.__new__(cls)
    _set(record, "__dict__", values)
    _set(record, "__pydantic_fields_set__", layout.fields_set)
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def evolve(record: M, **changes: Any) -> M:
    """`record.model_copy(update=changes)` without its bookkeeping; unknown fields raise."""
    values = record.__dict__.copy()
    values.update(changes)
    if len(values) != len(record.__dict__):
        raise TypeError(f"{type(record).__name__}: unknown fields {sorted(changes.keys() - record.__dict__.keys())}")
    cls = record.__class__
    copy = cls.__new__(cls)
    _set(copy, "__dict__", values)
    _set(copy, "__pydantic_fields_set__", (_LAYOUTS.get(cls) or _layout(cls)).fields_set)
    _set(copy, "__pydantic_extra__", None)
    _set(copy, "__pydantic_private__", None)
    return copy
