"""The serving API at the large generated scale (issue 7): recommendations and search latency and
throughput against /healthz of the same server in the same run, and the serving process's memory.

- Catalogue: bench_search's synthetic catalog of `--products` listings (default 1M), from its
  cached snapshot (see benchmarks/bench_search.py for how the listings share product texts).
- Model: implicit ALS fitted on the shopper interactions of the generated marketplace at `--scale`
  (default `large`: 620k products, 1.06M SKUs, 11M events, 300k shoppers), bots left out, the
  generator's k-th product standing for the catalogue's k-th listing. It goes through the public
  models interface as the training pipeline does: `models.experiment`'s ALS (default
  hyper-parameters), `models.tracking.log_training`, `models.ann.build_index` tuned on user vectors
  to recall@10 >= 0.95, `tracking.log_index` and `tracking.register` (champion) in an MLflow store
  of its own under MARKETLAKE_HOME/bench-serving-scale/, kept for later runs. The generated events
  are kept there too (generating the large marketplace takes minutes and GiBs).
- Database: a scratch database holding, for `--shoppers` shoppers active at the end of the
  generated history, their latest events moved to end now (histories, session vectors, trending)
  and a platform administrator whose token may ask for any shopper's recommendations.
- Server: serving.app in its own uvicorn process (benchmarks.common.api_server); the load comes
  from a separate client process per phase (benchmarks.common.run_phase).

Phases, each `--seconds` long; latency phases keep one request in flight (the service's own
latency), throughput phases `--concurrency`:
- `healthz`: GET /healthz, a trivial endpoint of the same server (the baseline);
- `recs_homepage`: a signed-in shopper's homepage list (model user vector blended with the
  session vector, FAISS, rules, diversity, re-ranking); shoppers drawn uniformly, so most
  requests read the shopper's history from PostgreSQL first, as a first visit does;
- `recs_pdp`: the same shoppers on a product page (neighbours of the viewed product, which is
  drawn by popularity);
- `recs`: half homepage, half pdp, at `--concurrency` (the maximum throughput);
- `search_warm`: bench_search's storefront search mix, after its warm-up.
The feature store is not set up here: re-ranking runs without its signals, and responses say
`degraded` (feature_store_unavailable), which also keeps them out of the result cache.

    python -m benchmarks.bench_serving_scale [--products N] [--scale S] [--seconds S] [--concurrency C]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.bench_search import DISTINCT_QUERIES, distinct_searches, snapshot_for, warm_up, zipf_sample
from benchmarks.common import api_server, report, resident_megabytes, run_phase, scratch_database, wait_ready

DATABASE = "marketlake_bench_serving_scale"
TARGET_P99_MS = 20.0
TARGET_THROUGHPUT_SHARE = 0.6
TARGET_SEARCH_P95_MS = 50.0
TRACKED = ("view", "click", "add_to_cart", "remove_from_cart", "purchase")
SHOPPER_EVENTS = 50  # the serving history keeps this many per shopper
ADMIN_EMAIL = "bench-admin@marketlake.example.com"


def _in_child(function, *args):
    """Run `function` in a fresh process, so the GiBs it allocates are returned before the server
    starts; returns (its result, its peak RSS in MiB)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(_measured, function, *args).result()


def _measured(function, *args):
    result = function(*args)
    return result, round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# Generated interactions -------------------------------------------------------------------------

def _generate_events(scale: str, seed: int, path: Path) -> dict[str, int]:
    from transactional.datagen.generator import generate_marketplace

    data = generate_marketplace(scale, seed)
    events = (data.events.filter(~pl.col("bot") & pl.col("event_type").is_in(TRACKED))
              .select("user_idx", "session_idx", "product_idx", "event_type", "occurred_at"))
    path.parent.mkdir(parents=True, exist_ok=True)
    events.write_parquet(path.with_suffix(".tmp"))
    path.with_suffix(".tmp").rename(path)
    return {"products": data.products.height, "skus": data.skus.height, "shoppers": data.buyers.height,
            "events": data.events.height}


def generated_events(scale: str, seed: int, directory: Path) -> tuple[pl.DataFrame, dict]:
    """The human shoppers' tracked events of the generated marketplace (kept after the first run)."""
    path = directory / f"events-{scale}-{seed}.parquet"
    facts: dict = {"cached": path.exists()}
    if not path.exists():
        began = time.perf_counter()
        counts, peak = _in_child(_generate_events, scale, seed, path)
        facts.update(counts, generate_seconds=round(time.perf_counter() - began, 1), generate_peak_rss_mb=peak)
    return pl.read_parquet(path), facts


def shopper_ids(count: int, scale: str, seed: int) -> list[str]:
    from transactional.datagen.data import dataset_namespace, deterministic_ids

    return deterministic_ids(dataset_namespace(scale, seed), "bench-shopper", count)


# The champion model ------------------------------------------------------------------------------

