"""Orders: list and read from the read model, and submit an intent with an idempotency key."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api import read_model
from api.deps import (
    ActorDep,
    ClockDep,
    ControlDep,
    IdempotencyKeyDep,
    IntakeDep,
    PoolDep,
    SettingsDep,
    account_or_404,
)
from api.errors import ApiError, ErrorCode
from api.intake import Outcome, build_intent
from api.schemas.common import ErrorBody, Page, ValidationErrorBody
from api.schemas.control import CancelAccepted
from api.schemas.orders import OrderAccepted, OrderAmend, OrderCreate, OrderPublic
from core.commands import CANCELLABLE, CancelOrder
from core.orders import OrderStatus
from tradestream.logging import traced

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

router = APIRouter(prefix="/v1/orders", tags=["orders"])

_STATUS: dict[Outcome, int] = {Outcome.CREATED: 201, Outcome.ACCEPTED: 202, Outcome.EXISTING: 200,
                               Outcome.PENDING: 202}

_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": OrderPublic, "description": "A repeat of an earlier submission: the existing order."},
    201: {"model": OrderPublic, "description": "The intent was produced and the order reached the read model."},
    202: {"model": OrderAccepted, "description": "The intent is in the pipeline; poll the Location."},
    400: {"model": ErrorBody, "description": "IDEMPOTENCY_KEY_REQUIRED or IDEMPOTENCY_KEY_INVALID."},
    404: {"model": ErrorBody, "description": "UNKNOWN_ACCOUNT."},
    422: {"model": ValidationErrorBody, "description": "VALIDATION_ERROR or IDEMPOTENCY_CONFLICT."},
    503: {"model": ErrorBody, "description": "DEPENDENCY_UNAVAILABLE: retry with the same key."},
}


@router.get("")
async def list_orders(
    pool: PoolDep,
    account_id: Annotated[str | None, Query(min_length=1)] = None,
    status: OrderStatus | None = None,
    instrument_id: Annotated[str | None, Query(min_length=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[OrderPublic]:
    """Newest first."""
    orders = await read_model.list_orders(pool, account_id=account_id, status=status, instrument_id=instrument_id,
                                          limit=limit)
    return Page(data=orders, count=len(orders))


@router.get("/{order_id}", responses={404: {"model": ErrorBody, "description": "ORDER_NOT_FOUND."}})
async def get_order(order_id: str, pool: PoolDep) -> OrderPublic:
    order = await read_model.get_order(pool, order_id)
    if order is None:
        raise ApiError(404, ErrorCode.ORDER_NOT_FOUND,
                       f"order {order_id!r} is not in the read model (an order submitted a moment ago may still "
                       f"be on its way through the pipeline)")
    return order


@router.post("", status_code=201, responses=_SUBMIT_RESPONSES)
async def submit_order(body: OrderCreate, key: IdempotencyKeyDep, settings: SettingsDep, clock: ClockDep,
                       intake: IntakeDep, response: Response) -> OrderPublic | OrderAccepted:
    """Submit an order intent. It passes the same risk gate as a strategy's; the API approves nothing.

    The `Idempotency-Key` header makes retries safe: the same key and body give the same order and never a
    second intent; the same key with another body is refused with IDEMPOTENCY_CONFLICT.
    """
    return await _submit(body, key, settings, clock, intake, response)


async def _submit(body: OrderCreate, key: str, settings: SettingsDep, clock: ClockDep, intake: IntakeDep,
                  response: Response) -> OrderPublic | OrderAccepted:
    account = account_or_404(settings, body.account_id)
    try:
        intent = build_intent(body, account, key, clock)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
    with traced(intent.trace_id, order_id=intent.order_id, account_id=intent.account_id):
        submission = await intake.submit(intent)
    location = f"{router.prefix}/{submission.order_id}"
    response.status_code = _STATUS[submission.outcome]
    response.headers["Location"] = location
    if submission.order is not None:
        return submission.order
    return OrderAccepted(order_id=submission.order_id, trace_id=submission.produced_trace_id, location=location)


_CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "ORDER_NOT_FOUND."},
    409: {"model": ErrorBody, "description": "ORDER_NOT_CANCELLABLE: the order is already done."}}


async def _request_cancel(order_id: str, pool: PoolDep, control: ControlDep, actor: str, clock: ClockDep,
                          reason: str) -> OrderPublic:
    order = await read_model.get_order(pool, order_id)
    if order is None:
        raise ApiError(404, ErrorCode.ORDER_NOT_FOUND, f"order {order_id!r} is not in the read model")
    if OrderStatus(order.status) not in CANCELLABLE:
        raise ApiError(409, ErrorCode.ORDER_NOT_CANCELLABLE, f"order {order_id!r} is {order.status}")
    command = CancelOrder(account_id=order.account_id, order_id=order_id, actor=actor, reason=reason,
                          at=clock.now())
    with traced(order.trace_id, order_id=order_id, account_id=order.account_id):
        await asyncio.to_thread(control.cancel_order, command)
    return order


@router.post("/{order_id}/cancel", status_code=202, responses=_CANCEL_RESPONSES)
async def cancel_order(order_id: str, pool: PoolDep, control: ControlDep, actor: ActorDep,
                       clock: ClockDep) -> CancelAccepted:
    """Ask the OMS to cancel a working order; the outcome appears on the order (status and reason)."""
    await _request_cancel(order_id, pool, control, actor, clock, "api request")
    return CancelAccepted(order_id=order_id)


@router.post("/{order_id}/amend", status_code=201, responses={**_SUBMIT_RESPONSES, **_CANCEL_RESPONSES})
async def amend_order(order_id: str, body: OrderAmend, key: IdempotencyKeyDep, pool: PoolDep, control: ControlDep,
                      actor: ActorDep, settings: SettingsDep, clock: ClockDep, intake: IntakeDep,
                      response: Response) -> OrderPublic | OrderAccepted:
    """Amend by cancel-replace: the working order is cancelled first, then the replacement (the original with
    the new quantity and/or limit price) is submitted through the risk gate under the given Idempotency-Key.
    Cancelling first means two versions of the order are never working at once; if the gate denies the
    replacement, the original stays cancelled and the replacement carries the reason."""
    original = await _request_cancel(order_id, pool, control, actor, clock, "amended")
    limit_price = body.limit_price if body.limit_price is not None else original.limit_price
    replacement = OrderCreate.model_validate({  # request models take decimals as strings, as on the wire
        "account_id": original.account_id, "instrument_id": original.instrument_id, "side": original.side,
        "order_type": original.order_type,
        "quantity": str(body.quantity or original.quantity - original.filled_quantity),
        "limit_price": None if limit_price is None else str(limit_price), "time_in_force": original.time_in_force,
        "strategy_id": original.strategy_id, "mode": original.requested_mode})
    return await _submit(replacement, key, settings, clock, intake, response)
