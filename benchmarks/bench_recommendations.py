"""Recommendation latency and throughput through the serving API, against /healthz of the same
server in the same run.

The serving app runs in its own uvicorn process (benchmarks.common.api_server) on a scratch
database. Its catalogue is the search benchmark's synthetic catalog of N products (the same
snapshot, cached under MARKETLAKE_HOME/bench-search); its model is an implicit ALS fitted here on
synthetic shoppers who each favour one category (80% of their interactions), logged and registered
as the `champion` through `models.tracking` exactly as the training pipeline does (model, vectors,
ids, FAISS index), in an MLflow store under MARKETLAKE_HOME/bench-recommendations. The feature
store is off (`MARKETLAKE_RECS_FEATURE_STORE=false`): this measures the service itself.

The request mix, prepared before the load starts: homepage lists for shoppers the model knows
(Zipf over shoppers, so active ones repeat as in real traffic and some hit the result cache;
the first request of each shopper reads their history from PostgreSQL), product-page lists for
random products, category-scoped homepage lists and cart lists, all with a platform token (which
may name any shopper). Latency phases run one request at a time; throughput phases keep
`--concurrency` in flight. The server's resident memory is read from its /metrics.

    python -m benchmarks.bench_recommendations [--small] [--products N] [--seconds S] [--concurrency C]
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid

import numpy as np
import pandas as pd

from benchmarks.bench_search import snapshot_for, synthetic_catalog
from benchmarks.common import api_server, report, resident_megabytes, run_phase, scratch_database, wait_ready

DATABASE = "marketlake_bench_recommendations"
MODEL = "bench-recommender"
TARGET_P99_MS = 20.0
TARGET_THROUGHPUT_SHARE = 0.6
FAVOURITE_SHARE = 0.8


def shopper_interactions(products: list, shoppers: int, per_shopper: int, seed: int) -> pd.DataFrame:
    """Each shopper's interactions: mostly within one top-level category, the rest anywhere."""
    rng = np.random.default_rng(seed)
    ids = np.array([product.id for product in products])
    tops = np.array([(product.category or "").split("/")[0] for product in products])
    groups = {top: np.flatnonzero(tops == top) for top in np.unique(tops)}
    names = list(groups)
    users = np.repeat([str(uuid.UUID(int=int(value))) for value in rng.integers(1, 2**62, shoppers)], per_shopper)
    favourite = np.repeat(rng.integers(len(names), size=shoppers), per_shopper)
    in_favourite = rng.random(len(users)) < FAVOURITE_SHARE
    items = rng.integers(len(ids), size=len(users))
    for code, name in enumerate(names):
        rows = in_favourite & (favourite == code)
        items[rows] = rng.choice(groups[name], size=int(rows.sum()))
    kinds = rng.choice(["view", "add_to_cart", "purchase"], size=len(users), p=[0.85, 0.1, 0.05])
    return pd.DataFrame({"user_id": users, "item_id": ids[items], "event_type": kinds,
                         "timestamp": np.arange(len(users))})


def register_model(frame: pd.DataFrame) -> dict[str, float]:
    """Fit ALS, log it with its ids and FAISS index, register it as champion; timings."""
    from models.als import ImplicitALS
    from models.ann import build_index
    from models.data import from_frame
    from models.experiment import ModelRun
    from models.tracking import log_index, log_training, register

    data = from_frame(frame)
    began = time.perf_counter()
    model = ImplicitALS(factors=64, regularization=0.05, alpha=2.0).fit(data)
    fitted = time.perf_counter() - began
    run_id = log_training(ModelRun("all", "als", model.params(), 0.0, {}, fitted, model), data,
                          {"dataset": "bench-recommendations"})
    began = time.perf_counter()
    index = build_index(model.item_vectors(), model.user_vectors(np.arange(min(data.n_users, 5_000))))
    indexed = time.perf_counter() - began
    log_index(run_id, index)
    register(MODEL, run_id, validation=1.0)
    return {"shoppers": data.n_users, "items": data.n_items, "interactions": len(data),
            "fit_seconds": round(fitted, 1), "faiss_kind": index.kind, "faiss_recall_at_10": round(index.recall, 3),
            "faiss_build_seconds": round(indexed, 1)}


