"""Simulated shoppers and seller staff driving the real HTTP API (asyncio + httpx).

Each shopper signs in (signing up first when new), gets latent preferences from the behaviour model
(transactional.datagen.model) and runs sessions: fetch recommendations when that API is there
(found in /openapi.json), search (through the search API when there is one), browse a category,
view products following the same Markov next-view step as the generator, add to cart, check out
and pay (some payments are declined on purpose and retried), review what was delivered, and post
the session's shopper events. Seller staff of the loaded marketplace pack, ship and deliver paid
orders. Every request is timed per endpoint, so this is also the load generator: the report has
requests/s, errors and latency percentiles per endpoint (a new shopper's first sign-in answers 401
before it signs up, and counts as an error).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import numpy as np
from pydantic import BaseModel

from transactional.datagen.generator import seller_admin_emails
from transactional.datagen.loader import DEMO_PASSWORD
from transactional.datagen.model import BehaviourModel
from transactional.datagen.vocabulary import REVIEW_COMMENTS, leaves

GOOD_CARD, DECLINING_CARD = "tok_visa", "tok_card_declined"
STAFF_POLL_SECONDS = 1.0
COMPLEMENTS = {leaf.slug: leaf.complements for _, leaf in leaves()}


SEARCH_PAGE = 20
RECOMMENDATIONS_SHOWN = 10


def search_context(page: dict) -> dict:
    """A search event's context (keys: transactional.services.events.SearchEvent) from the serving
    API's search page (serving/routes/search.py)."""
    relaxed = bool(page["relaxed"]["applied"])
    return {"result_count": 0 if relaxed else page["total"], "results_shown": [item["id"] for item in page["items"]],
            "relaxed": relaxed}


class SimulationError(RuntimeError):
    """The simulation cannot run against this API (unreachable, or nothing to shop for)."""


class EndpointStats(BaseModel):
    requests: int
    errors: int
    statuses: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float


class SimulationReport(BaseModel):
    seconds: float
    requests: int
    requests_per_second: float
    errors: int
    server_errors: int
    shoppers: int
    sessions: int
    orders_placed: int
    payments_declined: int
    payments_retried: int
    reviews_written: int
    events_posted: int
    orders_moved_by_staff: int
    endpoints: dict[str, EndpointStats]


class RateLimiter:
    """At most `rate` requests per second across all simulated clients (token bucket)."""

    def __init__(self, rate: float | None) -> None:
        self.rate, self.tokens, self.updated = rate, rate or 0.0, time.monotonic()
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.rate:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


@dataclass
class Recorder:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def record(self, endpoint: str, status: int | str, seconds: float) -> None:
        self.latencies[endpoint].append(seconds * 1000)
        self.statuses[endpoint][str(status)] += 1

    def report(self, seconds: float, shoppers: int) -> SimulationReport:
        endpoints = {}
        for name, values in sorted(self.latencies.items()):
            statuses = dict(self.statuses[name])
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            errors = sum(n for status, n in statuses.items() if not status.startswith(("2", "3")))
            endpoints[name] = EndpointStats(requests=len(values), errors=errors, statuses=statuses,
                                            p50_ms=round(p50, 1), p95_ms=round(p95, 1), p99_ms=round(p99, 1))
        total = sum(e.requests for e in endpoints.values())
        return SimulationReport(
            seconds=round(seconds, 2), requests=total, requests_per_second=round(total / max(seconds, 1e-9), 1),
            errors=sum(e.errors for e in endpoints.values()),
            server_errors=sum(n for e in endpoints.values() for s, n in e.statuses.items() if s.startswith("5")
                              or not s.isdigit()),
            shoppers=shoppers, endpoints=endpoints,
            **{key: self.counters[key] for key in ("sessions", "orders_placed", "payments_declined",
                                                   "payments_retried", "reviews_written", "events_posted",
                                                   "orders_moved_by_staff")},
        )


