"""The generator is deterministic, and the history it makes has the structure the behaviour model
promises (transactional.datagen.model): the ML side relies on each of these."""

from __future__ import annotations

from functools import cache

import numpy as np
import polars as pl
import pytest

from transactional.datagen.data import MarketplaceData
from transactional.datagen.generator import generate_marketplace
from transactional.datagen.model import HISTORY_END, resolve_scale
from transactional.datagen.vocabulary import leaves


@cache
def small() -> MarketplaceData:
    return generate_marketplace("small", seed=11)


def test_same_seed_gives_identical_bytes_and_another_seed_differs():
    first, again = generate_marketplace("tiny", seed=5), generate_marketplace("tiny", seed=5)
    assert first.to_bytes() == again.to_bytes()
    assert generate_marketplace("tiny", seed=6).to_bytes() != first.to_bytes()


def test_saved_marketplace_loads_back_to_the_same_bytes(tmp_path):
    data = generate_marketplace("tiny", seed=3)
    data.save(tmp_path / "m")
    assert MarketplaceData.load(tmp_path / "m").to_bytes() == data.to_bytes()


def test_scales_are_named_or_a_product_count():
    assert resolve_scale("small").products == 2_000
    assert resolve_scale("500").products == 500
    with pytest.raises(ValueError, match="scale must be"):
        resolve_scale("huge")


def test_every_table_is_filled_and_references_stay_in_range():
    data = small()
    assert all(height > 0 for height in data.counts().values()), data.counts()
    assert data.skus["product_idx"].max() < data.products.height
    assert data.order_items["sku_idx"].max() < data.skus.height
    assert data.events["product_idx"].max() < data.products.height
    # An order item's SKU belongs to its product, and its tenant is the product's.
    sku_product = data.skus["product_idx"].to_numpy()[data.order_items["sku_idx"].to_numpy()]
    assert (sku_product == data.order_items["product_idx"].to_numpy()).all()
    assert data.events["occurred_at"].max() < pl.Series([HISTORY_END]).dt.offset_by("1d")[0]


def test_a_search_reports_how_many_products_its_category_has():
    data = small()
    leaf_products = data.products.group_by("category_slug").len()
    nouns = pl.DataFrame([(leaf.slug, leaf.nouns[0]) for _, leaf in leaves()], schema=["category_slug", "query"],
                         orient="row")
    expected = dict(nouns.join(leaf_products, on="category_slug").group_by("query").agg(pl.col("len").sum()).iter_rows())
    searches = data.events.filter(pl.col("event_type") == "search")
    assert searches.height > 0 and searches["result_count"].null_count() == 0
    assert all(count == expected[query] for query, count in searches.select("query", "result_count").iter_rows())
    assert data.events.filter(pl.col("event_type") != "search")["result_count"].null_count() == \
        data.events.height - searches.height


def test_titles_are_readable_and_drawn_from_the_category_vocabulary():
    products = small().products
    by_slug = {leaf.slug: leaf for _, leaf in leaves()}
    for title, slug in products.select("title", "category_slug").head(50).iter_rows():
        assert any(noun in title for noun in by_slug[slug].nouns), (title, slug)


