"""Model benchmark: ALS and item2vec training on 1M synthetic power-law interactions, FAISS build time,
query latency and recall against exact (flat) search, and the evaluation harness's run time.

Ratios against baselines measured in the same run: FAISS query speed-up over the flat index (at its
measured recall), and evaluation and item2vec time relative to ALS training.

    python -m benchmarks.bench_models [--small]"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.common import report
from models.als import ImplicitALS
from models.ann import build_index, exact_index, recall_at_k
from models.data import from_frame
from models.evaluation import evaluate_full
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


def ann_figures(vectors: np.ndarray, queries: np.ndarray, kind: str, k: int = 10) -> dict[str, float]:
    flat = exact_index(vectors)
    exact, flat_seconds = timed(lambda: flat.search(queries, k)[1])
    index, build_seconds = timed(lambda: build_index(vectors, queries[:500], k=k, kind=kind))
    found, ann_seconds = timed(lambda: index.search(queries, k))
    return {
        f"{kind}_build_seconds": round(build_seconds, 2),
        f"{kind}_search_effort": index.search_effort,
        f"{kind}_query_ms": round(1000 * ann_seconds / len(queries), 4),
        "flat_query_ms": round(1000 * flat_seconds / len(queries), 4),
        f"{kind}_recall_at_{k}": round(recall_at_k(found, exact), 4),
        f"{kind}_speedup_vs_flat": round(flat_seconds / ann_seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", action="store_true", help="100k interactions and 20k vectors (a quick check)"
    )
    arguments = parser.parse_args()
    n_interactions = 100_000 if arguments.small else 1_000_000
    n_users, n_items = (10_000, 5_000) if arguments.small else (100_000, 50_000)
    n_vectors = 20_000 if arguments.small else 200_000

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
    }
    report("models_small" if arguments.small else "models", figures)


if __name__ == "__main__":
    main()
