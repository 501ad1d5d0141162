"""Seller features: rating and fulfilment speed."""

from feast import FeatureView, Field
from feast.types import Float64, Int64

from feature_repo.data_sources import seller_features_source
from feature_repo.entities import seller
from feature_repo.feature_views import SNAPSHOT_TTL

seller_features = FeatureView(
    name="seller_features", entities=[seller], ttl=SNAPSHOT_TTL, source=seller_features_source, online=True,
    schema=[
        Field(name="seller_rating_avg", dtype=Float64,
              description="mean review rating of the seller's products"),
        Field(name="seller_rating_count", dtype=Int64),
        Field(name="fulfilment_hours_avg", dtype=Float64,
              description="mean hours from sub-order to delivery, sub-orders delivered in 90 days"),
        Field(name="delivered_90d", dtype=Int64),
        Field(name="seller_orders_30d", dtype=Int64, description="sub-orders placed in 30 days"),
    ],
    tags={"table": "gold.seller_features"},
)
