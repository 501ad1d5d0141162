"""The catalog: the platform's category tree and each tenant's products with their SKUs.

Every product change takes one path: build the product's new content (`ProductData`), compare
it with what is stored, and write only the difference, set-based (multi-row INSERT ... ON
CONFLICT over json_to_recordset; COPY cannot write RLS tables), together with a
`ProductVersion` holding the new content as a snapshot. API edits, rollbacks and bulk imports
of 100k rows all use that path, so versioning, `Product.min_price` and the product rules cannot
drift apart between them. The capture trigger of 0002 writes the outbox and the audit log.

Category slugs are materialised paths ("home/kitchen"): a node's slug is its parent's slug plus
its own segment, so a path names one node, and moving a node rewrites its subtree's slugs.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any

from babel.numbers import list_currencies
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import JSON, ColumnElement, Select, Uuid, bindparam, cast, func, select, text, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from transactional.db import AccessContext, acting_as
from transactional.errors import Conflict, Forbidden, NotFound, Unprocessable
from transactional.models import Category, Product, ProductStatus, ProductVersion, Sku

# ---------------------------------------------------------------------------------------------
# Value types shared by the API, bulk uploads and the service contract
# ---------------------------------------------------------------------------------------------

SLUG_SEGMENT = r"[a-z0-9][a-z0-9_-]*"
CategorySegment = Annotated[str, StringConstraints(pattern=rf"^{SLUG_SEGMENT}$", max_length=64)]
CategoryPath = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=rf"^{SLUG_SEGMENT}(/{SLUG_SEGMENT})*$", max_length=255),
]
_CATEGORY_PATHS = TypeAdapter(list[CategoryPath])


@lru_cache
def _iso_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def _iso_currency(code: str) -> str:
    if code not in _iso_currencies():
        raise ValueError(f"{code} is not an ISO 4217 currency code")
    return code


Currency = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, min_length=3, max_length=3),
    AfterValidator(_iso_currency),
]
CENT = Decimal("0.01")
# Quantised to cents so "12.5" and the stored 12.50 compare (and snapshot) equal.
Price = Annotated[
    Decimal, Field(ge=0, max_digits=14, decimal_places=2), AfterValidator(lambda p: p.quantize(CENT))
]
Text = Annotated[str, StringConstraints(strip_whitespace=True)]
SkuCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
ProductRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
AttributeKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
AttributeValue = Annotated[str, StringConstraints(max_length=500)] | bool | int | float
Attributes = Annotated[dict[AttributeKey, AttributeValue], Field(max_length=100)]


def _json_text(value: Any) -> Any:
    """Spreadsheet cells carry objects and lists as JSON text."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg})") from exc
    return value


