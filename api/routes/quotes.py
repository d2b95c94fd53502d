"""GET /v1/quotes/latest: the latest top of book per instrument."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import read_model
from api.deps import RedisDep, SettingsDep
from api.schemas.common import Page
from api.schemas.quotes import QuotePublic

router = APIRouter(prefix="/v1/quotes", tags=["quotes"])


@router.get("/latest")
async def latest_quotes(
    redis: RedisDep, settings: SettingsDep,
    instrument_id: Annotated[str | None, Query(min_length=1, description="Only this instrument.")] = None,
) -> Page[QuotePublic]:
    quotes = await read_model.latest_quotes(redis, settings, instrument_id)
    return Page(data=quotes, count=len(quotes))
