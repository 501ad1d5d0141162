"""Every Feast object of the repository, for `feast apply` (which scans this file only, see
.feastignore) and for `feature_repo.store.apply`."""

from feature_repo.entities import item, seller, user
from feature_repo.feature_services import popularity_v1, ranking_v1
from feature_repo.feature_views.item import item_features
from feature_repo.feature_views.seller import seller_features
from feature_repo.feature_views.user import user_features

ENTITIES = (user, item, seller)
FEATURE_VIEWS = (user_features, item_features, seller_features)
FEATURE_SERVICES = (ranking_v1, popularity_v1)