class Image(BaseModel):
    """A product image: its URL and optional alternative text (a bare URL string is accepted)."""

    url: HttpUrl
    alt: Annotated[str, StringConstraints(max_length=300)] | None = None

    @model_validator(mode="before")
    @classmethod
    def from_bare_url(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value


Images = Annotated[list[Image], Field(max_length=50)]


class SkuData(BaseModel):
    """The editable content of one SKU; sku_code is its identity within the tenant."""

    sku_code: SkuCode
    price: Price
    currency: Currency
    attributes: Attributes = {}
    weight_grams: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    low_stock_threshold: Annotated[int, Field(ge=0, le=1_000_000)] = 5
    is_active: bool = True


class ProductData(BaseModel):
    """The editable content of a product with all its SKUs; a version snapshot is exactly this."""

    external_ref: ProductRef | None = None
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    description: Annotated[str, StringConstraints(max_length=20_000)] = ""
    category_id: uuid.UUID | None = None
    brand: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None
    attributes: Attributes = {}
    images: Images = []
    status: ProductStatus = ProductStatus.draft
    skus: Annotated[list[SkuData], Field(max_length=1000)] = []

    def snapshot(self) -> Snapshot:
        return product_snapshot(
            **{name: getattr(self, name) for name in PRODUCT_FIELDS},
            images=[image.model_dump(mode="json") for image in self.images],
            skus=[sku_snapshot(**sku.model_dump()) for sku in self.skus],
        )


# A product's content in canonical JSON form: what versions store and what changes are compared
# by. Built by these two functions only, from validated models, database rows and import rows
# alike, so equal content always compares equal (SKUs in code order, prices as cent strings).
Snapshot = dict[str, Any]
PRODUCT_FIELDS = ("external_ref", "title", "description", "category_id", "brand", "attributes", "status")


def sku_snapshot(
    *,
    sku_code: str,
    price: Decimal,
    currency: str,
    attributes: dict,
    weight_grams: int | None,
    low_stock_threshold: int,
    is_active: bool,
) -> Snapshot:
    return {
        "sku_code": sku_code,
        "price": str(price),
        "currency": currency,
        "attributes": attributes,
        "weight_grams": weight_grams,
        "low_stock_threshold": low_stock_threshold,
        "is_active": is_active,
    }


def product_snapshot(
    *,
    external_ref: str | None,
    title: str,
    description: str,
    category_id: uuid.UUID | str | None,
    brand: str | None,
    attributes: dict,
    images: list[dict],
    status: ProductStatus | str,
    skus: list[Snapshot],
) -> Snapshot:
    return {
        "external_ref": external_ref,
        "title": title,
        "description": description,
        "category_id": str(category_id) if category_id else None,
        "brand": brand,
        "attributes": attributes,
        "images": images,
        "status": ProductStatus(status).value,
        "skus": sorted(skus, key=lambda sku: sku["sku_code"]),
    }


def min_price(snapshot: Snapshot) -> Decimal | None:
    """The lowest price among active SKUs (storefront filters and sorts on it)."""
    return min((Decimal(sku["price"]) for sku in snapshot["skus"] if sku["is_active"]), default=None)


def product_rule_violations(snapshot: Snapshot) -> list[tuple[str, str]]:
    """Rules on a whole product (field, reason); pydantic checks each value on its own."""
    violations = []
    codes = [sku["sku_code"] for sku in snapshot["skus"]]
    if len(set(codes)) != len(codes):
        duplicates = sorted({code for code in codes if codes.count(code) > 1})
        violations.append(("sku_code", f"SKU codes repeat within the product: {', '.join(duplicates)}"))
    currencies = sorted({sku["currency"] for sku in snapshot["skus"]})
    if len(currencies) > 1:
        violations.append(("currency", f"a product's SKUs share one currency, found {', '.join(currencies)}"))
    if snapshot["status"] == ProductStatus.active.value and not any(
        sku["is_active"] for sku in snapshot["skus"]
    ):
        violations.append(("status", "an active product needs at least one active SKU"))
    return violations


def _check_rules(snapshot: Snapshot) -> None:
    violations = product_rule_violations(snapshot)
    if violations:
        raise Unprocessable(violations[0][1], errors=[{"field": f, "reason": r} for f, r in violations])


class ProductRow(BaseModel):
    """One SKU of a product in a bulk import; rows sharing `product_ref` form one product and must
    agree on the product columns (title ... status)."""

    model_config = ConfigDict(extra="forbid")

    product_ref: ProductRef = Field(description="the seller's product reference; groups SKUs into a product")
    sku_code: SkuCode = Field(description="the SKU's code, unique within the store")
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    description: Annotated[str, StringConstraints(max_length=20_000)] = ""
    category: CategoryPath | None = Field(
        None, description="an existing category slug path, e.g. home/kitchen"
    )
    brand: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] | None = None
    attributes: Attributes = Field({}, description="product attributes, a JSON object")
    images: Images = Field([], description='JSON array of URLs or {"url", "alt"} objects')
    status: ProductStatus = ProductStatus.draft
    price: Price
    currency: Currency
    sku_attributes: Attributes = Field({}, description="the SKU's attributes, a JSON object")
    weight_grams: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    low_stock_threshold: Annotated[int, Field(ge=0, le=1_000_000)] = 5
    sku_active: bool = True

    @field_validator("attributes", "sku_attributes", "images", mode="before")
    @classmethod
    def decode_json_cells(cls, value: Any) -> Any:
        return _json_text(value)

    def product_columns(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PRODUCT_COLUMNS}

    def sku_snapshot(self) -> Snapshot:
        return sku_snapshot(
            sku_code=self.sku_code,
            price=self.price,
            currency=self.currency,
            attributes=self.sku_attributes,
            weight_grams=self.weight_grams,
            low_stock_threshold=self.low_stock_threshold,
            is_active=self.sku_active,
        )


PRODUCT_COLUMNS = ("title", "description", "category", "brand", "attributes", "images", "status")


class ImportResult(BaseModel):
    rows: int
    products_created: int = 0
    products_updated: int = 0
    products_unchanged: int = 0
    skus_created: int = 0
    skus_updated: int = 0
    skus_unchanged: int = 0


MAX_REPORTED_ERRORS = 1000

# ---------------------------------------------------------------------------------------------
# Categories
# ---------------------------------------------------------------------------------------------


def _segment_name(segment: str) -> str:
    return segment.replace("_", " ").replace("-", " ").capitalize()


def _ancestors(path: str) -> list[str]:
    segments = path.split("/")
    return ["/".join(segments[: depth + 1]) for depth in range(len(segments))]


_INSERT_CATEGORIES = text(
    "INSERT INTO categories (id, slug, name, parent_id)"
    " SELECT gen_random_uuid(), u.slug, u.name, parent.id"
    " FROM json_to_recordset(CAST(:records AS json)) AS u(slug text, name text, parent text)"
    " LEFT JOIN categories AS parent ON parent.slug = u.parent"
    " ON CONFLICT (slug) DO NOTHING"
)


