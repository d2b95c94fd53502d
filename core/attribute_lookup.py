"""The generic attribute lookup for our records: on CPython, a field read on a pydantic model pays for a hook that
records without private attributes or extra fields never use.

pydantic's `BaseModel` defines `__getattr__` (it serves private attributes and extra fields). CPython gives every
class with a `__getattr__` the dispatcher `slot_tp_getattr_hook` as its attribute lookup: each read looks both
`__getattr__` and `__getattribute__` up on the type before the generic lookup, and Python 3.11 does not specialise
reads through it. For a model with no private attributes, no extra fields and no lookup of its own, pydantic's
`__getattr__` can only raise the AttributeError the generic lookup raises itself, so `use_generic_lookup` gives
such a class `object`'s lookup, `PyObject_GenericGetAttr`. The order path of a backtest reads about 200 record
fields per order: this made the 1M-bar bench 6-9% faster (and every agent's record handling with it).

The slot is found, not assumed: it is the one word of a type object that holds `PyObject_GenericGetAttr` for
`object` and for a plain class and something else for a class with a `__getattr__`. If no such single word exists
(another interpreter, another layout), or the class's slot holds anything but pydantic's hook, nothing changes:
the hook is slower, never wrong.
"""

from __future__ import annotations

import ctypes
from typing import Any

from pydantic import BaseModel

_SCANNED_WORDS = 32
"""Type-object words searched for the slot: `tp_getattro` is the 19th of CPython's `PyTypeObject`, well inside."""
_WORD = ctypes.sizeof(ctypes.c_void_p)
_PYDANTIC_GETATTR = BaseModel.__dict__.get("__getattr__")


class _Plain:
    pass


class _Hooked:
    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def _word(cls: type, index: int) -> int | None:
    return ctypes.c_void_p.from_address(id(cls) + index * _WORD).value


def _find_slot() -> tuple[int, int] | None:
    """(offset of the attribute-lookup slot in a type object, address of the generic lookup), or None."""
    try:
        generic = ctypes.cast(ctypes.pythonapi.PyObject_GenericGetAttr, ctypes.c_void_p).value
    except (AttributeError, ValueError):  # not CPython's C API
        return None
    if generic is None:
        return None
    found = [index for index in range(_SCANNED_WORDS)
             if _word(object, index) == generic == _word(_Plain, index) and _word(_Hooked, index) != generic]
    return (found[0] * _WORD, generic) if len(found) == 1 else None


_SLOT = _find_slot()
_HOOK = None if _SLOT is None else ctypes.c_void_p.from_address(id(BaseModel) + _SLOT[0]).value
"""What pydantic's `__getattr__` gives a model class's slot: the value replaced, and only that value."""


def lookup_slot(cls: type) -> int | None:
    """The address in `cls`'s attribute-lookup slot (None where the slot is unknown)."""
    return None if _SLOT is None else ctypes.c_void_p.from_address(id(cls) + _SLOT[0]).value


def generic_lookup() -> int | None:
    """The address of `PyObject_GenericGetAttr` (None where the slot is unknown)."""
    return None if _SLOT is None else _SLOT[1]


def use_generic_lookup(cls: type[BaseModel]) -> bool:
    """Give `cls` the generic attribute lookup when that cannot change what any read returns or raises; return
    whether it did. A subclass is made with pydantic's hook again, so each class asks for itself."""
    if (_SLOT is None or _HOOK is None or cls.__private_attributes__ or cls.model_config.get("extra") == "allow"
            or getattr(cls, "__getattr__", None) is not _PYDANTIC_GETATTR
            or cls.__getattribute__ is not object.__getattribute__):
        return False
    slot = ctypes.c_void_p.from_address(id(cls) + _SLOT[0])
    if slot.value != _HOOK:
        return False
    slot.value = _SLOT[1]
    ctypes.pythonapi.PyType_Modified(ctypes.py_object(cls))  # drop what the interpreter cached about the type
    return True
