"""Reconciliation reports: what each live and shadow account's ledger and its venue disagree on, read-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api import read_model
from api.deps import PoolDep, SettingsDep, account_or_404
from api.errors import ApiError, ErrorCode
from api.schemas.common import ErrorBody, Page
from api.schemas.reconciliation import ReconciliationReportPublic
from core.accounts import IDENT
from core.reconcile import ReconciliationStatus

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

router = APIRouter(prefix="/v1/reconciliation", tags=["reconciliation"])


@router.get("")
async def list_reconciliations(
    pool: PoolDep,
    account_id: Annotated[str | None, Query(pattern=IDENT, description="Only this account.")] = None,
    status: ReconciliationStatus | None = None,
    only_differences: Annotated[bool, Query(description="Leave out matched reports; unknown ones stay.")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[ReconciliationReportPublic]:
    """Newest first. A report is `unknown` when a venue read failed: it never says the account is flat."""
    reports = await read_model.list_reconciliations(pool, account_id=account_id, status=status,
                                                    only_differences=only_differences, limit=limit)
    return Page(data=reports, count=len(reports))


@router.get("/{account_id}/latest", responses={404: {"model": ErrorBody,
                                                      "description": "UNKNOWN_ACCOUNT or RECONCILIATION_NOT_FOUND."}})
async def latest_reconciliation(pool: PoolDep, settings: SettingsDep,
                                account_id: Annotated[str, Path(pattern=IDENT)]) -> Page[ReconciliationReportPublic]:
    """The account's newest report from each venue it trades on."""
    account_or_404(settings, account_id)
    reports = await read_model.latest_reconciliations(pool, account_id)
    if not reports:
        raise ApiError(404, ErrorCode.RECONCILIATION_NOT_FOUND,
                       f"account {account_id!r} has no reconciliation report yet (`tradestream reconcile` makes one)")
    return Page(data=reports, count=len(reports))