def ensure_categories(session: Session, paths: Iterable[str]) -> dict[str, uuid.UUID]:
    """Create the category nodes on slug paths like "home/kitchen" (ancestors first) unless they
    exist; idempotent. Returns slug path -> id for every node on the paths.

    Trusted server code (data generator, importers) calls this from any scope: categories are
    platform-owned, so it writes them under platform scope for the current transaction."""
    try:
        wanted = _CATEGORY_PATHS.validate_python(list(paths))
    except ValidationError as exc:
        raise Unprocessable(
            "invalid category path",
            errors=[
                {"field": "category", "reason": f"{error['input']!r}: {error['msg']}"}
                for error in exc.errors()
            ],
        ) from exc
    nodes = sorted({node for path in wanted for node in _ancestors(path)}, key=lambda s: (s.count("/"), s))
    if not nodes:
        return {}
    previous = session.info.get("access")
    with acting_as(session, AccessContext("platform", user_id=previous.user_id if previous else None)):
        by_depth: dict[int, list[str]] = defaultdict(list)
        for node in nodes:
            by_depth[node.count("/")].append(node)
        # One statement per depth: a statement does not see the parents it inserts itself.
        for depth in sorted(by_depth):
            level = [
                {
                    "slug": node,
                    "name": _segment_name(node.rsplit("/", 1)[-1]),
                    "parent": node.rsplit("/", 1)[0] if depth else None,
                }
                for node in by_depth[depth]
            ]
            session.execute(_INSERT_CATEGORIES, {"records": _records(level)})
        return _categories_by_slug(session, nodes)


def _categories_by_slug(session: Session, slugs: Iterable[str]) -> dict[str, uuid.UUID]:
    found = session.execute(
        _for_each(slugs, lambda slug: select(Category.slug, Category.id).where(Category.slug == slug))
    )
    return {slug: category_id for slug, category_id in found}


def _for_each(values: Iterable[Any], lookup: Callable[[ColumnElement[str]], Select]) -> Select:
    """The rows of `lookup(value)` for every value (as text), in one statement with one JSON
    parameter however many values there are.

    Each lookup runs once per value, as a LATERAL subquery that OFFSET 0 keeps the planner from
    flattening, so it is an index probe whatever the statistics say. Right after a bulk load they
    can say a table is nearly empty, and a freely planned join then compares every row with
    every value: minutes instead of milliseconds at 100k rows."""
    document = cast(bindparam(None, _records([str(value) for value in values])), JSON)
    wanted = func.json_array_elements_text(document).table_valued("value").render_derived(name="wanted")
    found = lookup(wanted.c.value).offset(0).lateral("found")
    return select(found).select_from(wanted).join(found, true())


def category_tree(session: Session) -> list[dict[str, Any]]:
    """All categories as nested dicts (id, slug, name, parent_id, children), siblings by slug."""
    categories = session.scalars(select(Category).order_by(Category.slug)).all()
    children: dict[uuid.UUID | None, list[dict[str, Any]]] = defaultdict(list)
    for category in categories:
        children[category.parent_id].append(
            {"id": category.id, "slug": category.slug, "name": category.name, "parent_id": category.parent_id}
        )
    for category in categories:
        for node in children[category.parent_id]:
            node.setdefault("children", children[node["id"]])
    return children[None]


def find_category(session: Session, reference: str) -> Category:
    """A category by id or slug path."""
    try:
        condition = Category.id == uuid.UUID(reference)
    except ValueError:
        condition = Category.slug == reference
    category = session.scalars(select(Category).where(condition)).one_or_none()
    if category is None:
        raise NotFound(f"category {reference} not found", field="category")
    return category


def descendant_category_ids(session: Session, category: Category) -> list[uuid.UUID]:
    """The category and every category below it."""
    return list(
        session.scalars(
            select(Category.id).where(
                (Category.slug == category.slug)
                | Category.slug.startswith(category.slug + "/", autoescape=True)
            )
        )
    )


def create_category(session: Session, *, segment: str, name: str, parent_id: uuid.UUID | None) -> Category:
    parent = _parent(session, parent_id)
    category = Category(
        slug=f"{parent.slug}/{segment}" if parent else segment,
        name=name,
        parent_id=parent.id if parent else None,
    )
    session.add(category)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"category {category.slug} already exists", field="slug") from exc
    return category


_UNSET: Any = object()


