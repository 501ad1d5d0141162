"""Model benchmark: ALS and item2vec training on 1M synthetic power-law interactions, FAISS build time,
query latency and recall against exact (flat) search, and the evaluation harness's run time.

Ratios against baselines measured in the same run: FAISS build time and query speed-up against the
flat index (at the measured recall), on clustered vectors and on the ALS model's own item and user
vectors (what serving searches); item2vec training, full-ranking scoring and a whole evaluation run
(tuning on a validation split, refit, blend, test) in units of one ALS fit on the same data. The load
average before and after is recorded: the build machine is shared.

    python -m benchmarks.bench_models [--small]"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from benchmarks.common import report
from models.als import ImplicitALS
from models.ann import build_index, exact_index, recall_at_k
from models.data import from_frame
from models.evaluation import evaluate_full
from models.experiment import run
from models.item2vec import Item2Vec
from models.protocols import leave_last_out
from models.synthetic import marketplace_interactions


def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def clustered_vectors(n_vectors: int, n_queries: int, dimension: int = 64, clusters: int = 256):
    """Embeddings gather around tastes and categories; structureless Gaussian noise would be the
    worst case for any approximate index, and unlike real item vectors."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(clusters, dimension))
    points = centres[rng.integers(0, clusters, n_vectors + n_queries)]
    points += 0.35 * rng.normal(size=points.shape)
    points = points.astype(np.float32)
    return points[:n_vectors], points[n_vectors:]


def ann_figures(
    vectors: np.ndarray, queries: np.ndarray, kind: str, k: int = 10, label: str = ""
) -> dict[str, float]:
    """Build time and per-query latency of `kind` against the flat index over the same vectors, and
    its recall@k against the flat index's exact answers."""
    name = f"{label}{kind}"
    flat, flat_build_seconds = timed(lambda: exact_index(vectors))
    exact, flat_seconds = timed(lambda: flat.search(queries, k)[1])
    index, build_seconds = timed(lambda: build_index(vectors, queries[:500], k=k, kind=kind))
    found, ann_seconds = timed(lambda: index.search(queries, k))
    return {
        f"{name}_build_seconds": round(build_seconds, 2),
        f"{name}_flat_build_seconds": round(flat_build_seconds, 4),  # each call builds its own flat baseline
        f"{name}_build_vs_flat_build": round(build_seconds / flat_build_seconds, 1),
        f"{name}_search_effort": index.search_effort,
        f"{name}_query_ms": round(1000 * ann_seconds / len(queries), 4),
        f"{name}_flat_query_ms": round(1000 * flat_seconds / len(queries), 4),
        f"{name}_recall_at_{k}": round(recall_at_k(found, exact), 4),
        f"{name}_speedup_vs_flat": round(flat_seconds / ann_seconds, 2),
        # Queries after which building the index has cost less than searching without it.
        f"{name}_break_even_queries": round(
            build_seconds / max((flat_seconds - ann_seconds) / len(queries), 1e-9)
        ),
    }


def evaluation_run_figures(n_interactions: int) -> dict[str, float]:
    """One whole evaluation (item_pop, ALS and item2vec tuned on the inner validation split, refitted,
    blended, scored on the test users) against a single default ALS fit on the same training rows."""
    data = from_frame(
        marketplace_interactions(
            n_interactions,
            n_interactions // 10,
            n_interactions // 20,
            n_categories=50,
            n_tenants=200,
            random_state=1,
        )
    )
    split = leave_last_out(data)
    _, als_seconds = timed(lambda: ImplicitALS(factors=64, iterations=15).fit(split.train))
    runs, run_seconds = timed(lambda: run([split], ["item_pop", "als", "item2vec"]))
    return {
        "evaluation_run_interactions": n_interactions,
        "evaluation_run_seconds": round(run_seconds, 2),
        "evaluation_run_als_fit_seconds": round(als_seconds, 2),
        "evaluation_run_vs_als_fit": round(run_seconds / als_seconds, 1),
        "evaluation_run_best_ndcg_at_10": round(max(model_run.metrics["ndcg@10"] for model_run in runs), 4),
    }


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="100k interactions and 20k vectors (a quick check)"
    )
    arguments = parser.parse_args()
    n_interactions = 100_000 if arguments.small else 1_000_000
    n_users, n_items = (10_000, 5_000) if arguments.small else (100_000, 50_000)
    n_vectors = 20_000 if arguments.small else 200_000
    load_before = load_average()

    data, generate_seconds = timed(
        lambda: from_frame(
            marketplace_interactions(
                n_interactions, n_users, n_items, n_categories=50, n_tenants=200, random_state=0
            )
        )
    )
    split = leave_last_out(data)
    als, als_seconds = timed(lambda: ImplicitALS(factors=64, iterations=15).fit(split.train))
    _, item2vec_seconds = timed(
        lambda: Item2Vec(vector_size=64, window=10, epochs=5, workers=2).fit(split.train)
    )
    metrics, evaluation_seconds = timed(lambda: evaluate_full(als, split, k=10))
    users = split.test.frame["user"].unique()[:2_000]

    vectors, queries = clustered_vectors(n_vectors, 2_000)
    figures = {
        "interactions": n_interactions,
        "users": data.n_users,
        "items": data.n_items,
        "generate_seconds": round(generate_seconds, 2),
        "als_train_seconds": round(als_seconds, 2),
        "als_interactions_per_second": round(len(split.train) * 15 / als_seconds),
        "item2vec_train_seconds": round(item2vec_seconds, 2),
        "item2vec_vs_als_time": round(item2vec_seconds / als_seconds, 2),
        "evaluation_seconds": round(evaluation_seconds, 2),
        "evaluation_test_users": int(split.test.frame["user"].nunique()),
        "evaluation_vs_als_time": round(evaluation_seconds / als_seconds, 2),
        "als_ndcg_at_10": round(metrics["ndcg@10"], 4),
        "ann_vectors": n_vectors,
        **ann_figures(vectors, queries, "hnsw"),
        **ann_figures(vectors, queries, "ivf"),
        "als_vectors_items": data.n_items,
        **ann_figures(als.item_vectors(), als.user_vectors(users), "hnsw", label="als_vectors_"),
        **evaluation_run_figures(20_000 if arguments.small else 100_000),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
    report("models_small" if arguments.small else "models", figures)


if __name__ == "__main__":
    main()
