"""Import the Olist Brazilian e-commerce data set (Olist, CC BY-NC-SA 4.0) as a marketplace.

The files are read (plain `.csv` or `.csv.gz`, Olist's published names), validated whole, and
turned into the same tables the generator makes, which the loader then writes through the
services. Sellers become tenants, products go into the catalog under their categories
translated to English, and, when the order files are present, orders, payments and reviews
load as history with their original timestamps and statuses.

Derived values (Olist publishes no titles, prices, seller names or stock), marked in each
product's attributes under `derived`:
- title: "<Category in English> item <first 8 hex digits of the product id>";
- price: the median price the product sold at in `order_items` when the order files are
  present (not derived); otherwise `(9.90 + 0.015 × weight in grams) × (0.6 + 0.8 u)` BRL
  capped at 5,000, with u in [0, 1) from the first 8 hex digits of sha256(product id);
- seller: the seller that sold the product most often in `order_items` (ties: lowest seller
  id); without order files, the seller at index sha256(product id) mod (number of sellers)
  in seller-id order;
- stock: 25 units per product in its seller's one warehouse;
- store names: "<City> store <first 6 hex digits of the seller id>".
Categories without an English translation keep their Portuguese name; products without a
category get none. Olist review ids are not unique (a review can cover several orders), so
a review is keyed by (review_id, order_id) and attached to the first item of its order.
Times are São Paulo local times, stored in UTC.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from transactional.datagen.data import MarketplaceData
from transactional.datagen.loader import LoadSummary, load_marketplace
from transactional.datagen.progress import Progress
from transactional.datagen.validation import ImportRejected, Problems, csv_records, parse_number

OLIST_NAMESPACE = uuid.UUID("0f7d3c1e-8a51-5d6c-9a0b-2c4e6f8a1b3d")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
DERIVED_STOCK = 25

FILES = {
    "sellers": ("olist_sellers_dataset", {"seller_id", "seller_zip_code_prefix", "seller_city", "seller_state"}),
    "products": ("olist_products_dataset", {
        "product_id", "product_category_name", "product_name_lenght", "product_description_lenght",
        "product_photos_qty", "product_weight_g", "product_length_cm", "product_height_cm", "product_width_cm"}),
    "translation": ("product_category_name_translation", {"product_category_name", "product_category_name_english"}),
    "orders": ("olist_orders_dataset", {
        "order_id", "customer_id", "order_status", "order_purchase_timestamp", "order_approved_at",
        "order_delivered_carrier_date", "order_delivered_customer_date", "order_estimated_delivery_date"}),
    "order_items": ("olist_order_items_dataset", {
        "order_id", "order_item_id", "product_id", "seller_id", "shipping_limit_date", "price", "freight_value"}),
    "customers": ("olist_customers_dataset", {
        "customer_id", "customer_unique_id", "customer_zip_code_prefix", "customer_city", "customer_state"}),
    "payments": ("olist_order_payments_dataset", {
        "order_id", "payment_sequential", "payment_type", "payment_installments", "payment_value"}),
    "reviews": ("olist_order_reviews_dataset", {
        "review_id", "order_id", "review_score", "review_comment_title", "review_comment_message",
        "review_creation_date", "review_answer_timestamp"}),
}
REQUIRED = ("sellers", "products", "translation")
ORDER_FILES = ("orders", "order_items", "customers", "payments", "reviews")
# Olist order_status -> our order status
STATUSES = {"created": "PAYMENT_PENDING", "approved": "PAID", "processing": "PAID", "invoiced": "PACKED",
            "shipped": "SHIPPED", "delivered": "DELIVERED", "canceled": "CANCELLED", "unavailable": "CANCELLED"}


def find_files(directory: Path) -> dict[str, Path]:
    found = {}
    for key, (stem, _) in FILES.items():
        for suffix in (".csv", ".csv.gz"):
            if (directory / f"{stem}{suffix}").is_file():
                found[key] = directory / f"{stem}{suffix}"
    return found


def _unit(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**32


@dataclass
class _Reader:
    """Reads one file's rows, checking ids are unique and reporting problems with file/line/column."""

    files: dict[str, Path]
    problems: Problems

    def rows(self, key: str, id_columns: tuple[str, ...] = ()) -> list[tuple[int, dict[str, str]]]:
        path = self.files[key]
        rows, first_line = [], {}
        for line, row in csv_records(path, FILES[key][1], self.problems):
            if id_columns:
                ident = tuple(row[c] for c in id_columns)
                if not all(ident):
                    self.problems.add(path, line, id_columns[0], "is empty")
                    continue
                first = first_line.setdefault(ident, line)
                if first != line:
                    self.problems.add(path, line, id_columns[-1], f"duplicate id {'/'.join(ident)} (first on line {first})")
                    continue
            rows.append((line, row))
        return rows

    def number(self, key, line, row, column, kind=float, optional=True):
        return parse_number(row[column], kind, self.files[key], line, column, self.problems, optional=optional)

    def time(self, key, line, row, column) -> datetime | None:
        text = row[column].strip()
        if not text:
            return None
        try:
            return datetime.fromisoformat(text).replace(tzinfo=SAO_PAULO).astimezone(ZoneInfo("UTC"))
        except ValueError:
            self.problems.add(self.files[key], line, column, f"{text!r} is not a timestamp (YYYY-MM-DD HH:MM:SS)")
            return None

    def reference(self, key, line, column, value, known) -> bool:
        if value not in known:
            self.problems.add(self.files[key], line, column, f"{value} is not in {self.files[_referenced(column)].name}")
            return False
        return True


