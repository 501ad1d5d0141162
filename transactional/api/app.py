"""The transactional API application: the shared error, correlation, metrics and tracing layer
(`transactional.api.common`) and the routers."""

from __future__ import annotations

from fastapi import FastAPI

from transactional.api import openapi
from transactional.api.common import install_common
from transactional.api.routes import ROUTERS
from transactional.config import get_settings
from transactional.observability import configure_logging


def create_app() -> FastAPI:
    configure_logging(get_settings().log_level)
    app = FastAPI(
        title="Marketlake transactional API",
        version="0.1.0",
        description="Tenants, identity, catalog, inventory, carts, checkout, payments, reviews and shopper events.",
    )
    install_common(app, service_name="marketlake-transactional")
    for router in ROUTERS:
        app.include_router(router)
    openapi.install(app)
    return app