class Api:
    """One HTTP client shared by every simulated actor; each call is timed under its endpoint name."""

    def __init__(self, client: httpx.AsyncClient, recorder: Recorder, limiter: RateLimiter) -> None:
        self.client, self.recorder, self.limiter = client, recorder, limiter

    async def call(self, method: str, endpoint: str, url: str, **kwargs) -> httpx.Response | None:
        await self.limiter.wait()
        started = time.perf_counter()
        try:
            response = await self.client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.recorder.record(f"{method} {endpoint}", type(exc).__name__, time.perf_counter() - started)
            return None
        self.recorder.record(f"{method} {endpoint}", response.status_code, time.perf_counter() - started)
        return response


@dataclass
class Catalog:
    """What shoppers can find: products per leaf category (listing order as popularity rank)."""

    leaf_slugs: list[str]
    products: dict[str, list[dict]]  # leaf slug -> product cards
    slug_of: dict[str, str]  # category id -> slug path

    @property
    def roots(self) -> list[str]:
        return sorted({slug.split("/")[0] for slug in self.leaf_slugs})


async def load_catalog(api: Api, per_category: int = 48) -> Catalog:
    response = await api.call("GET", "/v1/categories", "/v1/categories")
    tree = response.json() if response is not None and response.status_code == 200 else []
    slug_of, leaf_ids = {}, []

    def walk(nodes):
        for node in nodes:
            slug_of[node["id"]] = node["slug"]
            if node["children"]:
                walk(node["children"])
            else:
                leaf_ids.append(node["id"])

    walk(tree)
    products: dict[str, list[dict]] = {}
    for leaf_id in leaf_ids:
        page = await api.call("GET", "/v1/storefront/products", "/v1/storefront/products",
                              params={"category": leaf_id, "limit": per_category, "sort": "rating"})
        if page is not None and page.status_code == 200 and page.json()["items"]:
            products[slug_of[leaf_id]] = page.json()["items"]
    return Catalog(leaf_slugs=sorted(products), products=products, slug_of=slug_of)


