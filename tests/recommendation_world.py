"""A small marketplace with a behaviour model the recommender must recover, for the
recommendation tests: four categories, three stores, shoppers who each favour one category.

Everything is real: products through the catalog service, shopper events through the events
service, an ALS model trained on those events through `models.experiment`, logged and registered
in MLflow through `models.tracking`, the search index built from PostgreSQL, FAISS from the run."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select, text, update

from serving.config import RecommendationSettings, SearchSettings
from serving.recommend.features import OnlineItemFeatures
from serving.recommend.service import RecommendationService
from serving.search.service import SearchService
from serving.search.vectors import shared_embedder
from transactional.db import PLATFORM, owner_engine, session_scope
from transactional.models import InventoryLevel, ProductStatus, Sku, Tenant, TenantStatus, Warehouse
from transactional.services.catalog import ProductData, SkuData, create_product, ensure_categories
from transactional.services.events import EVENTS, ingest_events

# category path -> (category name, title stem)
CATEGORIES = {
    "fashion/shoes": ("Shoes", "Shoe"),
    "home/kitchen": ("Kitchen", "Kettle"),
    "electronics/audio": ("Audio", "Speaker"),
    "books/fiction": ("Fiction", "Novel"),
}
STORES = ("alpha", "beta", "gamma")
PER_CATEGORY = 12
SHOPPERS = 120
EVENTS_PER_SHOPPER = 20


@dataclass
class World:
    tenants: dict[str, uuid.UUID] = field(default_factory=dict)
    warehouses: dict[str, uuid.UUID] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)  # title -> id
    category_of: dict[str, str] = field(default_factory=dict)  # title -> path
    store_of: dict[str, str] = field(default_factory=dict)  # title -> store
    shoppers: list[str] = field(default_factory=list)  # user ids; shopper i favours category i % 4
    frame: pd.DataFrame | None = None

    def title(self, product_id: str) -> str:
        return next(title for title, known in self.products.items() if known == product_id)

    def favourite(self, shopper: str) -> str:
        return list(CATEGORIES)[self.shoppers.index(shopper) % len(CATEGORIES)]

    def titles_in(self, path: str) -> list[str]:
        return [title for title, category in self.category_of.items() if category == path]


def add_store(world, name: str) -> None:
    """An active store `name` with one warehouse, recorded in `world.tenants` / `world.warehouses`."""
    with session_scope(PLATFORM) as session:
        tenant = Tenant(slug=f"{name}-{uuid.uuid4().hex[:6]}", legal_name=f"{name} Ltd",
                        store_name=f"{name.title()} Store", status=TenantStatus.active)
        session.add(tenant)
        session.flush()
        warehouse = Warehouse(tenant_id=tenant.id, code="MAIN", name="Main", address={})
        session.add(warehouse)
        session.flush()
        world.tenants[name], world.warehouses[name] = tenant.id, warehouse.id


def add_product(world: World, title: str, path: str, store: str, stock: int = 5) -> str:
    with session_scope(PLATFORM) as session:
        category_id = ensure_categories(session, [path])[path]
        product_id = create_product(session, tenant_id=world.tenants[store], actor_user_id=None, data=ProductData(
            title=title, brand=store.title(), category_id=category_id, status=ProductStatus.active,
            skus=[SkuData(sku_code=f"SKU-{uuid.uuid4().hex[:8]}", price=Decimal("20.00"), currency="USD")]))
        sku_id = session.scalar(select(Sku.id).where(Sku.product_id == product_id))
        session.add(InventoryLevel(tenant_id=world.tenants[store], sku_id=sku_id,
                                   warehouse_id=world.warehouses[store], available=stock, reserved=0))
    world.products[title], world.category_of[title], world.store_of[title] = str(product_id), path, store
    return str(product_id)


def set_stock(product_id: str, available: int) -> None:
    with owner_engine().begin() as connection:
        connection.execute(update(InventoryLevel).where(InventoryLevel.sku_id.in_(
            select(Sku.id).where(Sku.product_id == uuid.UUID(product_id)))).values(available=available))


def set_tenant_status(tenant_id: uuid.UUID, status: TenantStatus) -> None:
    with owner_engine().begin() as connection:
        connection.execute(update(Tenant).where(Tenant.id == tenant_id).values(status=status))


def send_events(events: list[dict]) -> None:
    """Shopper events through the events service (platform scope: events may name any shopper)."""
    with session_scope(PLATFORM) as session:
        ingest_events(session, EVENTS.validate_python(events))


def event(kind: str, product_id: str, user_id: str | None = None, anonymous_id: str | None = None,
          at: datetime | None = None) -> dict:
    return {"type": kind, "event_id": str(uuid.uuid4()), "user_id": user_id, "anonymous_id": anonymous_id,
            "session_id": f"s-{user_id or anonymous_id}", "occurred_at": (at or datetime.now(UTC)).isoformat(),
            "product_id": product_id}


def build_world(seed: int = 7) -> World:
    """The catalog and the shoppers' history, in an emptied database."""
    from transactional.models import Base

    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with owner_engine().begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    world = World()
    for store in STORES:
        add_store(world, store)
    for path, (_, stem) in CATEGORIES.items():
        for number in range(PER_CATEGORY):
            add_product(world, f"{stem} {number}", path, STORES[number % len(STORES)])
    rng = np.random.default_rng(seed)
    start = datetime.now(UTC) - timedelta(days=2)
    rows, events = [], []
    for index in range(SHOPPERS):
        shopper = str(uuid.UUID(int=rng.integers(1, 2**63)))
        world.shoppers.append(shopper)
        favourite = world.titles_in(list(CATEGORIES)[index % len(CATEGORIES)])
        for step in range(EVENTS_PER_SHOPPER):
            pool = favourite if rng.random() < 0.95 else list(world.products)
            title = pool[int(rng.integers(len(pool)))]
            kind = "view" if step % 5 else "add_to_cart"
            at = start + timedelta(minutes=index * 20 + step)
            rows.append((shopper, world.products[title], kind, int(at.timestamp())))
            events.append(event(kind, world.products[title], user_id=shopper, at=at))
    send_events(events)
    world.frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "timestamp"])
    return world


