"""Shopper features: recency, frequency and monetary value, and category affinities."""

from feast import FeatureView, Field
from feast.types import Array, Float64, Int64, String

from feature_repo.data_sources import user_features_source
from feature_repo.entities import user
from feature_repo.feature_views import SNAPSHOT_TTL

user_features = FeatureView(
    name="user_features", entities=[user], ttl=SNAPSHOT_TTL, source=user_features_source, online=True,
    schema=[
        Field(name="days_since_last_event", dtype=Float64, description="recency of any shopper event"),
        Field(name="days_since_last_order", dtype=Float64, description="recency of a placed order"),
        Field(name="events_30d", dtype=Int64),
        Field(name="sessions_30d", dtype=Int64),
        Field(name="orders_90d", dtype=Int64),
        Field(name="orders_total", dtype=Int64),
        Field(name="spend_90d", dtype=Float64, description="grand totals of placed orders"),
        Field(name="spend_total", dtype=Float64),
        Field(name="avg_order_value", dtype=Float64),
        Field(name="top_categories", dtype=Array(String),
              description="categories with the most interaction weight, strongest first"),
        Field(name="top_category_shares", dtype=Array(Float64),
              description="each top category's share of the shopper's interaction weight"),
    ],
    tags={"table": "gold.user_features"},
)