class Shopper:
    def __init__(self, index: int, api: Api, catalog: Catalog, model: BehaviourModel, seed: int,
                 search_url: str | None, recommend_url: str | None, email_domain: str) -> None:
        self.api, self.catalog, self.model = api, catalog, model
        self.rng = np.random.default_rng([seed, index])
        self.email = f"shopper{index}@{email_domain}"
        roots = catalog.roots
        self.root_preference = dict(zip(roots, self.rng.dirichlet(np.full(len(roots), model.category_concentration)),
                                        strict=True))
        self.band_centre = float(np.clip(2 + 1.1 * self.rng.normal(), 0, 4))
        self.search_url, self.recommend_url = search_url, recommend_url
        self.headers: dict[str, str] = {}
        self.reviewed: set[str] = set()
        self.events: list[dict] = []

    # --- account ------------------------------------------------------------------------------
    async def sign_in(self) -> bool:
        login = {"login": self.email, "password": DEMO_PASSWORD}
        response = await self.api.call("POST", "/v1/auth/login", "/v1/auth/login", json=login)
        if response is not None and response.status_code == 401:  # a new shopper: sign up first
            await self.api.call("POST", "/v1/auth/register", "/v1/auth/register",
                                json={"email": self.email, "password": DEMO_PASSWORD})
            response = await self.api.call("POST", "/v1/auth/login", "/v1/auth/login", json=login)
        if response is None or response.status_code != 200:
            return False
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return True

    # --- behaviour ----------------------------------------------------------------------------
    def _preferred_leaf(self) -> str:
        roots = list(self.root_preference)
        root = roots[self.rng.choice(len(roots), p=np.array(list(self.root_preference.values())))]
        choices = [slug for slug in self.catalog.leaf_slugs if slug.split("/")[0] == root]
        return choices[self.rng.integers(len(choices))]

    def _pick(self, leaf: str) -> dict:
        """A product of the leaf: popularity falls with listing rank (power law)."""
        cards = self.catalog.products[leaf]
        weights = (np.arange(len(cards)) + 1.0) ** -self.model.popularity_exponent
        return cards[self.rng.choice(len(cards), p=weights / weights.sum())]

    def _next_leaf(self, current: str) -> str:
        m, r = self.model, self.rng.random()
        if r < m.noise_probability:
            return self.catalog.leaf_slugs[self.rng.integers(len(self.catalog.leaf_slugs))]
        if r < m.noise_probability + m.same_leaf_probability:
            return current
        if r < m.noise_probability + m.same_leaf_probability + m.complement_jump_probability:
            own = current.split("/")[-1]
            targets = [slug for slug in self.catalog.leaf_slugs if slug.split("/")[-1] in COMPLEMENTS.get(own, ())]
            if targets:
                return targets[self.rng.integers(len(targets))]
        return self._preferred_leaf()

    def _event(self, session_id: str, kind: str, context: dict | None = None, **fields) -> None:
        self.events.append({"event_id": str(uuid.uuid4()), "type": kind, "session_id": session_id,
                            "occurred_at": datetime.now(UTC).isoformat(),
                            "context": {"source": "simulator", **(context or {})}, **fields})

    async def think(self, seconds: float) -> None:
        await asyncio.sleep(self.rng.exponential(seconds))

    async def session(self, think_seconds: float, deadline: float) -> None:
        m, api, session_id = self.model, self.api, f"sim-{uuid.uuid4().hex[:12]}"
        added = 0
        if self.recommend_url:
            added += await self.follow_recommendations(session_id)
        leaf = self._preferred_leaf()
        await api.call("GET", "/v1/storefront/products", "/v1/storefront/products",
                       params={"category": leaf, "limit": 24})
        if self.rng.random() < m.search_start_probability:
            await self.search(session_id, leaf)
        for step in range(min(int(self.rng.geometric(1 / m.mean_session_views)), m.max_session_views)):
            if time.monotonic() > deadline:
                break
            if step:
                leaf = self._next_leaf(leaf)
            added += await self.view(session_id, self._pick(leaf))
            await self.think(think_seconds)
        if added and self.rng.random() < m.checkout_probability:
            await self.checkout(session_id)
        await self.post_events()

    async def view(self, session_id: str, card: dict, context: dict | None = None) -> int:
        """Open the product and perhaps add it to the cart; 1 when added. `context` (a serving
        response's event context) goes on the add-to-cart."""
        api = self.api
        detail = await api.call("GET", "/v1/storefront/products/{id}", f"/v1/storefront/products/{card['id']}")
        self._event(session_id, "view", product_id=card["id"])
        if detail is None or detail.status_code != 200:
            return 0
        skus = detail.json()["skus"]
        if not skus or self.rng.random() >= self._add_probability(card):
            return 0
        sku = skus[self.rng.integers(len(skus))]
        quantity = int(self.rng.choice([1, 2, 3], p=[0.85, 0.12, 0.03]))
        response = await api.call("POST", "/v1/cart/items", "/v1/cart/items", headers=self.headers,
                                  json={"sku_id": sku["id"], "quantity": quantity})
        if response is None or response.status_code >= 300:
            return 0
        self._event(session_id, "add_to_cart", context=context, product_id=card["id"], sku_id=sku["id"],
                    quantity=quantity)
        return 1

    async def follow_recommendations(self, session_id: str) -> int:
        """Fetch the homepage recommendations and sometimes open one (the top ones more often),
        echoing the list's event context (experiment, variant, model version, request id) on the
        click and the add-to-cart, as a storefront does, so experiments get their outcomes; 1 when
        it was added to the cart."""
        response = await self.api.call("GET", "/v1/recommendations", f"{self.recommend_url}/v1/recommendations",
                                       headers={**self.headers, "X-Session-ID": session_id},
                                       params={"k": RECOMMENDATIONS_SHOWN})
        if response is None or response.status_code != 200:
            return 0
        listed = response.json()
        items, context = listed["items"], listed["experiment"]["event_context"]
        if not items or self.rng.random() >= self.model.recommendation_click_probability:
            return 0
        weights = (np.arange(len(items)) + 1.0) ** -self.model.popularity_exponent
        position = int(self.rng.choice(len(items), p=weights / weights.sum()))
        self._event(session_id, "click", context=context, product_id=items[position]["id"], position=position)
        return await self.view(session_id, items[position], context)

    async def search(self, session_id: str, leaf: str) -> None:
        """Search for the leaf's name and report what was found in the event's context: from the
        search API's answer when there is one, otherwise from the behaviour model, as the generator
        does (a search finds its leaf's products)."""
        query = leaf.split("/")[-1].replace("-", " ").replace("_", " ")
        if self.search_url is None:
            shown = self.catalog.products[leaf][:SEARCH_PAGE]
            found = {"result_count": len(self.catalog.products[leaf]), "results_shown": [c["id"] for c in shown]}
        else:
            response = await self.api.call("GET", "/v1/search", f"{self.search_url}/v1/search",
                                           headers={**self.headers, "X-Session-ID": session_id},
                                           params={"q": query, "limit": SEARCH_PAGE})
            if response is None or response.status_code != 200:
                return
            found = search_context(response.json())
        self._event(session_id, "search", context=found, query=query)

    def _add_probability(self, card: dict) -> float:
        rating = float(card.get("rating_avg") or 3.5)
        return min(0.6, self.model.add_to_cart_base * np.exp(self.model.add_to_cart_quality_weight * (rating - 3.5))
                   * self.model.price_match_boost)

    async def checkout(self, session_id: str) -> None:
        api, recorder = self.api, self.api.recorder
        declined = self.rng.random() < self.model.decline_probability
        body = {"shipping_address": {"name": "Simulated Shopper", "line1": "1 Test Street", "city": "Lisbon",
                                     "postal_code": "1000-001", "country": "PT"},
                "shipping_method": "standard",
                "payment": {"method": "card", "token": DECLINING_CARD if declined else GOOD_CARD}}
        response = await api.call("POST", "/v1/checkout", "/v1/checkout", headers={
            **self.headers, "Idempotency-Key": uuid.uuid4().hex}, json=body)
        if response is None or response.status_code == 409:
            await api.call("DELETE", "/v1/cart", "/v1/cart", headers=self.headers)  # out of stock or repriced
            return
        if response.status_code not in (200, 201):
            return
        order = response.json()
        recorder.counters["orders_placed"] += 1
        if order["status"] == "PAYMENT_FAILED":
            recorder.counters["payments_declined"] += 1
            if self.rng.random() < self.model.retry_success_probability:
                recorder.counters["payments_retried"] += 1
                order_response = await api.call("POST", "/v1/orders/{id}/payments", f"/v1/orders/{order['id']}/payments",
                                                headers=self.headers, json={"method": "card", "token": GOOD_CARD})
                if order_response is not None and order_response.status_code == 201:
                    order = order_response.json()
        if order["status"] != "PAYMENT_FAILED":
            for sub_order in order["sub_orders"]:
                for item in sub_order["items"]:
                    self._event(session_id, "purchase", product_id=item["product_id"], sku_id=item["sku_id"],
                                quantity=item["quantity"])

    async def review_delivered(self) -> None:
        response = await self.api.call("GET", "/v1/orders", "/v1/orders", headers=self.headers, params={"limit": 20})
        if response is None or response.status_code != 200:
            return
        for order in response.json():
            for sub_order in order["sub_orders"]:
                if sub_order["status"] != "DELIVERED":
                    continue
                for item in sub_order["items"]:
                    product = item["product_id"]
                    if product in self.reviewed or self.rng.random() > self.model.review_probability * 2:
                        continue
                    self.reviewed.add(product)
                    rating = int(np.clip(round(3.8 + self.rng.normal(0, 1)), 1, 5))
                    comments = REVIEW_COMMENTS[rating]
                    created = await self.api.call("POST", "/v1/products/{id}/reviews", f"/v1/products/{product}/reviews",
                                                  headers=self.headers,
                                                  json={"rating": rating, "comment": comments[self.rng.integers(len(comments))]})
                    if created is not None and created.status_code == 201:
                        self.api.recorder.counters["reviews_written"] += 1

    async def post_events(self) -> None:
        while self.events:
            batch, self.events = self.events[:500], self.events[500:]
            response = await self.api.call("POST", "/v1/events", "/v1/events", headers=self.headers,
                                           json={"events": batch})
            if response is not None and response.status_code < 300:
                self.api.recorder.counters["events_posted"] += response.json().get("accepted", len(batch))

    async def run(self, deadline: float, think_seconds: float) -> None:
        while time.monotonic() < deadline:
            await self.session(think_seconds, deadline)
            self.api.recorder.counters["sessions"] += 1
            await self.review_delivered()
            await self.think(think_seconds * 3)