def _train_and_register(events_path: Path, listing_ids_path: Path, scale: str, seed: int) -> dict:
    from models import experiment, tracking
    from models.ann import build_index
    from models.data import DEFAULT_EVENT_WEIGHTS, from_frame

    events = pl.read_parquet(events_path)
    listing_ids = pl.read_parquet(listing_ids_path)["id"]
    users = shopper_ids(int(events["user_idx"].max()) + 1, scale, seed)
    weights = pl.col("event_type").replace_strict(DEFAULT_EVENT_WEIGHTS, default=0.0, return_dtype=pl.Float32)
    pairs = (events.with_columns(weight=weights).filter(pl.col("weight") > 0)
             .group_by("user_idx", "product_idx")
             .agg(pl.col("weight").sum(), pl.col("occurred_at").max().alias("timestamp"))
             .sort("user_idx", "timestamp", "product_idx"))
    frame = pl.DataFrame({
        "user": pl.Series(users).gather(pairs["user_idx"]), "item": listing_ids.gather(pairs["product_idx"]),
        "weight": pairs["weight"], "timestamp": pairs["timestamp"].dt.epoch("s"),
    }).to_pandas()
    data = from_frame(frame)
    spec = experiment.MODEL_SPECS["als"]
    began = time.perf_counter()
    model = spec.build().fit(data)
    fit_seconds = time.perf_counter() - began
    # Not evaluated: the benchmark needs a champion of this size, not its quality (models/README).
    fitted = experiment.ModelRun("all", "als", {}, 0.0, {}, fit_seconds, model)
    run_id = tracking.log_training(fitted, data, {"dataset": f"generated {scale}:{seed}", "purpose": "benchmark"})
    began = time.perf_counter()
    sample = np.random.default_rng(0).choice(data.n_users, size=min(5000, data.n_users), replace=False)
    index = build_index(model.item_vectors(), queries=model.user_vectors(sample), k=10, target_recall=0.95)
    index_seconds = time.perf_counter() - began
    tracking.log_index(run_id, index, k=10)
    registration = tracking.register(tracking.REGISTERED_MODEL, run_id, 0.0)
    return {"version": registration.version, "alias": registration.alias, "users": data.n_users,
            "items": data.n_items, "pairs": len(data), "fit_seconds": round(fit_seconds, 1),
            "faiss_kind": index.kind, "faiss_search_effort": index.search_effort,
            "faiss_recall_at_10": round(index.recall, 4), "index_seconds": round(index_seconds, 1)}


def champion(events_path: Path, snapshot: Path, directory: Path, scale: str, seed: int) -> dict:
    """The registered champion of this benchmark's MLflow store, trained and registered first if
    there is none."""
    from models import tracking
    from serving.recommend.registry import champion_version

    version = champion_version(tracking.REGISTERED_MODEL)
    if version is not None:
        return {"cached": True, "version": version}
    listing_ids = directory / "listing-ids.parquet"
    pl.read_parquet(snapshot / "products.parquet", columns=["id"]).write_parquet(listing_ids)
    began = time.perf_counter()
    facts, peak = _in_child(_train_and_register, events_path, listing_ids, scale, seed)
    return {"cached": False, **facts, "seconds": round(time.perf_counter() - began, 1), "peak_rss_mb": peak}


# The database and the workload ------------------------------------------------------------------

def active_shoppers(events: pl.DataFrame, count: int, seed: int) -> pl.DataFrame:
    """The latest SHOPPER_EVENTS events of `count` shoppers among those active in the last week of
    the generated history, moved in time so the latest event of all is a minute ago."""
    end = events["occurred_at"].max()
    recent = events.filter(pl.col("occurred_at") > end - timedelta(days=7))["user_idx"].unique().sort()
    chosen = random.Random(seed).sample(recent.to_list(), min(count, len(recent)))
    shift = datetime.now(UTC) - end - timedelta(minutes=1)
    return (events.filter(pl.col("user_idx").is_in(chosen))
            .sort("occurred_at", descending=True).group_by("user_idx", maintain_order=True).head(SHOPPER_EVENTS)
            .with_columns(pl.col("occurred_at") + shift))


def load_history(shoppers: pl.DataFrame, users: list[str], listing_ids: pl.Series) -> int:
    """The shoppers' events, written through the events service."""
    from transactional.db import PLATFORM, session_scope
    from transactional.services.events import EVENTS, ingest_events

    rows = [{"type": row["event_type"], "event_id": str(uuid.uuid4()), "user_id": users[row["user_idx"]],
             "session_id": f"bench-{row['session_idx']}", "occurred_at": row["occurred_at"],
             "product_id": listing_ids[row["product_idx"]]} for row in shoppers.iter_rows(named=True)]
    for start in range(0, len(rows), 1000):
        with session_scope(PLATFORM) as session:
            ingest_events(session, EVENTS.validate_python(rows[start:start + 1000]))
    return len(rows)


def admin_token() -> str:
    from transactional.db import PLATFORM, session_scope
    from transactional.models import Role
    from transactional.services.auth import login, register_user

    password = uuid.uuid4().hex
    with session_scope(PLATFORM) as session:
        register_user(session, email=ADMIN_EMAIL, password=password, role=Role.platform_admin)
    with session_scope(PLATFORM) as session:
        return login(session, login=ADMIN_EMAIL, password=password).access_token


