from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest_asyncio
from fastapi import FastAPI

from api.errors import ApiError, ErrorCode, exception_handlers
from api.schemas.orders import OrderCreate
from core.reasons import ReasonCode


def _app() -> FastAPI:
    app = FastAPI(exception_handlers=exception_handlers())

    @app.post("/echo")
    async def echo(body: OrderCreate) -> OrderCreate:
        return body

    @app.get("/typed")
    async def typed() -> None:
        raise ApiError(409, ErrorCode.IDEMPOTENCY_CONFLICT, "key k was used for another body")

    @app.get("/db-down")
    async def db_down() -> None:
        raise psycopg.OperationalError("connection refused")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    return app


@pytest_asyncio.fixture(loop_scope="function")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as running:
        yield running


def test_codes_shared_with_the_core_have_the_cores_values() -> None:
    assert ErrorCode.IDEMPOTENCY_CONFLICT.value == ReasonCode.IDEMPOTENCY_CONFLICT.value
    assert ErrorCode.UNKNOWN_ACCOUNT.value == ReasonCode.UNKNOWN_ACCOUNT.value


async def test_validation_error_then_422_with_a_reason_per_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/echo", json={"account_id": "a", "instrument_id": "i", "side": "up",
                                          "order_type": "market", "quantity": 0.5})

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert {f["field"] for f in body["fields"]} == {"body.side", "body.quantity"}
    quantity = next(f for f in body["fields"] if f["field"] == "body.quantity")
    assert quantity["reason"] == 'must be a decimal string such as "0.5", not a JSON float'
    assert "body.quantity: must be a decimal string" in body["detail"]


async def test_api_error_then_its_status_code_and_detail(client: httpx.AsyncClient) -> None:
    response = await client.get("/typed")

    assert response.status_code == 409
    assert response.json() == {"error": "IDEMPOTENCY_CONFLICT", "detail": "key k was used for another body"}


async def test_dependency_error_then_503(client: httpx.AsyncClient) -> None:
    response = await client.get("/db-down")

    assert response.status_code == 503
    assert response.json() == {"error": "DEPENDENCY_UNAVAILABLE", "detail": "OperationalError: connection refused"}


async def test_unexpected_error_then_json_500_without_internals(client: httpx.AsyncClient) -> None:
    response = await client.get("/bug")

    assert response.status_code == 500
    assert response.json() == {"error": "INTERNAL_ERROR", "detail": "internal error; see the server log"}


async def test_http_errors_then_json_with_the_status_name(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    wrong_method = await client.delete("/typed")

    assert missing.json() == {"error": "NOT_FOUND", "detail": "Not Found"}
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "METHOD_NOT_ALLOWED")
