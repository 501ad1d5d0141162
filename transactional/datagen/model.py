"""The shopper behaviour model and the marketplace scales.

Every number that shapes the generated history lives here, with what it means, so the
structure the ML side is meant to learn is documented in one place:

- **Tenants** have Zipf-distributed sizes (share of the catalog of the k-th largest ∝ k^-s) and
  specialise in a few root categories.
- **Items** have power-law popularity (weight ∝ rank^-a over a random ranking, times a quality
  term), a latent quality that drives add-to-cart and ratings, and a price drawn log-normally
  around their leaf category's median; a price *band* is the item's quintile within its leaf.
- **Users** have latent category preferences (a Dirichlet draw over root categories, so most
  users care about two or three), a preferred price band, and a log-normal activity level
  (a few users make most sessions).
- **Sessions** start on days weighted by a weekly pattern and at hours drawn from a daily
  profile. The first view follows the user's preferences; each next view depends on the
  current one (a Markov chain): it stays in the same leaf and a neighbouring price band,
  jumps to a complementary leaf, falls back to the user's preferences, or (noise) is uniform.
- **Purchases**: a view adds to cart with a probability raised by the item's quality and by a
  match with the user's price band; some adds are removed; a session with a cart checks out
  with a fixed probability; each bought item brings its fixed complement partner along with
  `bundle_probability` (so pairs are bought together far more often than chance).
  Payments are declined at `decline_probability` and retried once. Consumable items are
  re-bought after a gamma-distributed delay (repeat purchases).
- **Order lifecycle**: statuses follow the order's age at the end of the history (paid, packed,
  shipped, delivered), with some cancellations and refunds; delivered items are reviewed at
  `review_probability` with a rating driven by quality and price-band match.
- **Bots** are anonymous sessions that view uniformly random items many times, seconds apart,
  at any hour, and never buy; `noise_probability` adds uniform random views to human sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class BehaviourModel:
    # catalog and tenants
    tenant_zipf_exponent: float = 1.1
    popularity_exponent: float = 0.9
    quality_popularity_weight: float = 0.3
    price_sigma: float = 0.45
    max_skus_per_product: int = 3
    price_bands: int = 5
    # users
    category_concentration: float = 0.35
    activity_sigma: float = 1.0
    price_band_spread: float = 0.7
    # sessions
    mean_session_views: float = 7.0
    max_session_views: int = 40
    search_start_probability: float = 0.3
    recommendation_click_probability: float = 0.35  # a session opens one of the recommendations shown
    mean_seconds_between_events: float = 45.0
    weekday_weights: tuple[float, ...] = (0.85, 0.85, 0.9, 0.95, 1.05, 1.3, 1.25)  # Monday first
    hour_weights: tuple[float, ...] = (
        0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.0, 1.1,
        1.3, 1.2, 1.0, 1.0, 1.1, 1.3, 1.6, 1.9, 2.1, 2.0, 1.4, 0.6,
    )
    # next-view transitions (the rest of the mass follows the user's preferences)
    same_leaf_probability: float = 0.55
    complement_jump_probability: float = 0.12
    noise_probability: float = 0.04
    # purchases
    add_to_cart_base: float = 0.06
    add_to_cart_quality_weight: float = 0.5
    price_match_boost: float = 1.8
    remove_from_cart_probability: float = 0.1
    checkout_probability: float = 0.6
    bundle_probability: float = 0.35
    decline_probability: float = 0.08
    retry_success_probability: float = 0.75
    repeat_probability: float = 0.4
    repeat_delay_days_shape: float = 3.0
    repeat_delay_days_scale: float = 10.0
    # order lifecycle (days of age at the end of the history)
    cancel_probability: float = 0.03
    refund_probability: float = 0.02
    review_probability: float = 0.3
    # bots
    bot_session_share: float = 0.015
    mean_bot_session_views: float = 60.0
    max_bot_session_views: int = 150
    bot_seconds_between_events: float = 1.5


@dataclass(frozen=True)
class Scale:
    name: str
    tenants: int
    products: int
    buyers: int
    events: int
    days: int


SCALES = {
    "tiny": Scale("tiny", tenants=3, products=60, buyers=40, events=2_000, days=30),
    "small": Scale("small", tenants=12, products=2_000, buyers=1_000, events=40_000, days=90),
    "medium": Scale("medium", tenants=150, products=100_000, buyers=50_000, events=1_000_000, days=180),
    "large": Scale("large", tenants=1_000, products=620_000, buyers=300_000, events=10_000_000, days=365),
}

# The history ends at a fixed instant so the same seed gives the same bytes on any day.
HISTORY_END = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday, 00:00 UTC


def resolve_scale(scale: str | int) -> Scale:
    """A named scale, or a product count N with the other sizes in the proportions of `small`."""
    if isinstance(scale, str) and scale in SCALES:
        return SCALES[scale]
    try:
        products = int(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be one of {', '.join(SCALES)} or a product count, got {scale!r}") from None
    if products < 10:
        raise ValueError("a numeric scale needs at least 10 products")
    return Scale(str(products), tenants=max(2, products // 170), products=products, buyers=max(10, products // 2),
                 events=products * 20, days=90)