def use_mlflow_store(folder: Path) -> dict[str, str | None]:
    """Point MLflow at a private store; returns the previous settings to restore."""
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MARKETLAKE_MLFLOW_ARTIFACTS")}
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    os.environ["MARKETLAKE_MLFLOW_ARTIFACTS"] = (folder / "artifacts").as_uri()
    return saved


def restore_environment(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def train_and_log(world: World) -> str:
    """Fit ALS on the world's events (tuned on an inner split) and log it; the model run id."""
    from models.data import from_frame
    from models.experiment import run, table
    from models.protocols import leave_last_out
    from models.tracking import log_evaluation

    data = from_frame(world.frame)
    runs = run([leave_last_out(data)], ["als"], blend=False)
    logged = log_evaluation(runs, table(runs), {"dataset": "recommendation-world"}, encoded=data)
    return logged.model_run_ids["als"]


def register(name: str, run_id: str, validation: float) -> str:
    from models.tracking import register as register_version

    return register_version(name, run_id, validation).version


def search_service(folder: Path) -> SearchService:
    search = SearchService(SearchSettings(refresh_seconds=0.2), embedder=shared_embedder(),
                           snapshot_dir=folder / "search")
    search.build()
    return search


def recommendation_service(search: SearchService, registered_model: str, features: OnlineItemFeatures | None = None,
                           **settings) -> RecommendationService:
    """Opened and loaded (synchronously: tests drive refreshes themselves); without a feature store
    unless `features` is given."""
    service = RecommendationService(search, RecommendationSettings(
        registered_model=registered_model, feature_store=features is not None, **settings), features=features)
    service.open()
    service.check_registry()
    return service


def follow_feeds(search: SearchService, recommendations: RecommendationService) -> None:
    """What the background threads do every few seconds: read the feeds, re-rank popularity."""
    search.refresh()
    recommendations.refresh()
