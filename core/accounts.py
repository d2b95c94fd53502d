"""Accounts: each belongs to exactly one execution mode, one organisation and one owning user."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from core.types import ExecutionMode, Frozen, NonNegative

IDENT = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class Owner(Frozen):
    """Who a record belongs to; stamped on every record and every row."""

    org_id: str = Field(pattern=IDENT)
    user_id: str = Field(pattern=IDENT)


class Account(Frozen):
    account_id: str = Field(pattern=IDENT)
    owner: Owner
    mode: ExecutionMode
    base_currency: str = Field(default="USD", min_length=3, max_length=8)
    starting_cash: NonNegative = Decimal(0)
