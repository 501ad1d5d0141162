"""Product features: popularity over 1/7/30 days, conversion, rating, price and stock."""

from feast import FeatureView, Field
from feast.types import Bool, Float64, Int64, String

from feature_repo.data_sources import item_features_source
from feature_repo.entities import item
from feature_repo.feature_views import SNAPSHOT_TTL

POPULARITY = [Field(name=f"{measure}_{days}d", dtype=dtype)
              for days in (1, 7, 30) for measure, dtype in (("popularity", Float64), ("unique_users", Int64))]

item_features = FeatureView(
    name="item_features", entities=[item], ttl=SNAPSHOT_TTL, source=item_features_source, online=True,
    schema=[
        Field(name="seller_id", dtype=String, description="the tenant selling the product"),
        Field(name="category_id", dtype=String),
        *POPULARITY,
        Field(name="views_30d", dtype=Int64),
        Field(name="purchases_30d", dtype=Int64),
        Field(name="conversion_rate_30d", dtype=Float64,
              description="share of the product's visitors in 30 days who bought it"),
        Field(name="rating_avg", dtype=Float64),
        Field(name="rating_count", dtype=Int64),
        Field(name="price", dtype=Float64, description="lowest active SKU price at the snapshot time"),
        Field(name="currency", dtype=String),
        Field(name="stock_available", dtype=Int64, description="available minus reserved, all warehouses"),
        Field(name="in_stock", dtype=Bool),
    ],
    tags={"table": "gold.item_features"},
)
