"""The Olist importer: the full set (fixtures in Olist's published columns) loads as a marketplace
with history; bad files are rejected whole with file, line and column; re-runs change nothing;
the partial set in ../shared/data loads too."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from transactional.datagen.olist import import_olist, read_olist
from transactional.datagen.validation import ImportRejected
from transactional.db import PLATFORM, session_scope
from transactional.models import Category, Order, OrderItem, OutboxEvent, Payment, Product, Review, Sku, Tenant, User

FULL = Path(__file__).parent / "fixtures" / "olist_full"


def _count(model, *where) -> int:
    with session_scope(PLATFORM) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_full_set_loads_sellers_catalog_and_history_and_a_rerun_changes_nothing(db):
    summary = import_olist(FULL)
    assert summary.written["tenants"] == 3 and summary.written["products"] == 5
    with session_scope(PLATFORM) as session:
        statuses = dict(session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
        assert {status.value: n for status, n in statuses.items()} == {
            "DELIVERED": 2, "SHIPPED": 1, "CANCELLED": 1, "PAYMENT_PENDING": 1}
        placed = session.scalar(select(func.min(Order.placed_at)))
        assert placed.isoformat() == "2017-10-02T13:56:33+00:00"  # 10:56:33 in São Paulo
        assert session.scalar(select(func.count()).select_from(Category).where(Category.slug == "health_beauty")) == 1
        # price from the sales (median), quantity from the one-row-per-unit items
        perfume = session.scalar(select(Sku).where(Sku.sku_code == "1e9e8ef04dbcff4541ed26657ea517e5"))
        assert (perfume.price, perfume.currency) == (Decimal("29.99"), "BRL")
        assert session.scalar(select(OrderItem.quantity).where(OrderItem.sku_id == perfume.id)
                              .order_by(OrderItem.quantity.desc()).limit(1)) == 2
        derived = session.scalar(select(Product.attributes).where(Product.external_ref == "9dc1a7de274444849c219cff195d0b71"))
        assert derived["derived"] == "title,description,stock,price,seller" and "olist_category" not in derived
        repeat_buyer = session.scalar(select(User.id).where(User.external_ref.like("olist:customer:861eff%")))
        assert session.scalar(select(func.count()).select_from(Order).where(Order.buyer_id == repeat_buyer)) == 2
    assert _count(Payment) == 6
    # three Olist reviews (one review id covers two orders); the repeat buyer reviewed the same
    # product twice, and a buyer keeps one review per product
    assert _count(Review) == 2

    outbox = _count(OutboxEvent)
    again = import_olist(FULL)
    assert sum(again.written.values()) == 0
    assert _count(OutboxEvent) == outbox


def _broken_copy(tmp_path: Path, edits: dict[str, tuple[str, str]]) -> Path:
    target = tmp_path / "olist"
    shutil.copytree(FULL, target)
    for name, (old, new) in edits.items():
        path = target / name
        path.write_bytes(path.read_bytes().replace(old.encode(), new.encode() if isinstance(new, str) else new))
    return target


def test_bad_files_are_rejected_with_file_line_and_column_and_nothing_is_written(db, tmp_path):
    directory = _broken_copy(tmp_path, {
        "olist_order_items_dataset.csv": ("118.70", "1l8.70"),
        "olist_products_dataset.csv": ('"96bd76ec8810374ed1b65e291975717f"', '"1e9e8ef04dbcff4541ed26657ea517e5"'),
        "olist_order_payments_dataset.csv": ("boleto,1,40.60", "boleto,1,40.60,9"),
        "olist_orders_dataset.csv": ("2018-02-13 21:18:39", "13/02/2018"),
    })
    (directory / "olist_sellers_dataset.csv").write_bytes(
        (directory / "olist_sellers_dataset.csv").read_bytes().replace(b"campinas", b"campinas\xff"))
    with pytest.raises(ImportRejected) as caught:
        import_olist(directory)
    reported = {(p.file, p.line, p.column) for p in caught.value.problems}
    assert ("olist_order_items_dataset.csv", 4, "price") in reported
    assert ("olist_products_dataset.csv", 4, "product_id") in reported  # duplicate id
    assert ("olist_order_payments_dataset.csv", 4, None) in reported  # wrong field count
    assert ("olist_orders_dataset.csv", 6, "order_purchase_timestamp") in reported
    assert ("olist_sellers_dataset.csv", 2, None) in reported  # not UTF-8
    # items of the duplicated product no longer resolve: reported against order_items
    assert ("olist_order_items_dataset.csv", 6, "product_id") in reported
    assert _count(Tenant) == 0 and _count(Product) == 0


def test_missing_columns_and_incomplete_order_files_are_reported(db, tmp_path):
    directory = _broken_copy(tmp_path, {"olist_products_dataset.csv": ("product_weight_g", "weight")})
    (directory / "olist_order_payments_dataset.csv").unlink()
    with pytest.raises(ImportRejected) as caught:
        read_olist(directory)
    text = str(caught.value)
    assert "olist_order_payments_dataset.csv: the order files come together" in text
    directory = _broken_copy(tmp_path / "second", {"olist_products_dataset.csv": ("product_weight_g", "weight")})
    with pytest.raises(ImportRejected, match=r"olist_products_dataset.csv:1 \[product_weight_g\]: missing column"):
        read_olist(directory)


@pytest.mark.slow
@pytest.mark.shared_data
def test_partial_set_from_shared_data_validates_whole_and_loads(db, shared_data):
    directory = shared_data / "olist"
    data = read_olist(directory)
    assert (data.tenants.height, data.products.height, data.orders.height) == (3_095, 32_951, 0)
    assert data.products["category_slug"].null_count() == 610
    # loading every seller takes minutes on a shared 2-core machine: load the first 100 sellers
    subset = read_olist(directory, max_sellers=100)
    summary = import_olist(directory, max_sellers=100)
    assert summary.written["tenants"] == 100
    assert summary.written["products"] == subset.products.height > 0
    with session_scope(PLATFORM) as session:
        translated = session.scalar(select(func.count()).select_from(Category).where(Category.slug == "health_beauty"))
        stock = session.scalar(select(func.count()).select_from(Sku))
    assert translated == 1 and stock == subset.products.height
