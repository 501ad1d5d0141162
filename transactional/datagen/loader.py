"""Write a generated marketplace through the platform's own services, under row-level security:
tenancy (register, KYC, configure), the catalog's bulk import, inventory adjustments, user
registration, the historical-orders writer and shopper-event ingestion.

Every step is idempotent (tenants and buyers by external_ref, products by product_ref,
warehouses by code, stock only where a SKU has none, orders, reviews and events by their
deterministic ids), so loading the same data twice changes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import polars as pl
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from transactional.datagen.data import MarketplaceData
from transactional.datagen.progress import Progress
from transactional.db import PLATFORM, AccessContext, acting_as, session_scope
from transactional.models import OrderStatus, PaymentStatus, Plan, Product, Role, Sku, Tenant, User
from transactional.services import auth, catalog, events, history, inventory, tenancy
from transactional.services.kyc import get_kyc_provider
from transactional.services.security import hash_password

# Every generated account (seller admins and buyers) signs in with this password.
DEMO_PASSWORD = "marketlake-demo"
TENANTS_PER_TRANSACTION = 100
PRODUCTS_PER_IMPORT = 2_000
BUYERS_PER_TRANSACTION = 2_000
ORDERS_PER_TRANSACTION = 2_000
EVENTS_PER_BATCH = 5_000
CENT = Decimal("0.01")


class LoadSummary(BaseModel):
    scale: str
    seed: int
    written: dict[str, int]
    seconds: dict[str, float]


def cents(value: int) -> Decimal:
    return (Decimal(value) * CENT).quantize(CENT)


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Loader:
    def __init__(self, data: MarketplaceData, progress: Progress | None, password: str) -> None:
        self.data, self.progress, self.password = data, progress, password
        # Every generated account shares the password: argon2 once, not once per account.
        self.password_hash = hash_password(password)
        self.written: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = {}

    def run(self) -> LoadSummary:
        for name, step in (("categories", self.categories), ("tenants", self.tenants),
                           ("warehouses", self.warehouses), ("products", self.products), ("stock", self.stock),
                           ("buyers", self.buyers), ("orders", self.orders), ("reviews", self.reviews),
                           ("events", self.events)):
            started = time.perf_counter()
            step()
            self.seconds[name] = round(time.perf_counter() - started, 2)
        return LoadSummary(scale=self.data.scale, seed=self.data.seed, written=dict(self.written), seconds=self.seconds)

    def _task(self, description: str, total: int):
        return self.progress.task(description, total) if self.progress else None

    @staticmethod
    def _advance(task, amount: int) -> None:
        if task is not None:
            task.advance(amount)

    # --- catalog and sellers ------------------------------------------------------------------
    def categories(self) -> None:
        parent = dict(self.data.categories.select("slug", "parent_slug").iter_rows())
        self.category_path = {slug: f"{up}/{slug}" if up else slug for slug, up in parent.items()}
        with session_scope(PLATFORM) as session:
            catalog.ensure_categories(session, list(self.category_path.values()))

    def tenants(self) -> None:
        self.tenant_ids: list[uuid.UUID] = []
        self.admin_ids: list[uuid.UUID] = []
        task = self._task("tenants", self.data.tenants.height)
        with session_scope(PLATFORM) as session:
            known = dict(session.execute(select(Tenant.external_ref, Tenant.id).where(
                Tenant.external_ref.in_(self.data.tenants["external_ref"].to_list()))).all())
            admins = dict(session.execute(select(User.tenant_id, User.id).where(
                User.tenant_id.in_(list(known.values())), User.role == Role.seller_admin)).all())
        rows = list(enumerate(self.data.tenants.iter_rows(named=True)))
        for batch in chunks(rows, TENANTS_PER_TRANSACTION):
            with session_scope(PLATFORM) as session:
                for index, row in batch:
                    if row["external_ref"] in known:
                        tenant_id, admin_id = known[row["external_ref"]], admins[known[row["external_ref"]]]
                    else:
                        tenant, admin = self._register_tenant(session, index, row)
                        tenant_id, admin_id = tenant.id, admin.id
                        self.written["tenants"] += 1
                    self.tenant_ids.append(tenant_id)
                    self.admin_ids.append(admin_id)
            self._advance(task, len(batch))

    def _register_tenant(self, session: Session, index: int, row: dict):
        tenant, admin = tenancy.register_tenant(
            session, slug=row["slug"], legal_name=row["legal_name"], store_name=row["store_name"],
            admin_email=row["admin_email"], admin_password=self.password, admin_name=f"{row['store_name']} admin",
            plan=Plan(row["plan"]), external_ref=row["external_ref"], admin_password_hash=self.password_hash,
        )
        tenancy.submit_kyc(session, tenant, get_kyc_provider(), tax_id=f"TX-{index + 1:06d}-1",
                           documents={"identity": "generated-identity", "business_registration": "generated"})
        tenancy.update_config(session, tenant, {
            "tax_rate": row["tax_rate"],
            "shipping": {"methods": ["standard", "express"], "flat_rate": "4.99", "free_shipping_over": "50.00"},
        })
        return tenant, admin

    def _as_seller(self, tenant_idx: int) -> AccessContext:
        return AccessContext("tenant", tenant_id=self.tenant_ids[tenant_idx], user_id=self.admin_ids[tenant_idx])

    def _per_tenant(self, table: pl.DataFrame, rows_per_transaction: int) -> Iterator[tuple[Session, int, pl.DataFrame]]:
        """(session, tenant index, that tenant's rows) with several small tenants sharing one
        transaction (a commit costs more than a small tenant's writes) and each tenant's writes
        made in that tenant's own row-level-security scope."""
        groups = list(table.group_by("tenant_idx", maintain_order=True))
        batch: list[tuple[int, pl.DataFrame]] = []
        size = 0
        for position, ((tenant_idx,), rows) in enumerate(groups):
            batch.append((tenant_idx, rows))
            size += rows.height
            if size >= rows_per_transaction or position == len(groups) - 1:
                with session_scope(PLATFORM) as session:
                    for idx, part in batch:
                        with acting_as(session, self._as_seller(idx)):
                            yield session, idx, part
                batch, size = [], 0

    def warehouses(self) -> None:
        self.warehouse_ids: list[uuid.UUID | None] = [None] * self.data.warehouses.height
        for session, tenant_idx, rows in self._per_tenant(self.data.warehouses.with_row_index("row"), 500):
            existing = {w.code: w.id for w in inventory.list_warehouses(session)}
            for row in rows.iter_rows(named=True):
                if row["code"] not in existing:
                    existing[row["code"]] = inventory.create_warehouse(
                        session, tenant_id=self.tenant_ids[tenant_idx], code=row["code"], name=row["name"],
                        address={"city": row["city"]}).id
                    self.written["warehouses"] += 1
                self.warehouse_ids[row["row"]] = existing[row["code"]]

    def products(self) -> None:
        products = self.data.products.with_row_index("product_idx")
        skus = self.data.skus.join(products.select(pl.col("product_idx").cast(pl.Int32), "external_ref", "title",
                                                   "description", "category_slug", "brand", "attributes"),
                                   on="product_idx", suffix="_of_product")
        task = self._task("products", products.height)
        for tenant_rows in self._tenant_slices(skus, PRODUCTS_PER_IMPORT):
            for session, tenant_idx, part in self._per_tenant(tenant_rows, PRODUCTS_PER_IMPORT):
                product_rows = [catalog.ProductRow(
                    product_ref=r["external_ref"], sku_code=r["sku_code"], title=r["title"],
                    description=r["description"], category=self.category_path.get(r["category_slug"]),
                    brand=r["brand"], attributes=r["attributes_of_product"], status="active",
                    price=cents(r["price_cents"]), currency=self.data.currency,
                    sku_attributes=r["attributes"], weight_grams=r["weight_grams"],
                ) for r in part.iter_rows(named=True)]
                result = catalog.import_products(session, tenant_id=self.tenant_ids[tenant_idx],
                                                 actor_user_id=self.admin_ids[tenant_idx], rows=product_rows)
                self.written["products"] += result.products_created
                self.written["skus"] += result.skus_created
                self._advance(task, result.products_created + result.products_updated + result.products_unchanged)
        self._map_catalog_ids()

    @staticmethod
    def _tenant_slices(skus: pl.DataFrame, products_per_slice: int) -> Iterator[pl.DataFrame]:
        """SKU rows split so no slice holds more than `products_per_slice` products of one tenant
        (a large tenant's catalog is imported in several transactions)."""
        numbered = skus.with_columns(
            slice=(pl.col("external_ref").rank("dense").over("tenant_idx") - 1) // products_per_slice)
        for (_,), part in numbered.group_by("slice", maintain_order=True):
            yield part.drop("slice")

    def _map_catalog_ids(self) -> None:
        with session_scope(PLATFORM) as session:
            product_ids = {(t, ref): pid for t, ref, pid in session.execute(
                select(Product.tenant_id, Product.external_ref, Product.id).where(Product.tenant_id.in_(self.tenant_ids)))}
            sku_ids = {(t, code): sid for t, code, sid in session.execute(
                select(Sku.tenant_id, Sku.sku_code, Sku.id).where(Sku.tenant_id.in_(self.tenant_ids)))}
        tenant_of_product = self.data.products["tenant_idx"].to_list()
        self.product_ids = [product_ids[(self.tenant_ids[t], ref)]
                            for t, ref in zip(tenant_of_product, self.data.products["external_ref"].to_list(), strict=True)]
        self.sku_ids = [sku_ids[(self.tenant_ids[t], code)] for t, code in
                        zip(self.data.skus["tenant_idx"].to_list(), self.data.skus["sku_code"].to_list(), strict=True)]
        self.product_tenant_idx = tenant_of_product
        self.product_tenant = [self.tenant_ids[t] for t in tenant_of_product]

    def stock(self) -> None:
        """Initial stock for SKUs that have none yet: the rows inventory.adjust_stock writes (a level
        and an adjustment saying why), set-based per tenant under that tenant's scope; adjust_stock
        one SKU at a time costs ~10 ms, which would dominate loading a million SKUs."""
        levels = self.data.inventory.join(self.data.skus.with_row_index("sku_idx").select(
            pl.col("sku_idx").cast(pl.Int32), "tenant_idx"), on="sku_idx")
        task = self._task("stock", levels.height)
        for session, tenant_idx, rows in self._per_tenant(levels, 20_000):
            batch = list(rows.select("sku_idx", "warehouse_idx", "available").iter_rows())
            self.written["inventory_levels"] += session.execute(_INITIAL_STOCK, {
                "tenant": self.tenant_ids[tenant_idx], "actor": self.admin_ids[tenant_idx],
                "skus": [self.sku_ids[sku] for sku, _, _ in batch],
                "warehouses": [self.warehouse_ids[wh] for _, wh, _ in batch],
                "available": [available for _, _, available in batch],
            }).rowcount
            self._advance(task, len(batch))

    # --- buyers and history -------------------------------------------------------------------
    def buyers(self) -> None:
        refs = self.data.buyers["external_ref"].to_list()
        with session_scope(PLATFORM) as session:
            known = dict(session.execute(select(User.external_ref, User.id).where(User.external_ref.in_(refs))).all())
        task = self._task("buyers", len(refs))
        rows = list(self.data.buyers.select("external_ref", "email", "full_name").iter_rows())
        for batch in chunks(rows, BUYERS_PER_TRANSACTION):
            missing = [row for row in batch if row[0] not in known]
            if missing:
                with session_scope(PLATFORM) as session:
                    for ref, email, full_name in missing:
                        known[ref] = auth.register_user(
                            session, password=self.password, password_hash=self.password_hash, email=email,
                            full_name=full_name, external_ref=ref).id
                self.written["buyers"] += len(missing)
            self._advance(task, len(batch))
        self.buyer_ids = [known[ref] for ref in refs]
        self.buyer_city = self.data.buyers["city"].to_list()

    def orders(self) -> None:
        data = self.data
        items_by_order: dict[int, list[tuple]] = defaultdict(list)
        for order_idx, product_idx, sku_idx, quantity, unit in data.order_items.select(
                "order_idx", "product_idx", "sku_idx", "quantity", "unit_price_cents").iter_rows():
            items_by_order[order_idx].append((product_idx, sku_idx, quantity, unit))
        subs_by_order: dict[int, list[tuple]] = defaultdict(list)
        for order_idx, tenant_idx, tax, shipping, commission in data.sub_orders.select(
                "order_idx", "tenant_idx", "tax_total_cents", "shipping_total_cents", "commission_cents").iter_rows():
            subs_by_order[order_idx].append((tenant_idx, tax, shipping, commission))
        payments_by_order: dict[int, list[history.HistoricalPayment]] = defaultdict(list)
        for order_idx, attempt, status, method, amount, created, reason in data.payments.select(
                "order_idx", "attempt", "status", "method", "amount_cents", "created_at", "failure_reason").iter_rows():
            payments_by_order[order_idx].append(history.HistoricalPayment(
                attempt=attempt, status=PaymentStatus(status), amount=cents(amount), method=method, created_at=created,
                failure_reason=reason))
        self.order_ids = [uuid.UUID(i) for i in data.orders["id"].to_list()]
        task = self._task("orders", data.orders.height)
        built = [self._order(idx, row, items_by_order[idx], subs_by_order[idx], payments_by_order[idx])
                 for idx, row in enumerate(data.orders.iter_rows(named=True))]
        for batch in chunks(built, ORDERS_PER_TRANSACTION):
            with session_scope(PLATFORM) as session:
                self.written["orders"] += history.write_orders(session, batch).written
            self._advance(task, len(batch))

    def _order(self, idx: int, row: dict, items: list[tuple], subs: list[tuple],
               payments: list[history.HistoricalPayment]) -> history.HistoricalOrder:
        by_tenant: dict[int, list[history.HistoricalItem]] = defaultdict(list)
        for product_idx, sku_idx, quantity, unit in items:
            by_tenant[self.product_tenant_idx[product_idx]].append(history.HistoricalItem(
                product_id=self.product_ids[product_idx], sku_id=self.sku_ids[sku_idx], quantity=quantity,
                unit_price=cents(unit)))
        sub_orders = [history.HistoricalSubOrder(
            tenant_id=self.tenant_ids[tenant_idx], items=by_tenant[tenant_idx], tax_total=cents(tax),
            shipping_total=cents(shipping), commission=cents(commission)) for tenant_idx, tax, shipping, commission in subs]
        return history.HistoricalOrder(
            id=self.order_ids[idx], buyer_id=self.buyer_ids[row["buyer_idx"]], placed_at=row["placed_at"],
            sub_orders=sub_orders, timeline=_timeline(row, payments), payments=payments,
            shipping_address={"city": self.buyer_city[row["buyer_idx"]], "country": "US"},
            shipping_method=row["shipping_method"], payment_method=row["payment_method"], currency=self.data.currency,
        )

    def reviews(self) -> None:
        items = self.data.order_items.with_columns(
            index_in_order=pl.col("item_idx") - pl.col("item_idx").min().over("order_idx"))
        order_of_item = items["order_idx"].to_list()
        index_in_order = items["index_in_order"].to_list()
        reviews = [history.HistoricalReview(
            id=uuid.UUID(review_id), buyer_id=self.buyer_ids[buyer_idx], tenant_id=self.product_tenant[product_idx],
            product_id=self.product_ids[product_idx],
            order_item_id=history.order_item_id(self.order_ids[order_of_item[item_idx]], index_in_order[item_idx]),
            rating=rating, comment=comment, created_at=created,
        ) for review_id, item_idx, buyer_idx, product_idx, rating, comment, created in self.data.reviews.iter_rows()]
        task = self._task("reviews", len(reviews))
        for batch in chunks(reviews, ORDERS_PER_TRANSACTION):
            with session_scope(PLATFORM) as session:
                self.written["reviews"] += history.write_reviews(session, batch).written
            self._advance(task, len(batch))

    def events(self) -> None:
        """Shopper events through the events service, attributed by the platform (a back-fill)."""
        data, namespace = self.data, self.data.namespace
        tag = f"{data.scale}-{data.seed}"
        task = self._task("events", data.events.height)
        columns = ("session_idx", "user_idx", "bot", "event_type", "product_idx", "sku_idx", "position",
                   "quantity", "occurred_at", "query", "result_count")
        for offset in range(0, data.events.height, EVENTS_PER_BATCH):
            frame = data.events.slice(offset, EVENTS_PER_BATCH)
            batch = []
            for number, (session_idx, user_idx, bot, kind, product_idx, sku_idx, position, quantity, occurred_at,
                         query, result_count) in enumerate(frame.select(columns).iter_rows(), start=offset):
                event = {"event_id": uuid.uuid5(namespace, f"event:{number}"), "type": kind,
                         "session_id": f"{tag}-{session_idx}", "occurred_at": occurred_at,
                         "context": {"source": "datagen", "device": "bot" if bot else "web"}}
                if user_idx is None:
                    event["anonymous_id"] = f"{tag}-visitor-{session_idx}"
                    event["context"]["user_agent"] = "Mozilla/5.0 HeadlessChrome/120.0"
                else:
                    event["user_id"] = self.buyer_ids[user_idx]
                if product_idx is not None:
                    event["product_id"] = self.product_ids[product_idx]
                if sku_idx is not None:
                    event["sku_id"] = self.sku_ids[sku_idx]
                if kind in ("add_to_cart", "remove_from_cart", "purchase"):
                    event["quantity"] = quantity
                if kind in ("search", "click"):
                    event["query"] = query
                if kind == "click":
                    event["position"] = position
                if kind == "search":
                    event["context"]["result_count"] = result_count
                batch.append(event)
            with session_scope(PLATFORM) as session:
                self.written["events"] += events.ingest_events(session, events.EVENTS.validate_python(batch)).accepted
            self._advance(task, frame.height)


_INITIAL_STOCK = text(
    """
    WITH levels AS (
        INSERT INTO inventory_levels (id, tenant_id, sku_id, warehouse_id, available, reserved)
        SELECT gen_random_uuid(), :tenant, u.sku, u.warehouse, u.available, 0
        FROM unnest(CAST(:skus AS uuid[]), CAST(:warehouses AS uuid[]), CAST(:available AS int[]))
             AS u(sku, warehouse, available)
        WHERE NOT EXISTS (SELECT 1 FROM inventory_levels l WHERE l.sku_id = u.sku)
        ON CONFLICT (sku_id, warehouse_id) DO NOTHING
        RETURNING id, available
    )
    INSERT INTO stock_adjustments (id, tenant_id, inventory_level_id, delta, reason, actor_user_id, created_at)
    SELECT gen_random_uuid(), :tenant, levels.id, levels.available, 'initial stock', :actor, now() FROM levels
    """
)


def _timeline(row: dict, payments: list[history.HistoricalPayment]) -> list[tuple[OrderStatus, datetime]]:
    """The statuses an order went through after PAYMENT_PENDING, from its *_at columns, in time order."""
    steps = [(OrderStatus(status), row[column]) for status, column in (
        ("PAID", "paid_at"), ("PACKED", "packed_at"), ("SHIPPED", "shipped_at"), ("DELIVERED", "delivered_at"),
        ("CANCELLED", "cancelled_at"), ("RETURN_REQUESTED", "return_requested_at"), ("REFUNDED", "refunded_at"),
    ) if row[column] is not None]
    if row["status"] == OrderStatus.PAYMENT_FAILED.value:
        steps.append((OrderStatus.PAYMENT_FAILED, max((p.created_at for p in payments), default=row["placed_at"])))
    return sorted(steps, key=lambda step: step[1])


def load_marketplace(data: MarketplaceData, progress: Progress | None = None,
                     password: str = DEMO_PASSWORD) -> LoadSummary:
    return Loader(data, progress, password).run()