def _referenced(column: str) -> str:
    return {"product_id": "products", "seller_id": "sellers", "customer_id": "customers", "order_id": "orders"}[column]


def read_olist(directory: Path, max_sellers: int | None = None) -> MarketplaceData:
    """Validate the Olist files in `directory` and build the marketplace tables (ImportRejected
    lists every problem; nothing is returned then). `max_sellers` keeps only the first sellers
    (by id) and their products, for quick trials; it applies to the catalog-only (partial) set."""
    problems = Problems()
    files = find_files(directory)
    for key in REQUIRED:
        if key not in files:
            problems.add(directory / f"{FILES[key][0]}.csv", None, None, "required file is missing")
    present = [key for key in ORDER_FILES if key in files]
    if present and len(present) < len(ORDER_FILES):
        for key in ORDER_FILES:
            if key not in files:
                problems.add(directory / f"{FILES[key][0]}.csv", None, None,
                             f"the order files come together; found {', '.join(present)} but not this one")
    if max_sellers is not None and present:
        raise ValueError("max_sellers applies to the catalog-only set (without the order files)")
    problems.raise_if_any()
    return _Builder(_Reader(files, problems), with_orders=bool(present), max_sellers=max_sellers).build()


class _Builder:
    def __init__(self, reader: _Reader, with_orders: bool, max_sellers: int | None = None) -> None:
        self.reader, self.with_orders, self.max_sellers = reader, with_orders, max_sellers

    def build(self) -> MarketplaceData:
        r = self.reader
        translation = {row["product_category_name"]: row["product_category_name_english"]
                       for _, row in r.rows("translation", ("product_category_name",))}
        sellers = sorted(r.rows("sellers", ("seller_id",)), key=lambda item: item[1]["seller_id"])
        products = r.rows("products", ("product_id",))
        self.all_seller_ids = [row["seller_id"] for _, row in sellers]
        sellers = sellers[:self.max_sellers]
        self.seller_idx = {row["seller_id"]: i for i, (_, row) in enumerate(sellers)}
        self.product_idx = {row["product_id"]: i for i, (_, row) in enumerate(products)}
        if not sellers:
            r.problems.add(r.files["sellers"], None, None, "has no sellers; every product needs one")
            r.problems.raise_if_any()
        history = self._history() if self.with_orders else None
        product_table = self._products(products, translation, history)
        r.problems.raise_if_any()
        tenants, warehouses = self._tenants(sellers)
        categories = sorted({slug for slug in product_table["category_slug"].to_list() if slug})
        empty = self._empty_history()
        return MarketplaceData(
            scale="olist", seed=0, currency="BRL",
            categories=pl.DataFrame({"slug": categories, "name": [c.replace("_", " ").capitalize() for c in categories],
                                     "parent_slug": [None] * len(categories)},
                                    schema={"slug": pl.String, "name": pl.String, "parent_slug": pl.String}),
            tenants=tenants, warehouses=warehouses, products=product_table.drop("sku_attributes", "weight_grams"),
            skus=pl.DataFrame({
                "product_idx": pl.Series(range(product_table.height), dtype=pl.Int32),
                "tenant_idx": product_table["tenant_idx"], "sku_code": product_table["external_ref"],
                "price_cents": product_table["price_cents"], "attributes": product_table["sku_attributes"],
                "weight_grams": product_table["weight_grams"],
            }),
            inventory=pl.DataFrame({"sku_idx": pl.Series(range(product_table.height), dtype=pl.Int32),
                                    "warehouse_idx": product_table["tenant_idx"],
                                    "available": pl.Series([DERIVED_STOCK] * product_table.height, dtype=pl.Int32)}),
            **(history.tables() if history else empty),
        )

    def _tenants(self, sellers) -> tuple[pl.DataFrame, pl.DataFrame]:
        ids = [row["seller_id"] for _, row in sellers]
        cities = [row["seller_city"].strip().title() or "Brazil" for _, row in sellers]
        names = [f"{city} store {sid[:6]}" for city, sid in zip(cities, ids, strict=True)]
        tenants = pl.DataFrame({
            "external_ref": [f"olist:seller:{sid}" for sid in ids],
            "slug": [f"olist-{sid.lower()}" for sid in ids],
            "store_name": names, "legal_name": [f"{name} (Olist seller)" for name in names],
            "plan": ["free"] * len(ids), "tax_rate": [0.0] * len(ids), "share": [1 / max(1, len(ids))] * len(ids),
            "admin_email": [f"{sid.lower()}@sellers.olist.example.com" for sid in ids],
        })
        warehouses = pl.DataFrame({
            "tenant_idx": pl.Series(range(len(ids)), dtype=pl.Int32), "code": ["MAIN"] * len(ids),
            "name": [f"{city} warehouse" for city in cities],
            "city": [f"{row['seller_city']}/{row['seller_state']} {row['seller_zip_code_prefix']}" for _, row in sellers],
        })
        return tenants, warehouses

    def _products(self, products, translation, history) -> pl.DataFrame:
        r = self.reader
        seller_ids = self.all_seller_ids
        rows = []
        for line, row in products:
            pid = row["product_id"]
            dims = {name: r.number("products", line, row, f"product_{name}_cm") for name in ("length", "height", "width")}
            weight = r.number("products", line, row, "product_weight_g")
            photos = r.number("products", line, row, "product_photos_qty", int)
            for column in ("product_name_lenght", "product_description_lenght"):
                r.number("products", line, row, column, int)
            category = row["product_category_name"].strip()
            slug = translation.get(category, category) or None
            label = (slug or "uncategorised").replace("_", " ").capitalize()
            derived = ["title", "description", "stock"]
            if history and pid in history.prices:
                price = round(statistics.median(history.prices[pid]) * 100)
            else:
                derived.append("price")
                price = round(min(5000, (9.90 + 0.015 * (weight or 0)) * (0.6 + 0.8 * _unit(pid))) * 100)
            if history and pid in history.sellers:
                seller = min(history.sellers[pid].items(), key=lambda item: (-item[1], item[0]))[0]
            else:
                derived.append("seller")
                seller = seller_ids[int(hashlib.sha256(pid.encode()).hexdigest(), 16) % len(seller_ids)]
            if seller not in self.seller_idx:
                continue  # left out by max_sellers
            attributes = {"olist_product_id": pid, "olist_category": category, "photos": photos,
                          **{f"{name}_cm": value for name, value in dims.items()}, "derived": ",".join(derived)}
            attributes = {key: value for key, value in attributes.items() if value not in (None, "")}
            rows.append({
                "tenant_idx": self.seller_idx[seller], "external_ref": pid, "category_slug": slug,
                "title": f"{label} item {pid[:8]}",
                "description": f"Olist product {pid} in {label.lower()}"
                               f"{f', {weight:g} g' if weight else ''}. Title derived: Olist publishes none.",
                "brand": None, "attributes": json.dumps(attributes), "sku_attributes": "{}",
                "weight_grams": int(weight) if weight is not None else None, "price_cents": max(1, price),
            })
        schema = {"tenant_idx": pl.Int32, "external_ref": pl.String, "category_slug": pl.String, "title": pl.String,
                  "description": pl.String, "brand": pl.String, "attributes": pl.String, "sku_attributes": pl.String,
                  "weight_grams": pl.Int32, "price_cents": pl.Int64}
        return pl.DataFrame(rows, schema=schema)

    def _history(self) -> _History:
        return _History(self.reader, self.seller_idx, self.product_idx).read()

    @staticmethod
    def _empty_history() -> dict[str, pl.DataFrame]:
        return {name: pl.DataFrame(schema=schema) for name, schema in _History.SCHEMAS.items()}


