"""Every router of the API, collected in one place."""

from fastapi import APIRouter

from api.routes import audit, control, health, instruments, orders, positions, quotes, reconciliation

api_router = APIRouter()
for _router in (health.router, quotes.router, instruments.router, orders.router, positions.router, control.router,
                audit.router, reconciliation.router):
    api_router.include_router(_router)
