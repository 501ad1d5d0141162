"""Per-storefront rate limits of the serving API.

A request made for one store (a single `tenant_id` query parameter: a store's own storefront
scoping its search or recommendations) spends a token from that store's bucket, so one store's
traffic cannot starve the others; marketplace-wide requests are not charged to any store. The
buckets are the transactional API's token buckets (`transactional.ratelimit`), kept per serving
process and without a database call. Over the limit: 429 problem+json naming `tenant_id`, with
Retry-After; every charged response carries X-RateLimit-Limit and X-RateLimit-Remaining.
"""

from __future__ import annotations

import uuid

from fastapi import Request, Response

from serving.config import get_serving_settings
from transactional.errors import TooManyRequests
from transactional.ratelimit import TokenBuckets

storefront_buckets = TokenBuckets()


def _storefront(request: Request) -> uuid.UUID | None:
    given = request.query_params.getlist("tenant_id")
    if len(given) != 1:
        return None
    try:
        return uuid.UUID(given[0])
    except ValueError:
        return None  # the route's validation names the malformed parameter


async def storefront_rate_limit(request: Request, response: Response) -> None:
    """An app-wide dependency: charge the request to its storefront, if it has one."""
    tenant_id = _storefront(request)
    if tenant_id is None:
        return
    decision = storefront_buckets.take(tenant_id, get_serving_settings().tenant_requests_per_minute)
    headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining)}
    if not decision.allowed:
        raise TooManyRequests(f"the store's serving limit of {decision.limit} requests/minute is spent",
                              field="tenant_id", headers={**headers, "Retry-After": str(decision.retry_after)})
    response.headers.update(headers)
