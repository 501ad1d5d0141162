"""Synthetic marketplace interactions from a seed: power-law item popularity, users with a few favourite
categories, sellers owning items, typed events (views far more often than purchases) over time, and
optionally browsing sessions. For tests, the notebook and the benchmark, where real data must not be
shipped."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

EVENT_TYPES = np.array(["view", "add_to_cart", "purchase"])
EVENT_SHARES = np.array([0.8, 0.15, 0.05])
START = 1_700_000_000


@dataclass(frozen=True)
class _Marketplace:
    """Items with a power-law popularity, a category and a seller; users with two favourite categories
    and a power-law activity."""

    popularity: np.ndarray
    item_category: np.ndarray
    item_tenant: np.ndarray
    favourites: np.ndarray
    user_activity: np.ndarray

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        n_users: int,
        n_items: int,
        n_categories: int,
        n_tenants: int,
        exponent: float,
    ) -> _Marketplace:
        return cls(
            popularity=1.0 / np.arange(1, n_items + 1) ** exponent,
            item_category=rng.integers(0, n_categories, n_items),
            item_tenant=rng.integers(0, n_tenants, n_items),
            favourites=rng.integers(0, n_categories, (n_users, 2)),
            user_activity=1.0 / np.arange(1, n_users + 1) ** 0.8,
        )

    def users(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(len(self.user_activity), size=size, p=self.user_activity / self.user_activity.sum())

    def items(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(len(self.popularity), size=size, p=self.popularity / self.popularity.sum())

    def pick_within(
        self, rng: np.random.Generator, items: np.ndarray, rows: np.ndarray, categories: np.ndarray
    ) -> None:
        """Replace `items[rows]` by items of `categories[rows]`, by popularity within the category."""
        for category in np.unique(categories[rows]):
            members = np.flatnonzero(self.item_category == category)
            chosen = np.flatnonzero(rows & (categories == category))
            if len(members):
                weights = self.popularity[members] / self.popularity[members].sum()
                items[chosen] = rng.choice(members, size=len(chosen), p=weights)

    def events(self, rng: np.random.Generator, users: np.ndarray, items: np.ndarray) -> pd.DataFrame:
        """The rows of these (user, item) events, each with a random event type (timestamps to add)."""
        return pd.DataFrame(
            {
                "user_id": [f"u{user}" for user in users],
                "item_id": [f"p{item}" for item in items],
                "category": [f"c{category}" for category in self.item_category[items]],
                "tenant_id": [f"t{tenant}" for tenant in self.item_tenant[items]],
                "event_type": rng.choice(EVENT_TYPES, size=len(items), p=EVENT_SHARES),
            }
        )


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
    market = _Marketplace.draw(rng, n_users, n_items, n_categories, n_tenants, exponent)
    users = market.users(rng, n_interactions)
    within_taste = rng.random(n_interactions) < taste
    items = market.items(rng, n_interactions)
    market.pick_within(rng, items, within_taste, market.favourites[users, rng.integers(0, 2, n_interactions)])
    events = market.events(rng, users, items)
    events["timestamp"] = np.sort(START + rng.random(n_interactions) * days * 86400).astype(np.int64)
    return events


def marketplace_sessions(
    n_sessions: int = 2_000,
    n_users: int = 500,
    n_items: int = 300,
    n_categories: int = 10,
    n_tenants: int = 5,
    mean_length: float = 3.0,
    exponent: float = 1.1,
    taste: float = 0.8,
    days: float = 60.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """marketplace_interactions' columns plus session_id, the events grouped into browsing sessions.

    A session is one user looking around one category (one of their two favourites with probability
    `taste`, otherwise any): a geometric number of items (mean `mean_length`) drawn by popularity
    within it, a minute apart. Across sessions a user's interests mix; within one they do not."""
    rng = np.random.default_rng(random_state)
    market = _Marketplace.draw(rng, n_users, n_items, n_categories, n_tenants, exponent)
    session_user = market.users(rng, n_sessions)
    session_category = np.where(
        rng.random(n_sessions) < taste,
        market.favourites[session_user, rng.integers(0, 2, n_sessions)],
        rng.integers(0, n_categories, n_sessions),
    )
    lengths = rng.geometric(1.0 / mean_length, n_sessions)
    session = np.repeat(np.arange(n_sessions), lengths)
    items = market.items(rng, len(session))  # kept only in a category without items
    market.pick_within(rng, items, np.ones(len(session), dtype=bool), session_category[session])
    starts = START + (rng.random(n_sessions) * days * 86400).astype(np.int64)
    steps = np.arange(len(session)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    events = market.events(rng, session_user[session], items)
    events["timestamp"] = starts[session] + 60 * steps
    events.insert(0, "session_id", [f"s{index}" for index in session])
    return events.sort_values(["timestamp", "session_id"], kind="stable").reset_index(drop=True)
