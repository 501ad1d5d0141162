"""One SparkSession for every job, from one of three engines chosen by the environment:

- MARKETLAKE_SPARK_MASTER set: classic (JVM) Spark with delta-spark, for clusters (Delta's jars
  from Maven, or pre-staged ones named by MARKETLAKE_SPARK_JARS);
- MARKETLAKE_SPARK_REMOTE set: a remote Spark Connect endpoint (Sail or Spark);
- otherwise (the default): a Sail Spark Connect server started inside this process.

Jobs only use the DataFrame API and Spark SQL that all three share, so they run unchanged on each.
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache

from pyspark.sql import SparkSession

from pipelines.settings import LakehouseSettings, lakehouse_settings

SESSION_CONFIG = {
    # Timestamps are UTC end to end: Postgres timestamptz in, Delta timestamps out.
    "spark.sql.session.timeZone": "UTC",
}
DELTA_SPARK_CONFIG = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class _EmbeddedSail:
    """The in-process Sail server; kept referenced for the life of the process."""

    server = None

    @classmethod
    def remote(cls) -> str:
        if cls.server is None:
            # Sail logs every session at INFO to stderr; keep the CLI's output readable.
            os.environ.setdefault("RUST_LOG", "error")
            from pysail.spark import SparkConnectServer

            cls.server = SparkConnectServer("127.0.0.1", 0)
            cls.server.start(background=True)
        host, port = cls.server.listening_address
        return f"sc://{host}:{port}"


def engine_name() -> str:
    settings = lakehouse_settings()
    if settings.spark_master:
        return f"spark-classic[{settings.spark_master}]+delta"
    if settings.spark_remote:
        return f"spark-connect[{settings.spark_remote}]"
    return "sail-embedded"


@lru_cache
def get_spark() -> SparkSession:
    """The process-wide session of the configured engine."""
    settings = lakehouse_settings()
    # PySpark warns about pandas 3 on import; the jobs exchange Arrow, not pandas.
    warnings.filterwarnings("ignore", message=".*pandas >= 3.0.0.*", category=FutureWarning)
    if settings.spark_master:
        return classic_builder(settings).getOrCreate()
    remote = settings.spark_remote or _EmbeddedSail.remote()
    session = SparkSession.builder.remote(remote).getOrCreate()
    for key, value in {**SESSION_CONFIG, **settings.spark_conf}.items():
        session.conf.set(key, value)
    return session


def classic_builder(settings: LakehouseSettings) -> SparkSession.Builder:
    """Classic (JVM) Spark with Delta's SQL extension and catalog. Delta's jars are the pre-staged
    MARKETLAKE_SPARK_JARS when set (nothing is fetched); otherwise configure_spark_with_delta_pip
    asks Maven for the artefact matching the installed delta-spark and pyspark."""
    builder = SparkSession.builder.master(settings.spark_master).appName("marketlake")
    for key, value in {**SESSION_CONFIG, **DELTA_SPARK_CONFIG, **settings.spark_conf}.items():
        builder = builder.config(key, value)
    if settings.spark_jars:
        return builder.config("spark.jars", settings.spark_jars)
    from delta import configure_spark_with_delta_pip

    return configure_spark_with_delta_pip(builder)


def local_jvm_spark(cores: int = 2) -> SparkSession:
    """Plain JVM Spark in local mode (no Delta: its jars come from Maven), to prove the pure
    transforms portable and to measure them side by side in benchmarks."""
    warnings.filterwarnings("ignore", message=".*pandas >= 3.0.0.*", category=FutureWarning)
    builder = SparkSession.builder.master(f"local[{cores}]").appName("marketlake-jvm")
    for key, value in {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                       "spark.sql.shuffle.partitions": str(cores), "spark.default.parallelism": str(cores)}.items():
        builder = builder.config(key, value)
    for key, value in SESSION_CONFIG.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
