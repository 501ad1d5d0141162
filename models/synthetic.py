"""Synthetic marketplace interactions from a seed: power-law item popularity, users with a few favourite
categories, sellers owning items, typed events (views far more often than purchases) over time.
For tests, the notebook and the benchmark, where real data must not be shipped."""

from __future__ import annotations

import numpy as np
import pandas as pd

EVENT_TYPES = np.array(["view", "add_to_cart", "purchase"])
EVENT_SHARES = np.array([0.8, 0.15, 0.05])


def marketplace_interactions(
    n_interactions: int = 10_000,
    n_users: int = 500,
    n_items: int = 300,
    n_categories: int = 10,
    n_tenants: int = 5,
    exponent: float = 1.1,
    taste: float = 0.8,
    days: float = 60.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Columns user_id, item_id, category, tenant_id, event_type, timestamp (epoch seconds).

    Item i's popularity falls as rank^-exponent; with probability `taste` a user picks within one of
    their two favourite categories, otherwise from the whole catalogue."""
    rng = np.random.default_rng(random_state)
    popularity = 1.0 / np.arange(1, n_items + 1) ** exponent
    item_category = rng.integers(0, n_categories, n_items)
    item_tenant = rng.integers(0, n_tenants, n_items)
    favourites = rng.integers(0, n_categories, (n_users, 2))
    user_activity = 1.0 / np.arange(1, n_users + 1) ** 0.8
    users = rng.choice(n_users, size=n_interactions, p=user_activity / user_activity.sum())
    within_taste = rng.random(n_interactions) < taste
    items = rng.choice(n_items, size=n_interactions, p=popularity / popularity.sum())
    by_category = [np.flatnonzero(item_category == category) for category in range(n_categories)]
    chosen_category = favourites[users, rng.integers(0, 2, n_interactions)]
    for category, members in enumerate(by_category):
        rows = np.flatnonzero(within_taste & (chosen_category == category))
        if len(rows) and len(members):
            weights = popularity[members] / popularity[members].sum()
            items[rows] = rng.choice(members, size=len(rows), p=weights)
    start = 1_700_000_000
    return pd.DataFrame(
        {
            "user_id": [f"u{user}" for user in users],
            "item_id": [f"p{item}" for item in items],
            "category": [f"c{category}" for category in item_category[items]],
            "tenant_id": [f"t{tenant}" for tenant in item_tenant[items]],
            "event_type": rng.choice(EVENT_TYPES, size=n_interactions, p=EVENT_SHARES),
            "timestamp": np.sort(start + rng.random(n_interactions) * days * 86400).astype(np.int64),
        }
    )
