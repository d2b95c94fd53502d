"""Records built from values the core has already validated, without validating them again.

Validation costs microseconds per record (the Decimal and datetime validators are Python calls) and pydantic's
`model_construct` is slower still (it runs in Python: 15 us for an `Order` against 12 us validated, 1 us here),
while every order of a backtest makes a handful of records. `builder` and `evolve` fill the instance directly,
in field order, so a record serialises to the same bytes as a validated one (seals and JSON depend on it).

Use them only where every value comes from validated records or from the core's arithmetic on them; anything
entering from outside (strategies, the API, venues, files) is validated at that boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_set = object.__setattr__
_new = object.__new__
# The three bookkeeping slots every pydantic model has, set through their descriptors (cheaper than by name).
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class _Layout:
    """A model's fields in order with their defaults, and a builder taking them as keywords; made once per class."""

    def __init__(self, cls: type[BaseModel]) -> None:
        if not cls.model_config.get("frozen"):
            raise TypeError(f"{cls.__name__}: trusted construction is for frozen records only")
        # Every field counts as set, as after validation with all fields given. One set is shared by the class's
        # records: pydantic only mutates it on non-frozen models, and copies it before a `model_copy` update.
        self.fields_set = set(cls.model_fields)
        self.build: Callable[..., Any] = _builder(cls, self.fields_set)


def _builder(cls: type[BaseModel], fields_set: set[str]) -> Callable[..., Any]:
    """`def build(*, <field>[=<default>], ...)` returning the record with its `__dict__` in field order; Python's
    argument binding refuses unknown and missing fields. Generated once per class, as dataclasses do: a dict
    display of the fields is the cheapest way to fill a record in order. Field names are identifiers that never
    start with an underscore (pydantic forbids it), so they cannot collide with the builder's own names."""
    namespace: dict[str, Any] = {"_new": _new, "_set": _set, "_cls": cls, "_fields_set": fields_set,
                                 "_set_fields_set": _set_fields_set, "_set_extra": _set_extra,
                                 "_set_private": _set_private, "_MISSING": _MISSING}
    parameters: list[str] = []
    defaults: list[str] = []
    for name, info in cls.model_fields.items():
        if info.is_required():
            parameters.append(name)
        elif info.default_factory is not None:
            namespace[f"_factory_{name}"] = info.default_factory
            parameters.append(f"{name}=_MISSING")
            defaults.append(f"    if {name} is _MISSING:\n        {name} = _factory_{name}()\n")  # takes no data
        else:
            namespace[f"_default_{name}"] = info.default
            parameters.append(f"{name}=_default_{name}")
    values = ", ".join(f"{name!r}: {name}" for name in cls.model_fields)
    source = (f"def build(*, {', '.join(parameters)}):\n"
              f"{''.join(defaults)}"
              f"    record = _new(_cls)\n"
              f"    _set(record, '__dict__', {{{values}}})\n"
              f"    _set_fields_set(record, _fields_set)\n"
              f"    _set_extra(record, None)\n"
              f"    _set_private(record, None)\n"
              f"    return record\n")
    exec(compile(source, f"<trusted {cls.__qualname__}>", "exec"), namespace)  # source made above from field names
    build: Callable[..., Any] = namespace["build"]
    return build


class _Missing:
    """Marks a field with a default factory that was not given."""


_MISSING = _Missing()
_LAYOUTS: dict[type[BaseModel], _Layout] = {}


def _layout(cls: type[BaseModel]) -> _Layout:
    layout = _LAYOUTS[cls] = _Layout(cls)
    return layout


def builder(cls: type[M]) -> Callable[..., M]:
    """`cls(**fields)` without validation, for hot paths: fields as keywords; omitted fields take their defaults; an
    unknown or missing field raises Python's own TypeError. Bind it once (at import): a generic entry point taking
    `cls` would pack and unpack the keywords on every call (a third of the cost for an `Order`)."""
    return (_LAYOUTS.get(cls) or _layout(cls)).build


def evolve(record: M, **changes: Any) -> M:
    """`record.model_copy(update=changes)` without its bookkeeping; unknown fields raise."""
    return evolve_with(record, changes)


def evolve_with(record: M, changes: Mapping[str, Any]) -> M:
    """`evolve` with the changes as a mapping: one dict fewer for a hot path that assembles them anyway."""
    current = record.__dict__  # read once: every attribute read on a pydantic model goes through its __getattr__ hook
    values = current.copy()
    values.update(changes)
    if len(values) != len(current):
        raise TypeError(f"{type(record).__name__}: unknown fields {sorted(changes.keys() - current.keys())}")
    cls = type(record)
    copy: M = _new(cls)
    _set(copy, "__dict__", values)
    _set_fields_set(copy, (_LAYOUTS.get(cls) or _layout(cls)).fields_set)
    _set_extra(copy, None)
    _set_private(copy, None)
    return copy