def recommendation_requests(shoppers: list[str], viewed: list[str], size: int, seed: int,
                            contexts: tuple[str, ...]) -> list[dict]:
    rng = random.Random(seed)
    requests = []
    for number in range(size):
        context = contexts[number % len(contexts)]
        params = {"user_id": rng.choice(shoppers), "context": context}
        if context == "pdp":
            params["item_id"] = rng.choice(viewed)
        requests.append(params)
    return requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=1_000_000, help="catalogue listings")
    parser.add_argument("--scale", default="large", help="generator scale whose interactions train the model")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight in throughput phases")
    parser.add_argument("--shoppers", type=int, default=5000, help="shoppers the load asks for")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    from transactional.config import get_settings

    directory = get_settings().home_dir / "bench-serving-scale" / f"{args.products}-{args.scale}-{args.seed}"
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{directory / 'mlflow.db'}"
    os.environ["MARKETLAKE_MLFLOW_ARTIFACTS"] = (directory / "artifacts").as_uri()

    snapshot, build = snapshot_for(args.products, args.seed)
    events, generated = generated_events(args.scale, args.seed, directory.parent)
    model = champion(directory.parent / f"events-{args.scale}-{args.seed}.parquet", snapshot, directory,
                     args.scale, args.seed)
    listing_ids = pl.read_parquet(snapshot / "products.parquet", columns=["id"])["id"]
    users = shopper_ids(int(events["user_idx"].max()) + 1, args.scale, args.seed)
    shoppers = active_shoppers(events, args.shoppers, args.seed)
    pool = [users[index] for index in shoppers["user_idx"].unique().to_list()]
    popular = events.group_by("product_idx").len().sort("len", descending=True)
    viewed = [listing_ids[index] for index in
              random.Random(args.seed).choices(popular["product_idx"].to_list(), weights=popular["len"].to_list(),
                                               k=20_000)]
    del events
    figures: dict[str, object] = {
        "products": args.products, "scale": args.scale, "seconds_per_phase": args.seconds,
        "concurrency": args.concurrency, "snapshot": build, "generated": generated, "model": model,
        "shoppers": len(pool),
    }
    homepage = recommendation_requests(pool, viewed, 200_000, args.seed, ("homepage",))
    pdp = recommendation_requests(pool, viewed, 200_000, args.seed + 1, ("pdp",))
    mixed = recommendation_requests(pool, viewed, 400_000, args.seed + 2, ("homepage", "pdp"))
    searches = zipf_sample(distinct_searches(DISTINCT_QUERIES, args.seed), 200_000, random.Random(args.seed))
    os.environ["MARKETLAKE_SEARCH_SNAPSHOT_DIR"] = str(snapshot)
    with scratch_database(DATABASE):
        figures["history_events"] = load_history(shoppers, users, listing_ids)
        with api_server("serving.app:create_app") as base_url:
            figures["server_ready_seconds"] = round(wait_ready(base_url), 1)
            figures["server_rss_mb_loaded"] = resident_megabytes(base_url)
            figures["search_warmup"] = warm_up(base_url, args.seed)
            headers = {"Authorization": f"Bearer {admin_token()}"}  # lives 15 minutes: made just before use
            phases = {
                "healthz_latency": ("/healthz", [{}] * 1_000_000, 1),
                "recs_homepage_latency": ("/v1/recommendations", homepage, 1),
                "recs_pdp_latency": ("/v1/recommendations", pdp, 1),
                "search_warm_latency": ("/v1/search", searches, 1),
                "healthz_throughput": ("/healthz", [{}] * 1_000_000, args.concurrency),
                "recs_throughput": ("/v1/recommendations", mixed, args.concurrency),
            }
            for name, (path, requests, concurrency) in phases.items():
                figures[name] = run_phase(base_url, path, requests, concurrency, args.seconds, headers)
            figures["server_rss_mb_after"] = resident_megabytes(base_url)
    healthz, recs = figures["healthz_throughput"], figures["recs_throughput"]
    share = recs["requests_per_s"] / healthz["requests_per_s"]
    worst_p99 = max(figures["recs_homepage_latency"]["p99_ms"], figures["recs_pdp_latency"]["p99_ms"])
    figures["ratios"] = {"recs_rps_over_healthz_rps": round(share, 4)}
    figures["targets"] = {
        "recs_p99_ms": TARGET_P99_MS, "recs_p99_met": worst_p99 < TARGET_P99_MS,
        "recs_throughput_share": TARGET_THROUGHPUT_SHARE, "recs_throughput_met": share >= TARGET_THROUGHPUT_SHARE,
        "search_p95_ms": TARGET_SEARCH_P95_MS,
        "search_p95_met": figures["search_warm_latency"]["p95_ms"] < TARGET_SEARCH_P95_MS,
    }
    report("serving_scale", figures)


if __name__ == "__main__":
    main()