def update_category(
    session: Session,
    category_id: uuid.UUID,
    *,
    name: str | None = None,
    segment: str | None = None,
    parent_id: uuid.UUID | None = _UNSET,
) -> Category:
    """Rename a category and/or move it under another parent (None: make it a root); the slugs
    of its whole subtree follow."""
    category = session.get(Category, category_id, with_for_update=True)
    if category is None:
        raise NotFound(f"category {category_id} not found", field="category_id")
    if name is not None:
        category.name = name
    new_parent_id = category.parent_id if parent_id is _UNSET else parent_id
    parent = _parent(session, new_parent_id)
    if parent is not None and (parent.id == category.id or parent.slug.startswith(category.slug + "/")):
        raise Conflict("a category cannot move under itself or its own descendant", field="parent_id")
    own_segment = segment or category.slug.rsplit("/", 1)[-1]
    new_slug = f"{parent.slug}/{own_segment}" if parent else own_segment
    category.parent_id = parent.id if parent else None
    old_slug = category.slug
    try:
        with session.begin_nested():
            session.flush()
            if new_slug != old_slug:
                session.execute(
                    text(
                        "UPDATE categories SET slug = :new || substr(slug, length(:old) + 1)"
                        " WHERE slug = :old OR starts_with(slug, :old || '/')"
                    ),
                    {"new": new_slug, "old": old_slug},
                )
    except IntegrityError as exc:
        raise Conflict(f"category {new_slug} already exists", field="slug") from exc
    session.refresh(category)
    return category


def _parent(session: Session, parent_id: uuid.UUID | None) -> Category | None:
    if parent_id is None:
        return None
    parent = session.get(Category, parent_id)
    if parent is None:
        raise Unprocessable(f"parent category {parent_id} not found", field="parent_id")
    return parent


# ---------------------------------------------------------------------------------------------
# Reading stored products
# ---------------------------------------------------------------------------------------------


@dataclass
class StoredProduct:
    id: uuid.UUID
    version: int
    deleted: bool
    snapshot: Snapshot
    sku_ids: dict[str, uuid.UUID] = field(default_factory=dict)

    def revised(self, changes: dict[str, Any]) -> Snapshot:
        """This product's snapshot with `changes` applied, validated as a whole (422 if invalid)."""
        try:
            return ProductData.model_validate({**self.snapshot, **changes}).snapshot()
        except ValidationError as exc:
            raise Unprocessable(
                "the change makes the product invalid",
                errors=[
                    {"field": ".".join(str(part) for part in error["loc"]), "reason": error["msg"]}
                    for error in exc.errors()
                ],
            ) from exc


PRODUCTS = Product.__table__
SKUS = Sku.__table__


def _load_products(session: Session, query: Select) -> dict[uuid.UUID, StoredProduct]:
    """The products `query` selects (whole rows of PRODUCTS), each with its SKUs."""
    stored = {
        row.id: StoredProduct(
            id=row.id,
            version=row.version,
            deleted=row.deleted_at is not None,
            snapshot=product_snapshot(
                **{name: getattr(row, name) for name in PRODUCT_FIELDS}, images=row.images, skus=[]
            ),
        )
        for row in session.execute(query)
    }
    if stored:
        sku_rows = session.execute(
            _for_each(
                stored, lambda product_id: select(SKUS).where(SKUS.c.product_id == cast(product_id, Uuid))
            )
        )
        for row in sorted(sku_rows, key=lambda row: row.sku_code):
            product = stored[row.product_id]
            product.sku_ids[row.sku_code] = row.id
            product.snapshot["skus"].append(
                sku_snapshot(
                    sku_code=row.sku_code,
                    price=row.price,
                    currency=row.currency,
                    attributes=row.attributes,
                    weight_grams=row.weight_grams,
                    low_stock_threshold=row.low_stock_threshold,
                    is_active=row.is_active,
                )
            )
    return stored


def _load_product(session: Session, product_id: uuid.UUID) -> StoredProduct:
    """A live product with its SKUs, locked for the rest of the transaction so that concurrent
    changes of it take turns (and get consecutive versions)."""
    query = select(PRODUCTS).where(PRODUCTS.c.id == product_id).with_for_update()
    product = _load_products(session, query).get(product_id)
    if product is None or product.deleted:
        raise NotFound(f"product {product_id} not found", field="product_id")
    return product


# ---------------------------------------------------------------------------------------------
# Writing changes: one set-based path for every kind of change
# ---------------------------------------------------------------------------------------------


@dataclass
class _Change:
    product_id: uuid.UUID
    before: StoredProduct | None
    snapshot: Snapshot

    def is_effective(self) -> bool:
        return self.before is None or self.before.deleted or self.before.snapshot != self.snapshot

    def changed_skus(self) -> list[Snapshot]:
        """The SKUs that are new or differ from what is stored."""
        before = {sku["sku_code"]: sku for sku in self.before.snapshot["skus"]} if self.before else {}
        return [sku for sku in self.snapshot["skus"] if before.get(sku["sku_code"]) != sku]