NEXT_STATUS = {"PAID": "PACKED", "PACKED": "SHIPPED", "SHIPPED": "DELIVERED"}


async def staff_member(api: Api, login: str, shoppers_done: asyncio.Event) -> None:
    """A seller's staff: packs paid orders, ships packed ones, and (as the carrier) delivers them,
    until the shoppers are done, then once more for the orders placed last."""
    response = await api.call("POST", "/v1/auth/login", "/v1/auth/login", json={"login": login, "password": DEMO_PASSWORD})
    if response is None or response.status_code != 200:
        return
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    last_pass = False
    while not last_pass:
        last_pass = shoppers_done.is_set()
        for status, target in NEXT_STATUS.items():
            listed = await api.call("GET", "/v1/tenant/orders", "/v1/tenant/orders", headers=headers,
                                    params={"status": status, "limit": 20})
            if listed is None or listed.status_code != 200:
                continue
            for share in listed.json():
                moved = await api.call("POST", "/v1/tenant/orders/{id}/status",
                                       f"/v1/tenant/orders/{share['id']}/status", headers=headers,
                                       json={"status": target})
                if moved is not None and moved.status_code == 200:
                    api.recorder.counters["orders_moved_by_staff"] += 1
        if not last_pass:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shoppers_done.wait(), STAFF_POLL_SECONDS)


