"""GET /v1/instruments: the instrument registry as its sink wrote it (canonical ids, venue symbols, tradeable)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import read_model
from api.deps import PoolDep
from api.errors import ApiError, ErrorCode
from api.schemas.common import ErrorBody, Page
from api.schemas.instruments import InstrumentPublic
from core.instruments import AssetClass, Venue

DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000

router = APIRouter(prefix="/v1/instruments", tags=["instruments"])

InstrumentId = Annotated[str, Path(min_length=1, max_length=128, description="Canonical id, e.g. equity:AAPL.")]


@router.get("")
async def list_instruments(
    pool: PoolDep,
    asset_class: AssetClass | None = None,
    venue: Venue | None = None,
    tradeable: bool | None = None,
    after: Annotated[str | None, Query(min_length=1, max_length=128,
                                       description="The last instrument id of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[InstrumentPublic]:
    """By instrument id."""
    instruments = await read_model.list_instruments(pool, asset_class=asset_class, venue=venue, tradeable=tradeable,
                                                    after=after, limit=limit)
    return Page(data=instruments, count=len(instruments))


@router.get("/{instrument_id}", responses={404: {"model": ErrorBody, "description": "INSTRUMENT_NOT_FOUND."}})
async def get_instrument(instrument_id: InstrumentId, pool: PoolDep) -> InstrumentPublic:
    instrument = await read_model.get_instrument(pool, instrument_id)
    if instrument is None:
        raise ApiError(404, ErrorCode.INSTRUMENT_NOT_FOUND,
                       f"instrument {instrument_id!r} is not in the instrument registry (an order for it is refused "
                       f"with UNKNOWN_INSTRUMENT)")
    return instrument
