"""Where the lakehouse lives and which Spark runs its jobs (environment: MARKETLAKE_*)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from transactional.config import get_settings


class LakehouseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MARKETLAKE_", extra="ignore")

    lakehouse_uri: str | None = Field(
        None, description="root of every Delta table: a local path (default: MARKETLAKE_HOME/lakehouse) "
                          "or an object-store URI such as s3://bucket/lake")
    lakehouse_storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="object-store credentials and endpoints for the deltalake reader (JSON object)")
    spark_remote: str | None = Field(None, description="a Spark Connect endpoint, sc://host:port (Sail or Spark)")
    spark_master: str | None = Field(None, description="classic Spark with delta-spark, e.g. local[2] or yarn")
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="extra Spark settings (JSON object), e.g. spark.hadoop.fs.s3a.* for an "
                                          "object store on classic Spark, or spark.sql.shuffle.partitions")
    spark_jars: str | None = Field(
        None, description="classic Spark: comma-separated paths or URLs of pre-staged jars (delta-spark and "
                          "delta-storage) for clusters that cannot reach Maven; unset, they are fetched from Maven")
    lakehouse_batch_size: int = Field(5_000, description="rows per bronze micro-batch (one Delta commit)")
    stream_interval_seconds: float = Field(2.0, description="pause between micro-batches of `lakehouse stream`")
    lakehouse_pii_key: str | None = Field(
        None, description="secret for pseudonymising PII (generated once under MARKETLAKE_HOME when unset)")

    @property
    def root(self) -> str:
        if self.lakehouse_uri:
            return self.lakehouse_uri.rstrip("/")
        path = get_settings().home_dir / "lakehouse"
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    @property
    def is_local(self) -> bool:
        return "://" not in self.root or self.root.startswith("file://")

    def local_root(self) -> Path:
        return Path(self.root.removeprefix("file://"))


@lru_cache
def lakehouse_settings() -> LakehouseSettings:
    return LakehouseSettings()