class _History:
    SCHEMAS = {
        "buyers": {"external_ref": pl.String, "email": pl.String, "full_name": pl.String, "city": pl.String},
        "events": {"session_idx": pl.Int32, "user_idx": pl.Int32, "bot": pl.Boolean, "event_type": pl.String,
                   "product_idx": pl.Int32, "sku_idx": pl.Int32, "position": pl.Int32, "quantity": pl.Int32,
                   "occurred_at": pl.Datetime("ms", "UTC"), "query": pl.String},
        "orders": {"id": pl.String, "buyer_idx": pl.Int32, "status": pl.String, "shipping_method": pl.String,
                   "payment_method": pl.String, **{c: pl.Datetime("us", "UTC") for c in (
                       "placed_at", "paid_at", "packed_at", "shipped_at", "delivered_at", "cancelled_at",
                       "return_requested_at", "refunded_at")}},
        "sub_orders": {"order_idx": pl.Int32, "tenant_idx": pl.Int32, "items_total_cents": pl.Int64,
                       "tax_total_cents": pl.Int64, "shipping_total_cents": pl.Int64, "commission_cents": pl.Int64},
        "order_items": {"item_idx": pl.UInt32, "order_idx": pl.Int32, "product_idx": pl.Int32, "sku_idx": pl.Int32,
                        "tenant_idx": pl.Int32, "quantity": pl.Int32, "unit_price_cents": pl.Int64},
        "payments": {"order_idx": pl.Int32, "attempt": pl.Int16, "status": pl.String, "method": pl.String,
                     "amount_cents": pl.Int64, "created_at": pl.Datetime("us", "UTC"), "failure_reason": pl.String},
        "reviews": {"id": pl.String, "item_idx": pl.UInt32, "buyer_idx": pl.Int32, "product_idx": pl.Int32,
                    "rating": pl.Int16, "comment": pl.String, "created_at": pl.Datetime("us", "UTC")},
    }

    def __init__(self, reader: _Reader, seller_idx: dict[str, int], product_idx: dict[str, int]) -> None:
        self.r, self.seller_idx, self.product_idx = reader, seller_idx, product_idx
        self.prices: dict[str, list[float]] = defaultdict(list)
        self.sellers: dict[str, Counter] = defaultdict(Counter)
        self.out: dict[str, list[dict]] = defaultdict(list)

    def read(self) -> _History:
        r = self.r
        customers = {row["customer_id"]: row for _, row in r.rows("customers", ("customer_id",))}
        unique_people = sorted({row["customer_unique_id"] for row in customers.values()})
        buyer_idx = {person: i for i, person in enumerate(unique_people)}
        city = {row["customer_unique_id"]: row["customer_city"].title() for row in customers.values()}
        self.out["buyers"] = [{"external_ref": f"olist:customer:{p}", "email": f"{p}@customers.olist.example.com",
                               "full_name": None, "city": city[p]} for p in unique_people]
        orders = r.rows("orders", ("order_id",))
        order_idx = {row["order_id"]: i for i, (_, row) in enumerate(orders)}
        lines = self._items(order_idx)
        for line, row in orders:
            known = r.reference("orders", line, "customer_id", row["customer_id"], customers)
            self._order(line, row, buyer_idx[customers[row["customer_id"]]["customer_unique_id"]] if known else None)
        self._sub_orders_and_items(lines)
        self._payments(order_idx)
        self._reviews(order_idx, buyer_idx, customers, orders)
        return self

    def _items(self, order_idx) -> dict[int, dict[tuple[str, str], list]]:
        r, lines = self.r, defaultdict(dict)
        for line, row in r.rows("order_items", ("order_id", "order_item_id")):
            known = [r.reference("order_items", line, column, row[column], mapping) for column, mapping in
                     (("order_id", order_idx), ("product_id", self.product_idx), ("seller_id", self.seller_idx))]
            price = r.number("order_items", line, row, "price", optional=False)
            freight = r.number("order_items", line, row, "freight_value", optional=False)
            if not all(known) or price is None or freight is None:
                continue
            self.prices[row["product_id"]].append(price)
            self.sellers[row["product_id"]][row["seller_id"]] += 1
            key = (row["seller_id"], row["product_id"])
            entry = lines[order_idx[row["order_id"]]].setdefault(key, [0, price, 0.0])
            entry[0] += 1  # Olist lists one row per unit
            entry[2] += freight
        return lines

    def _order(self, line: int, row: dict, buyer: int | None) -> None:
        """One order row (a row with problems still takes its place, so indexes stay aligned; the
        problems reject the import before anything is written)."""
        status = STATUSES.get(row["order_status"])
        if status is None:
            self.r.problems.add(self.r.files["orders"], line, "order_status", f"unknown status {row['order_status']!r}")
        t = {c: self.r.time("orders", line, row, c) for c in (
            "order_purchase_timestamp", "order_approved_at", "order_delivered_carrier_date",
            "order_delivered_customer_date")}
        placed = t["order_purchase_timestamp"]
        if placed is None:
            self.r.problems.add(self.r.files["orders"], line, "order_purchase_timestamp", "is empty")
        if status is None or placed is None or buyer is None:
            self.out["orders"].append({"status": status, "paid_at": None, "placed_at": placed})
            return
        paid = t["order_approved_at"] or (placed if status not in ("PAYMENT_PENDING", "CANCELLED") else None)
        shipped = t["order_delivered_carrier_date"] if status in ("SHIPPED", "DELIVERED", "CANCELLED") else None
        delivered = t["order_delivered_customer_date"] if status == "DELIVERED" else None
        last = max(moment for moment in (placed, paid, shipped, delivered) if moment is not None)
        self.out["orders"].append({
            "id": str(uuid.uuid5(OLIST_NAMESPACE, f"order:{row['order_id']}")), "buyer_idx": buyer, "status": status,
            "shipping_method": "standard", "payment_method": "card", "placed_at": placed, "paid_at": paid,
            "packed_at": shipped or (paid if status == "PACKED" else None), "shipped_at": shipped,
            "delivered_at": delivered, "cancelled_at": last if status == "CANCELLED" else None,
            "return_requested_at": None, "refunded_at": None,
        })

    def _sub_orders_and_items(self, lines) -> None:
        for order_idx in range(len(self.out["orders"])):
            by_seller = defaultdict(list)
            for (seller, product), entry in sorted(lines.get(order_idx, {}).items()):
                by_seller[seller].append((product, *entry))
            for seller, entries in sorted(by_seller.items(), key=lambda item: self.seller_idx[item[0]]):
                tenant = self.seller_idx[seller]
                items_total = sum(round(price * 100) * quantity for _, quantity, price, _ in entries)
                self.out["sub_orders"].append({
                    "order_idx": order_idx, "tenant_idx": tenant, "items_total_cents": items_total,
                    "tax_total_cents": 0, "shipping_total_cents": round(sum(f for *_, f in entries) * 100),
                    "commission_cents": round(items_total / 10)})
                for product, quantity, price, _ in entries:
                    self.out["order_items"].append({
                        "item_idx": len(self.out["order_items"]), "order_idx": order_idx,
                        "product_idx": self.product_idx[product], "sku_idx": self.product_idx[product],
                        "tenant_idx": tenant, "quantity": quantity, "unit_price_cents": round(price * 100)})

    def _payments(self, order_idx) -> None:
        r = self.r
        for line, row in r.rows("payments", ("order_id", "payment_sequential")):
            if not r.reference("payments", line, "order_id", row["order_id"], order_idx):
                continue
            attempt = r.number("payments", line, row, "payment_sequential", int, optional=False)
            value = r.number("payments", line, row, "payment_value", optional=False)
            if attempt is None or value is None:
                continue
            order = self.out["orders"][order_idx[row["order_id"]]]
            status = "captured" if order["paid_at"] else ("failed" if order["status"] == "CANCELLED" else "pending")
            self.out["payments"].append({
                "order_idx": order_idx[row["order_id"]], "attempt": attempt, "status": status,
                "method": row["payment_type"][:32], "amount_cents": round(value * 100),
                "created_at": order["paid_at"] or order["placed_at"], "failure_reason": None})

    def _reviews(self, order_idx, buyer_idx, customers, orders) -> None:
        r = self.r
        first_item = {}
        for item in self.out["order_items"]:
            first_item.setdefault(item["order_idx"], item)
        for line, row in r.rows("reviews", ("review_id", "order_id")):
            if not r.reference("reviews", line, "order_id", row["order_id"], order_idx):
                continue
            score = r.number("reviews", line, row, "review_score", int, optional=False)
            if score is not None and not 1 <= score <= 5:
                r.problems.add(r.files["reviews"], line, "review_score", f"{score} is not between 1 and 5")
                continue
            created = r.time("reviews", line, row, "review_creation_date")
            item = first_item.get(order_idx[row["order_id"]])
            order_row = orders[order_idx[row["order_id"]]][1]
            if score is None or item is None or order_row["customer_id"] not in customers:
                continue  # a review of an order without items has nothing to attach to
            comment = " — ".join(part.strip() for part in (row["review_comment_title"], row["review_comment_message"])
                                 if part.strip())
            self.out["reviews"].append({
                "id": str(uuid.uuid5(OLIST_NAMESPACE, f"review:{row['review_id']}:{row['order_id']}")),
                "item_idx": item["item_idx"], "buyer_idx": buyer_idx[customers[order_row["customer_id"]]["customer_unique_id"]],
                "product_idx": item["product_idx"], "rating": score, "comment": comment,
                "created_at": created or self.out["orders"][item["order_idx"]]["placed_at"]})

    def tables(self) -> dict[str, pl.DataFrame]:
        return {name: pl.DataFrame(self.out.get(name, []), schema=schema) for name, schema in self.SCHEMAS.items()}


def import_olist(directory: Path, progress: Progress | None = None, max_sellers: int | None = None) -> LoadSummary:
    """Validate the Olist files in `directory`, then load them through the services (idempotent)."""
    return load_marketplace(read_olist(directory, max_sellers), progress)


__all__ = ["ImportRejected", "find_files", "import_olist", "read_olist"]
