"""One router per resource; the serving app includes them in this order."""

from serving.routes import health, recommendations, search

ROUTERS = [health.router, search.router, recommendations.router]