@dataclass
class _Written:
    products_created: int = 0
    products_updated: int = 0
    skus_created: int = 0
    skus_updated: int = 0
    versions: dict[uuid.UUID, int] = field(default_factory=dict)


# Each batch travels as one JSON document expanded by json_to_recordset: PostgreSQL parses it in C,
# where binding one array per column costs the client an escape per element.
_UPSERT_PRODUCTS = text(
    "INSERT INTO products (id, tenant_id, external_ref, title, description, category_id, brand, attributes,"
    " images, status, version, min_price, rating_count)"
    " SELECT u.id, :tenant_id, u.external_ref, u.title, u.description, u.category_id, u.brand, u.attributes,"
    " u.images, u.status::productstatus, u.version, u.min_price, 0"
    " FROM json_to_recordset(CAST(:records AS json)) AS u(id uuid, external_ref text, title text,"
    " description text, category_id uuid, brand text, attributes jsonb, images jsonb, status text,"
    " version int, min_price numeric)"
    " ON CONFLICT (id) DO UPDATE SET external_ref = EXCLUDED.external_ref, title = EXCLUDED.title,"
    " description = EXCLUDED.description, category_id = EXCLUDED.category_id, brand = EXCLUDED.brand,"
    " attributes = EXCLUDED.attributes, images = EXCLUDED.images, status = EXCLUDED.status,"
    " version = EXCLUDED.version, min_price = EXCLUDED.min_price, deleted_at = NULL, updated_at = now()"
)

# Ownership of an existing sku_code was checked before writing (see _sku_owners), so the
# conflict update never moves a SKU to another product.
_UPSERT_SKUS = text(
    "INSERT INTO skus (id, tenant_id, product_id, sku_code, price, currency, attributes, weight_grams,"
    " low_stock_threshold, is_active)"
    " SELECT gen_random_uuid(), :tenant_id, u.product_id, u.sku_code, u.price, u.currency, u.attributes,"
    " u.weight_grams, u.low_stock_threshold, u.is_active"
    " FROM json_to_recordset(CAST(:records AS json)) AS u(product_id uuid, sku_code text, price numeric,"
    " currency text, attributes jsonb, weight_grams int, low_stock_threshold int, is_active boolean)"
    " ON CONFLICT (tenant_id, sku_code) DO UPDATE SET price = EXCLUDED.price, currency = EXCLUDED.currency,"
    " attributes = EXCLUDED.attributes, weight_grams = EXCLUDED.weight_grams,"
    " low_stock_threshold = EXCLUDED.low_stock_threshold, is_active = EXCLUDED.is_active, updated_at = now()"
)

_INSERT_VERSIONS = text(
    "INSERT INTO product_versions (id, tenant_id, product_id, version, snapshot, changed_by, change_reason)"
    " SELECT gen_random_uuid(), :tenant_id, u.product_id, u.version, u.snapshot, :actor, :reason"
    " FROM json_to_recordset(CAST(:records AS json)) AS u(product_id uuid, version int, snapshot jsonb)"
)

WRITE_BATCH = 5000


def _records(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, separators=(",", ":"))


def _write(
    session: Session,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    changes: list[_Change],
    reason: str,
) -> _Written:
    """Write the effective changes with their new versions; a change that alters nothing is skipped."""
    written = _Written()
    effective = [change for change in changes if change.is_effective()]
    for start in range(0, len(effective), WRITE_BATCH):
        _write_batch(
            session, tenant_id, actor_user_id, effective[start : start + WRITE_BATCH], reason, written
        )
    return written


def _write_batch(
    session: Session,
    tenant_id: uuid.UUID,
    actor: uuid.UUID | None,
    batch: list[_Change],
    reason: str,
    written: _Written,
) -> None:
    versions = [change.before.version + 1 if change.before else 1 for change in batch]
    snapshots = [change.snapshot for change in batch]
    products = []
    for change, version, snapshot in zip(batch, versions, snapshots, strict=True):
        lowest = min_price(snapshot)
        products.append(
            {
                **snapshot,
                "skus": None,
                "id": str(change.product_id),
                "version": version,
                "min_price": None if lowest is None else str(lowest),
            }
        )
    session.execute(_UPSERT_PRODUCTS, {"tenant_id": tenant_id, "records": _records(products)})
    sku_changes = [(change, sku) for change in batch for sku in change.changed_skus()]
    if sku_changes:
        skus = [{**sku, "product_id": str(change.product_id)} for change, sku in sku_changes]
        session.execute(_UPSERT_SKUS, {"tenant_id": tenant_id, "records": _records(skus)})
    history = [
        {"product_id": str(change.product_id), "version": version, "snapshot": snapshot}
        for change, version, snapshot in zip(batch, versions, snapshots, strict=True)
    ]
    session.execute(
        _INSERT_VERSIONS,
        {"tenant_id": tenant_id, "actor": actor, "reason": reason, "records": _records(history)},
    )
    for change, version in zip(batch, versions, strict=True):
        written.versions[change.product_id] = version
        if change.before is None:
            written.products_created += 1
        else:
            written.products_updated += 1
    for change, sku in sku_changes:
        if change.before is not None and sku["sku_code"] in change.before.sku_ids:
            written.skus_updated += 1
        else:
            written.skus_created += 1


