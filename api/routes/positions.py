"""GET /v1/positions: positions as the portfolio sink wrote them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import read_model
from api.deps import PoolDep
from api.schemas.common import Page
from api.schemas.positions import PositionPublic

router = APIRouter(prefix="/v1/positions", tags=["positions"])


@router.get("")
async def list_positions(
    pool: PoolDep, account_id: Annotated[str | None, Query(min_length=1, description="Only this account.")] = None,
) -> Page[PositionPublic]:
    positions = await read_model.list_positions(pool, account_id=account_id)
    return Page(data=positions, count=len(positions))
