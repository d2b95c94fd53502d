"""Our records read their fields through the generic attribute lookup, and every read returns or raises as before."""

from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, PrivateAttr

import api.app  # noqa: F401  (imports every module that defines records)
import backtest.engine  # noqa: F401
from core.attribute_lookup import generic_lookup, lookup_slot, use_generic_lookup
from core.orders import Order
from core.types import Frozen


def record_classes(base: type[BaseModel]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for sub in base.__subclasses__():
        found += [sub, *record_classes(sub)]
    return found


class Priced(Frozen):
    price: Decimal

    @property
    def doubled(self) -> Decimal:
        return self.price * 2

    @property
    def broken(self) -> Decimal:
        raise AttributeError("computed from a missing value")


class WithPrivate(Frozen):
    price: Decimal
    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)


class WithExtra(Frozen):
    model_config = ConfigDict(extra="allow")
    price: Decimal


class WithOwnGetattr(Frozen):
    price: Decimal

    def __getattr__(self, name: str) -> Any:
        if name == "alias":
            return self.price
        raise AttributeError(name)


def test_the_slot_is_found_on_this_interpreter() -> None:
    # CPython 3.11 is what we run on: the slot must be found here, else the records quietly keep the slow hook.
    assert generic_lookup() is not None
    assert lookup_slot(object) == generic_lookup()
    assert lookup_slot(BaseModel) != generic_lookup()  # pydantic's __getattr__ hook


def test_every_record_class_uses_the_generic_lookup() -> None:
    records = record_classes(Frozen)
    assert Order in records and len(records) > 30
    hooked = [cls.__qualname__ for cls in records
              if lookup_slot(cls) != generic_lookup() and cls not in (WithPrivate, WithExtra, WithOwnGetattr)]
    assert hooked == []


def test_reads_return_and_raise_as_with_the_hook() -> None:
    record = Priced(price=Decimal("1.5"))
    assert record.price == Decimal("1.5")
    assert record.doubled == Decimal("3.0")
    assert record.model_dump() == {"price": Decimal("1.5")}
    with pytest.raises(AttributeError, match="'Priced' object has no attribute 'missing'"):
        _ = record.missing  # type: ignore[attr-defined]
    assert not hasattr(record, "missing")
    with pytest.raises(AttributeError, match="computed from a missing value"):
        _ = record.broken
    with pytest.raises(Exception, match="frozen"):
        record.price = Decimal(2)  # type: ignore[misc]


def test_classes_that_need_the_hook_keep_it() -> None:
    for cls in (WithPrivate, WithExtra, WithOwnGetattr):
        assert lookup_slot(cls) != generic_lookup(), cls.__name__
        assert not use_generic_lookup(cls)
    assert WithPrivate(price=Decimal(1))._cache == {}
    assert WithExtra(price=Decimal(1), note="kept").note == "kept"  # type: ignore[attr-defined]
    assert WithOwnGetattr(price=Decimal(1)).alias == Decimal(1)


def test_a_class_is_switched_once() -> None:
    assert not use_generic_lookup(Priced)  # its slot no longer holds pydantic's hook
    assert lookup_slot(Priced) == generic_lookup()
