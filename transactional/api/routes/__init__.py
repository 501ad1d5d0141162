"""One router per resource; the app includes them in this order."""

from transactional.api.routes import auth, events, health, tenants

ROUTERS = [health.router, auth.router, tenants.router, events.router]