def recommendation_requests(products: list, shoppers: list[str], count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) for rank in range(len(shoppers))]
    active = rng.choices(shoppers, weights=weights, k=count)
    tops = sorted({(product.category or "").split("/")[0] for product in products} - {""})
    requests = []
    for shopper in active:
        kind = rng.random()
        if kind < 0.5:
            requests.append({"user_id": shopper, "k": 10})
        elif kind < 0.75:
            requests.append({"context": "pdp", "item_id": rng.choice(products).id, "k": 10, "user_id": shopper})
        elif kind < 0.9:
            requests.append({"user_id": shopper, "category": rng.choice(tops), "k": 10})
        else:
            requests.append({"context": "cart", "item_id": rng.choice(products).id, "k": 10, "user_id": shopper})
    return requests


def main() -> None:
    from transactional.config import get_settings
    from transactional.models import Role
    from transactional.services.security import issue_access_token

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="5k products and shorter phases")
    parser.add_argument("--products", type=int, help="catalog size (default 100k, 5k with --small)")
    parser.add_argument("--shoppers", type=int, help="shoppers in the model (default products / 2)")
    parser.add_argument("--seconds", type=float, help="length of each phase (default 20, 10 with --small)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight in throughput phases")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    count = args.products or (5_000 if args.small else 100_000)
    seconds = args.seconds or (10.0 if args.small else 20.0)

    directory, build = snapshot_for(count, args.seed)
    products = synthetic_catalog(count, args.seed)
    store = get_settings().home_dir / "bench-recommendations" / f"{count}-{args.seed}-{uuid.uuid4().hex[:8]}"
    store.mkdir(parents=True)
    os.environ.update({
        "MLFLOW_TRACKING_URI": f"sqlite:///{store / 'mlflow.db'}",
        "MARKETLAKE_MLFLOW_ARTIFACTS": (store / "artifacts").as_uri(),
        "MARKETLAKE_RECS_REGISTERED_MODEL": MODEL,
        "MARKETLAKE_RECS_FEATURE_STORE": "false",
        "MARKETLAKE_SEARCH_SNAPSHOT_DIR": str(directory),
    })
    frame = shopper_interactions(products, args.shoppers or max(1_000, count // 2), 20, args.seed)
    model = register_model(frame)
    shoppers = list(dict.fromkeys(frame["user_id"]))
    requests = recommendation_requests(products, shoppers, 200_000, args.seed)
    token, _ = issue_access_token(uuid.uuid4(), Role.platform_admin, None)
    headers = {"Authorization": f"Bearer {token}"}
    figures: dict[str, object] = {"products": count, "seconds_per_phase": seconds, "concurrency": args.concurrency,
                                  "snapshot": build, "model": model}
    with scratch_database(DATABASE), api_server("serving.app:create_app") as base_url:
        figures["server_ready_seconds"] = round(wait_ready(base_url), 1)
        figures["server_rss_mb_loaded"] = resident_megabytes(base_url)
        half = len(requests) // 2
        phases = {
            "healthz_latency": ("/healthz", [{}] * 1_000_000, 1),
            "recommendations_latency": ("/v1/recommendations", requests[:half], 1),
            "healthz_throughput": ("/healthz", [{}] * 1_000_000, args.concurrency),
            "recommendations_throughput": ("/v1/recommendations", requests[half:], args.concurrency),
        }
        for name, (path, phase_requests, concurrency) in phases.items():
            figures[name] = run_phase(base_url, path, phase_requests, concurrency, seconds, headers)
        figures["server_rss_mb_after"] = resident_megabytes(base_url)
    latency, throughput = figures["recommendations_latency"], figures["recommendations_throughput"]
    share = throughput["requests_per_s"] / figures["healthz_throughput"]["requests_per_s"]
    figures["ratios"] = {
        "recommendations_rps_over_healthz_rps": round(share, 4),
        "recommendations_p99_over_healthz_p99": round(latency["p99_ms"] / figures["healthz_latency"]["p99_ms"], 2),
    }
    figures["targets"] = {"p99_ms": TARGET_P99_MS, "throughput_share": TARGET_THROUGHPUT_SHARE,
                          "p99_met": latency["p99_ms"] < TARGET_P99_MS,
                          "throughput_met": share >= TARGET_THROUGHPUT_SHARE}
    report("recommendations" if not args.small else "recommendations_small", figures)


if __name__ == "__main__":
    main()
