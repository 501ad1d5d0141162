"""Feature services, one per model and version (`<model>_v<N>`): a model is trained on and served
with exactly the features of its service. A changed feature list is a new version, never an edit."""

from feast import FeatureService

from feature_repo.feature_views.item import item_features
from feature_repo.feature_views.seller import seller_features
from feature_repo.feature_views.user import user_features

# Re-ranking of recommendation candidates: what the item is, how it sells, who sells it, and who asks.
ranking_v1 = FeatureService(
    name="ranking_v1", features=[item_features, seller_features, user_features],
    description="recommendation re-ranking")

# Popularity baselines and cold start: trailing popularity within category and seller, sellable only.
popularity_v1 = FeatureService(
    name="popularity_v1",
    features=[item_features[["seller_id", "category_id", "popularity_1d", "popularity_7d", "popularity_30d",
                             "unique_users_30d", "in_stock"]]],
    description="popularity baselines and cold-start candidates")