def _sku_owners(
    session: Session, tenant_id: uuid.UUID, codes: list[str]
) -> dict[str, tuple[uuid.UUID, str | None]]:
    """sku_code -> (product id, product external_ref) for the codes that already exist in the tenant."""
    rows = session.execute(
        _for_each(
            codes,
            lambda code: (
                select(Sku.sku_code, Sku.product_id, Product.external_ref)
                .join(Product, Product.id == Sku.product_id)
                .where(Sku.tenant_id == tenant_id, Sku.sku_code == code)
            ),
        )
    )
    return {code: (product_id, ref) for code, product_id, ref in rows}


def _check_category(session: Session, category_id: uuid.UUID | None) -> None:
    if category_id is not None and session.get(Category, category_id) is None:
        raise Unprocessable(f"category {category_id} not found", field="category_id")


@contextmanager
def _as_tenant(session: Session, tenant_id: uuid.UUID, actor_user_id: uuid.UUID | None) -> Iterator[None]:
    """Write as the tenant (RLS checks every row, the audit log names the actor). Callers must
    already be that tenant or the platform: this never widens what a session may do."""
    access = session.info.get("access")
    if access is None or not (
        access.scope == "platform" or (access.scope == "tenant" and access.tenant_id == tenant_id)
    ):
        raise Forbidden("catalog writes need the tenant's own scope or the platform scope", field="tenant_id")
    wanted = AccessContext("tenant", tenant_id=tenant_id, user_id=actor_user_id)
    if access == wanted:
        yield
        return
    with acting_as(session, wanted):
        yield


# ---------------------------------------------------------------------------------------------
# Product operations (the API's)
# ---------------------------------------------------------------------------------------------


def create_product(
    session: Session, *, tenant_id: uuid.UUID, actor_user_id: uuid.UUID | None, data: ProductData
) -> uuid.UUID:
    snapshot = data.snapshot()
    _check_rules(snapshot)
    with _as_tenant(session, tenant_id, actor_user_id):
        _check_category(session, data.category_id)
        _check_new_codes(session, tenant_id, [sku.sku_code for sku in data.skus])
        if data.external_ref is not None and session.scalar(
            select(Product.id).where(
                Product.tenant_id == tenant_id, Product.external_ref == data.external_ref
            )
        ):
            raise Conflict(f"a product with external_ref {data.external_ref} exists", field="external_ref")
        product_id = uuid.uuid4()
        _write(session, tenant_id, actor_user_id, [_Change(product_id, None, snapshot)], "created")
    return product_id


def _check_new_codes(session: Session, tenant_id: uuid.UUID, codes: list[str]) -> None:
    taken = sorted(_sku_owners(session, tenant_id, codes))
    if taken:
        raise Conflict(f"SKU codes already used in this store: {', '.join(taken)}", field="sku_code")


def _apply(
    session: Session,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    stored: StoredProduct,
    after: Snapshot,
    reason: str,
) -> int:
    """Write one product's new content; returns its version (unchanged if nothing changed)."""
    _check_rules(after)
    _check_category(session, after["category_id"])
    written = _write(session, tenant_id, actor_user_id, [_Change(stored.id, stored, after)], reason)
    return written.versions.get(stored.id, stored.version)


def update_product(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    product_id: uuid.UUID,
    changes: dict[str, Any],
) -> int:
    """Change product fields (not SKUs); `changes` holds already validated field values."""
    with _as_tenant(session, tenant_id, actor_user_id):
        stored = _load_product(session, product_id)
        if "external_ref" in changes and changes["external_ref"] not in (
            None,
            stored.snapshot["external_ref"],
        ):
            if session.scalar(
                select(Product.id).where(
                    Product.tenant_id == tenant_id, Product.external_ref == changes["external_ref"]
                )
            ):
                raise Conflict(
                    f"a product with external_ref {changes['external_ref']} exists", field="external_ref"
                )
        return _apply(session, tenant_id, actor_user_id, stored, stored.revised(changes), "updated")


def add_sku(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    product_id: uuid.UUID,
    sku: SkuData,
) -> int:
    with _as_tenant(session, tenant_id, actor_user_id):
        stored = _load_product(session, product_id)
        _check_new_codes(session, tenant_id, [sku.sku_code])
        after = stored.revised({"skus": [*stored.snapshot["skus"], sku.model_dump()]})
        return _apply(session, tenant_id, actor_user_id, stored, after, "sku added")


