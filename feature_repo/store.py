"""The platform's Feast feature store: feature_store.yaml with its `${VAR}`s filled in from the
environment, or from defaults under MARKETLAKE_HOME when unset (Feast's own loader leaves an
unset variable as it is)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from string import Template

import yaml
from feast import FeatureStore, RepoConfig
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from transactional.config import get_settings

REPO_PATH = Path(__file__).resolve().parent
CONFIG_FILE = REPO_PATH / "feature_store.yaml"


class FeastSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_FEAST_", extra="ignore")

    registry: str | None = Field(
        None, description="registry path, or a YAML/JSON mapping (e.g. a SQL registry); "
                          "default MARKETLAKE_HOME/feast/registry.db")
    online_store: str | None = Field(
        None,
        description="online store as a YAML/JSON mapping; default SQLite at MARKETLAKE_HOME/feast/online.db")
    offline_dir: str | None = Field(
        None, description="where the gold feature tables are exported as Parquet for Feast's offline store; "
                          "default MARKETLAKE_HOME/feast/offline")

    @property
    def home(self) -> Path:
        return get_settings().home_dir / "feast"

    def offline_path(self) -> str:
        return (self.offline_dir or str(self.home / "offline")).rstrip("/")

    def variables(self) -> dict[str, str]:
        """The values of feature_store.yaml's variables."""
        return {
            "MARKETLAKE_FEAST_REGISTRY": self.registry or str(self.home / "registry.db"),
            "MARKETLAKE_FEAST_ONLINE_STORE": self.online_store or json.dumps(
                {"type": "sqlite", "path": str(self.home / "online.db")}),
        }


def repo_config(repo_path: Path | str | None = None) -> RepoConfig:
    path = Path(repo_path) if repo_path else REPO_PATH
    settings = FeastSettings()
    settings.home.mkdir(parents=True, exist_ok=True)
    variables = {**settings.variables(), **os.environ}
    text = Template((path / CONFIG_FILE.name).read_text()).safe_substitute(variables)
    config = RepoConfig(**yaml.safe_load(text))
    config.repo_path = path
    return config


def feature_store(repo_path: Path | str | None = None) -> FeatureStore:
    """The configured store (nothing is contacted until it is used)."""
    path = Path(repo_path) if repo_path else REPO_PATH
    return FeatureStore(repo_path=str(path), config=repo_config(path))


def apply(store: FeatureStore) -> None:
    """`feast apply` of the definitions in repo.py: registers them, creates their online tables and
    drops the objects (and tables) the repository no longer defines."""
    from feast.feature_view import DUMMY_ENTITY
    from feast.project import Project
    from feast.repo_contents import RepoContents
    from feast.repo_operations import apply_total_with_repo_instance

    from feature_repo import repo

    contents = RepoContents(
        projects=[Project(name=store.project)],
        data_sources=[view.batch_source for view in repo.FEATURE_VIEWS],
        feature_views=list(repo.FEATURE_VIEWS), on_demand_feature_views=[], stream_feature_views=[],
        label_views=[], entities=[*repo.ENTITIES, DUMMY_ENTITY], feature_services=list(repo.FEATURE_SERVICES),
        permissions=[])
    apply_total_with_repo_instance(store, store.project, store.registry, contents,
                                   skip_source_validation=False)
