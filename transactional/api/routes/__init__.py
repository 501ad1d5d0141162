"""One router per resource; the app includes them in this order."""

from transactional.api.routes import (
    auth, cart, catalog, categories, checkout, dashboards, events, experiments, health, inventory, orders, payments,
    reviews, storefront, tenants,
)

ROUTERS = [health.router, auth.router, tenants.router, events.router,
           inventory.router, cart.router, checkout.router, orders.router, payments.router, reviews.router,
           categories.router, catalog.router, storefront.router, dashboards.router,
           experiments.router]