def test_item_popularity_has_a_heavy_tail():
    views = small().events.filter(pl.col("event_type") == "view", ~pl.col("bot"))
    counts = np.sort(views.group_by("product_idx").len()["len"].to_numpy())[::-1]
    top_one_percent = counts[: max(1, len(counts) // 100)].sum() / counts.sum()
    assert top_one_percent > 0.08  # a uniform catalog would give 0.01


def test_next_view_depends_on_the_current_view():
    data = small()
    leaf_of = data.products["category_slug"].to_numpy()
    views = data.events.filter(pl.col("event_type") == "view", ~pl.col("bot")).sort("session_idx", "occurred_at")
    session, product = views["session_idx"].to_numpy(), views["product_idx"].to_numpy()
    consecutive = session[1:] == session[:-1]
    same_leaf = (leaf_of[product[1:]] == leaf_of[product[:-1]])[consecutive].mean()
    _, leaf_counts = np.unique(leaf_of[product], return_counts=True)
    chance = ((leaf_counts / leaf_counts.sum()) ** 2).sum()
    assert same_leaf > 3 * chance


def test_complementary_items_are_bought_together_more_often_than_chance():
    data = small()
    leaf_of = data.products["category_slug"].to_numpy()
    complements = {(leaf.slug, other) for _, leaf in leaves() for other in leaf.complements}

    def complementary_pairs(order_idx: np.ndarray) -> int:
        items = pl.DataFrame({"order": order_idx, "leaf": leaf_of[data.order_items["product_idx"].to_numpy()]})
        pairs = items.join(items, on="order").filter(pl.col("leaf") != pl.col("leaf_right"))
        return sum((a, b) in complements for a, b in pairs.select("leaf", "leaf_right").iter_rows())

    observed = complementary_pairs(data.order_items["order_idx"].to_numpy())
    shuffled = complementary_pairs(np.random.default_rng(0).permutation(data.order_items["order_idx"].to_numpy()))
    assert observed > 3 * max(shuffled, 1)


def test_consumables_are_bought_again():
    data = small()
    items = data.order_items.join(data.orders.with_row_index("order_idx").select(
        pl.col("order_idx").cast(pl.Int32), "buyer_idx"), on="order_idx")
    consumable = {leaf.slug for _, leaf in leaves() if leaf.consumable}
    pairs = items.group_by("buyer_idx", "product_idx").agg(pl.col("order_idx").n_unique().alias("orders"))
    pairs = pairs.with_columns(consumable=pl.Series(
        [slug in consumable for slug in data.products["category_slug"].to_numpy()[pairs["product_idx"].to_numpy()]]))
    repeat_rate = dict(pairs.group_by("consumable").agg((pl.col("orders") > 1).mean()).iter_rows())
    assert repeat_rate[True] > 3 * repeat_rate[False]


def test_weekends_are_busier_than_weekdays():
    sessions = (small().events.filter(~pl.col("bot")).group_by("session_idx")
                .agg(pl.col("occurred_at").min()).with_columns(day=pl.col("occurred_at").dt.date()))
    per_day = sessions.group_by("day").len().with_columns(weekday=pl.col("day").dt.weekday())
    mean_by_weekday = dict(per_day.group_by("weekday").agg(pl.col("len").mean()).iter_rows())
    weekend = (mean_by_weekday[6] + mean_by_weekday[7]) / 2
    midweek = (mean_by_weekday[1] + mean_by_weekday[2] + mean_by_weekday[3]) / 3
    assert weekend > 1.2 * midweek


def test_bots_are_distinguishable_from_shoppers():
    events = small().events
    per_session = events.group_by("session_idx", "bot").agg(
        pl.len().alias("events"), pl.col("event_type").is_in(["add_to_cart", "purchase"]).any().alias("buys"),
        (pl.col("occurred_at").max() - pl.col("occurred_at").min()).dt.total_seconds().alias("seconds"))
    bots, humans = per_session.filter(pl.col("bot")), per_session.filter(~pl.col("bot"))
    assert bots.height > 0
    assert not bots["buys"].any()
    assert bots["events"].median() > 3 * humans["events"].median()
    bot_rate = (bots["events"] / bots["seconds"].clip(1)).median()
    human_rate = (humans["events"] / humans["seconds"].clip(1)).median()
    assert bot_rate > 5 * human_rate
    assert events.filter(pl.col("bot"))["user_idx"].null_count() == events.filter(pl.col("bot")).height


def test_order_lifecycle_follows_the_age_of_the_order():
    orders = small().orders
    delivered = orders.filter(pl.col("status") == "DELIVERED")
    assert (delivered["delivered_at"] > delivered["shipped_at"]).all()
    assert (delivered["shipped_at"] > delivered["paid_at"]).all()
    assert orders.filter(pl.col("status") == "PAYMENT_FAILED")["paid_at"].null_count() == \
        orders.filter(pl.col("status") == "PAYMENT_FAILED").height
    # recent orders have not been delivered yet
    recent = orders.filter(pl.col("placed_at") > pl.lit(HISTORY_END).dt.offset_by("-1d"))
    assert recent.filter(pl.col("status") == "DELIVERED").height == 0