def update_sku(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    product_id: uuid.UUID,
    sku_id: uuid.UUID,
    changes: dict[str, Any],
) -> int:
    """Change one SKU's price, currency, attributes, weight, threshold or is_active (not its code)."""
    with _as_tenant(session, tenant_id, actor_user_id):
        stored = _load_product(session, product_id)
        code = next((code for code, known_id in stored.sku_ids.items() if known_id == sku_id), None)
        if code is None:
            raise NotFound(f"SKU {sku_id} not found on product {product_id}", field="sku_id")
        skus = [sku | changes if sku["sku_code"] == code else sku for sku in stored.snapshot["skus"]]
        return _apply(
            session, tenant_id, actor_user_id, stored, stored.revised({"skus": skus}), "sku updated"
        )


def rollback_product(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    product_id: uuid.UUID,
    version: int,
) -> int:
    """Make the product equal to the snapshot of `version` again, as a new version. SKUs created
    after that version cannot be deleted (orders may refer to them), so they are deactivated."""
    with _as_tenant(session, tenant_id, actor_user_id):
        stored = _load_product(session, product_id)
        snapshot = session.scalar(
            select(ProductVersion.snapshot).where(
                ProductVersion.product_id == product_id, ProductVersion.version == version
            )
        )
        if snapshot is None:
            raise NotFound(f"product {product_id} has no version {version}", field="version")
        kept = {sku["sku_code"] for sku in snapshot["skus"]}
        later = [sku | {"is_active": False} for sku in stored.snapshot["skus"] if sku["sku_code"] not in kept]
        after = stored.revised({**snapshot, "skus": [*snapshot["skus"], *later]})
        return _apply(session, tenant_id, actor_user_id, stored, after, f"rollback to v{version}")


def delete_product(
    session: Session, *, tenant_id: uuid.UUID, actor_user_id: uuid.UUID | None, product_id: uuid.UUID
) -> None:
    """Soft delete: the product leaves every view; its rows stay for orders and history."""
    with _as_tenant(session, tenant_id, actor_user_id):
        stored = _load_product(session, product_id)
        session.execute(
            text(
                "UPDATE products SET deleted_at = now(), version = version + 1, updated_at = now()"
                " WHERE id = :id"
            ),
            {"id": product_id},
        )
        session.execute(
            _INSERT_VERSIONS,
            {
                "tenant_id": tenant_id,
                "actor": actor_user_id,
                "reason": "deleted",
                "records": _records(
                    [
                        {
                            "product_id": str(product_id),
                            "version": stored.version + 1,
                            "snapshot": stored.snapshot,
                        }
                    ]
                ),
            },
        )


def require_live_product(session: Session, product_id: uuid.UUID) -> None:
    """404 unless the product exists for the caller (RLS) and is not deleted."""
    if (
        session.scalar(select(Product.id).where(Product.id == product_id, Product.deleted_at.is_(None)))
        is None
    ):
        raise NotFound(f"product {product_id} not found", field="product_id")


def product_versions(session: Session, product_id: uuid.UUID) -> list[ProductVersion]:
    """A live product's history, newest first (RLS limits it to the caller's tenant)."""
    require_live_product(session, product_id)
    return list(
        session.scalars(
            select(ProductVersion)
            .where(ProductVersion.product_id == product_id)
            .order_by(ProductVersion.version.desc())
        )
    )


# ---------------------------------------------------------------------------------------------
# Bulk import (the service contract used by the bulk endpoint, the data generator and importers)
# ---------------------------------------------------------------------------------------------


def row_problem(errors: list[dict[str, Any]]) -> Unprocessable:
    """The 422 for bad import rows: every problem ({row, field, reason}) in row order, at most
    MAX_REPORTED_ERRORS of them, with the total in `error_count`."""
    errors = sorted(errors, key=lambda error: error["row"])
    return Unprocessable(
        f"{len(errors)} problem(s) in the rows; nothing was imported",
        errors=errors[:MAX_REPORTED_ERRORS],
        error_count=len(errors),
    )


class _ImportErrors:
    """Problems found in import rows, numbered as the caller numbers its rows."""

    def __init__(self, row_numbers: list[int]) -> None:
        self.row_numbers = row_numbers
        self.items: list[dict[str, Any]] = []

    def number(self, index: int) -> int:
        return self.row_numbers[index]

    def add(self, index: int, field_name: str, reason: str) -> None:
        self.items.append({"row": self.number(index), "field": field_name, "reason": reason})

    def raise_if_any(self) -> None:
        if self.items:
            raise row_problem(self.items)


