"""The lakehouse on an S3-compatible object store (moto's server on this machine), changed by
configuration alone: MARKETLAKE_LAKEHOUSE_URI=s3://bucket/lake, the AWS_* environment Sail reads, and
the same settings as MARKETLAKE_LAKEHOUSE_STORAGE_OPTIONS for the deltalake library and listing.
Every command runs as `marketlake ...` in its own process, so its Spark starts with that environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import boto3
import httpx
import pytest
from deltalake import DeltaTable

from orchestration.processes import free_port
from tests.lakehouse import sources

pytestmark = pytest.mark.slow

BUCKET = "marketlake-lake"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server in its own process (in this one it would wait on the GIL that the deltalake
    calls hold), with an empty bucket."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(endpoint, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in CREDENTIALS.items()
                                                     if k != "AWS_REGION"},
                     region_name=CREDENTIALS["AWS_REGION"]).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


def _store_settings(endpoint: str) -> dict[str, str]:
    # A local endpoint speaks plain HTTP; moto has no conditional writes, so deltalake's own
    # commits (compaction) rely on a single writer.
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true",
            "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}


def _marketlake(endpoint: str, root: str, *args: str) -> dict | list:
    env = {**os.environ, **_store_settings(endpoint), "MARKETLAKE_LAKEHOUSE_URI": root,
           "MARKETLAKE_LAKEHOUSE_STORAGE_OPTIONS": json.dumps(_store_settings(endpoint))}
    completed = subprocess.run([sys.executable, "-m", "orchestration.cli", *args], env=env, capture_output=True,
                               text=True, timeout=900, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


def test_the_pipeline_maintenance_and_erasure_run_on_an_object_store(db, s3_endpoint):
    root = f"s3://{BUCKET}/lake-{uuid.uuid4().hex[:8]}"
    store = sources.shop(products=2)
    leaving, staying = sources.shopper(), sources.shopper()
    for buyer in (leaving, staying):
        sources.order(buyer, store, review=4)
        sources.events([{"event_type": "view", "session_id": f"s-{buyer}", "user_id": buyer,
                         "product_id": store.product_ids[0], "tenant_id": store.tenant_id}])

    ran = _marketlake(s3_endpoint, root, "lakehouse", "run")
    assert ran["gold"]["blocked"] == {} and "products" in ran["silver"]["tables"]
    options = _store_settings(s3_endpoint)
    products = DeltaTable(f"{root}/silver/products", storage_options=options).to_pyarrow_table()
    assert sorted(products["product_id"].to_pylist()) == sorted(map(str, store.product_ids))

    history = _marketlake(s3_endpoint, root, "lakehouse", "history", "silver.orders")
    assert history[-1]["version"] == 0
    maintained = {row["table"] for row in _marketlake(s3_endpoint, root, "lakehouse", "maintain")}
    assert {"bronze.outbox", "silver.products", "gold.interactions", "quality.results"} <= maintained

    erased = _marketlake(s3_endpoint, root, "gdpr", "erase", "--user", str(leaving))
    assert {"silver.orders", "gold.interactions"} <= set(erased["rows_removed"])
    orders = DeltaTable(f"{root}/silver/orders", storage_options=options).to_pyarrow_table()
    assert orders["buyer_id"].to_pylist() == [str(staying)]