async def _paths(api: Api, url: str) -> set[str]:
    response = await api.call("GET", "/openapi.json", f"{url}/openapi.json")
    return set(response.json().get("paths", {})) if response is not None and response.status_code == 200 else set()


async def simulate(api_url: str, *, shoppers: int, duration: float, seed: int, rate: float | None = None,
                   dataset: tuple[str, int] | None = None, search_url: str | None = None,
                   model: BehaviourModel | None = None, think_seconds: float = 0.2,
                   max_staff: int = 10) -> SimulationReport:
    model = model or BehaviourModel()
    recorder = Recorder()
    limits = httpx.Limits(max_connections=shoppers + max_staff + 4)
    async with httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits) as client:
        api = Api(client, recorder, RateLimiter(rate))
        started = time.monotonic()
        catalog = await load_catalog(api)
        if not catalog.leaf_slugs:
            raise SimulationError(f"the API at {api_url} lists no products: load a marketplace first")
        paths = await _paths(api, api_url)
        if search_url is None and "/v1/search" in paths:
            search_url = api_url
        if search_url is not None and search_url != api_url:
            paths |= await _paths(api, search_url)
        recommend_url = (search_url or api_url) if "/v1/recommendations" in paths else None
        domain = f"sim-{seed}.shoppers.example.com"
        shoppers_done = asyncio.Event()
        logins = seller_admin_emails(*dataset)[:max_staff] if dataset is not None else []
        staff = [asyncio.create_task(staff_member(api, login, shoppers_done)) for login in logins]
        crowd = [Shopper(i, api, catalog, model, seed, search_url, recommend_url, domain) for i in range(shoppers)]
        # Signing up costs an argon2 hash per shopper, seconds on a busy machine: the clock starts
        # once everyone is in, so a short run still shops for its whole duration.
        signed_in = await asyncio.gather(*(shopper.sign_in() for shopper in crowd))
        deadline = time.monotonic() + duration
        await asyncio.gather(*(shopper.run(deadline, think_seconds)
                               for shopper, ready in zip(crowd, signed_in, strict=True) if ready))
        shoppers_done.set()
        await asyncio.gather(*staff)
        return recorder.report(time.monotonic() - started, shoppers)


def run_simulation(api_url: str, *, shoppers: int = 10, duration: float = 30, seed: int = 0,
                   rate: float | None = None, dataset: tuple[str, int] | None = None,
                   search_url: str | None = None, model: BehaviourModel | None = None,
                   think_seconds: float = 0.2) -> SimulationReport:
    """Run simulated shoppers (and, given the loaded generated `dataset` (scale, seed), its
    sellers' staff) against the API for `duration` seconds; the demo command calls this."""
    return asyncio.run(simulate(api_url, shoppers=shoppers, duration=duration, seed=seed, rate=rate,
                                dataset=dataset, search_url=search_url, model=model, think_seconds=think_seconds))