def _group_rows(rows: list[ProductRow], errors: _ImportErrors) -> dict[str, list[int]]:
    """product_ref -> indexes of its rows; reports repeated SKU codes and product columns that
    disagree with the product's first row."""
    groups: dict[str, list[int]] = defaultdict(list)
    first_row_of_code: dict[str, int] = {}
    for index, row in enumerate(rows):
        if row.sku_code in first_row_of_code:
            errors.add(index, "sku_code", f"repeats the SKU code of row {first_row_of_code[row.sku_code]}")
            continue
        first_row_of_code[row.sku_code] = errors.number(index)
        groups[row.product_ref].append(index)
    for ref, indexes in groups.items():
        expected = rows[indexes[0]].product_columns()
        for index in indexes[1:]:
            actual = rows[index].product_columns()
            for name in PRODUCT_COLUMNS:
                if actual[name] != expected[name]:
                    errors.add(
                        index,
                        name,
                        f"differs from row {errors.number(indexes[0])}, the first row of product {ref}",
                    )
    return groups


def import_products(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    rows: list[ProductRow],
    row_numbers: list[int] | None = None,
) -> ImportResult:
    """Upsert a tenant's products from SKU rows, all or nothing, inside the caller's transaction.

    Products are keyed by product_ref (stored as external_ref) and SKUs by sku_code, so importing
    the same rows again changes nothing and writes no version. SKUs of a product that the rows do
    not mention are kept as they are; a soft-deleted product named again is restored. Every
    problem is reported at once as Unprocessable with errors [{row, field, reason}], rows numbered
    by `row_numbers` (a file's own numbering) or else 1..len(rows)."""
    errors = _ImportErrors(row_numbers or list(range(1, len(rows) + 1)))
    groups = _group_rows(rows, errors)
    with _as_tenant(session, tenant_id, actor_user_id):
        # Imports of one tenant run one at a time, so two uploads cannot race to create a product.
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended('catalog-import:' || :tenant, 0))"),
            {"tenant": str(tenant_id)},
        )
        category_ids = _resolve_categories(session, rows, errors)
        stored_by_ref = {
            stored.snapshot["external_ref"]: stored
            for stored in _load_products(
                session,
                _for_each(
                    groups,
                    lambda ref: (
                        select(PRODUCTS)
                        .where(PRODUCTS.c.tenant_id == tenant_id, PRODUCTS.c.external_ref == ref)
                        .with_for_update()
                    ),
                ),
            ).values()
        }
        owners = _sku_owners(session, tenant_id, [row.sku_code for row in rows])
        changes = []
        for ref, indexes in groups.items():
            stored = stored_by_ref.get(ref)
            for index in indexes:
                owner = owners.get(rows[index].sku_code)
                if owner is not None and owner[1] != ref:
                    errors.add(
                        index,
                        "sku_code",
                        f"belongs to another product ({owner[1] or owner[0]}) in this store",
                    )
            after = _product_from_rows(ref, [rows[index] for index in indexes], stored, category_ids)
            for name, reason in product_rule_violations(after):
                errors.add(indexes[0], name, reason)
            changes.append(_Change(stored.id if stored else uuid.uuid4(), stored, after))
        errors.raise_if_any()
        written = _write(session, tenant_id, actor_user_id, changes, "import")
    return ImportResult(
        rows=len(rows),
        products_created=written.products_created,
        products_updated=written.products_updated,
        products_unchanged=len(groups) - written.products_created - written.products_updated,
        skus_created=written.skus_created,
        skus_updated=written.skus_updated,
        skus_unchanged=len(rows) - written.skus_created - written.skus_updated,
    )


def _resolve_categories(
    session: Session, rows: list[ProductRow], errors: _ImportErrors
) -> dict[str, uuid.UUID]:
    paths = sorted({row.category for row in rows if row.category})
    if not paths:
        return {}
    found = _categories_by_slug(session, paths)
    for index, row in enumerate(rows):
        if row.category and row.category not in found:
            errors.add(
                index, "category", f"no category {row.category}; categories are managed by the platform"
            )
    return found


def _product_from_rows(
    ref: str, rows: list[ProductRow], stored: StoredProduct | None, category_ids: dict[str, uuid.UUID]
) -> Snapshot:
    """The product the rows describe: their product columns, and the stored SKUs updated and
    extended by theirs."""
    first = rows[0]
    skus = {sku["sku_code"]: sku for sku in stored.snapshot["skus"]} if stored else {}
    skus.update((row.sku_code, row.sku_snapshot()) for row in rows)
    return product_snapshot(
        external_ref=ref,
        title=first.title,
        description=first.description,
        category_id=category_ids.get(first.category) if first.category else None,
        brand=first.brand,
        attributes=first.attributes,
        images=[image.model_dump(mode="json") for image in first.images],
        status=first.status,
        skus=list(skus.values()),
    )
