"""The audit trail: config, policy, kill-switch, live_enabled, order and fill events, hash-chained."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api import read_model
from api.deps import PoolDep
from api.schemas.audit import AuditEntries

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("")
async def list_audit(pool: PoolDep, subject: Annotated[str | None, Query(min_length=1)] = None,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> AuditEntries:
    """Newest first; `subject` is an order id, a kill-switch key (`venue:coinbase`), a policy source..."""
    return AuditEntries(data=await read_model.list_audit(pool, subject=subject, limit=limit))
