"""Search latency and throughput through the serving API, against /healthz of the same server in
the same run.

The serving app runs in its own uvicorn process (benchmarks.common.api_server) on a scratch
database, starting from a snapshot of a synthetic catalog of N products (readable titles, brands,
categories, attributes and prices drawn from the data generator's vocabulary). Building that
snapshot embeds every distinct product text with MiniLM, which takes minutes on a CPU, so it is
cached under MARKETLAKE_HOME/bench-search/ and reused by later runs. The load comes from a client
process (asyncio + httpx, `--concurrency` requests in flight) that prepared its requests first.

Phases, each `--seconds` long:
- `healthz`: GET /healthz, the cost of a request that does nothing (the baseline);
- `search_warm`: a storefront mix (Zipf-distributed over a few thousand distinct queries, a fifth
  with filters, a tenth sorted by price, some with typos) on a server that has seen each of them
  once (`search_warmup`, untimed in the ratios), as a running storefront has: their query vectors
  come from the cache;
- `search_cold`: every query new to the server, so every request runs the MiniLM encoder;
- `suggest`: autocompletion of 1-12 typed characters.
Latency phases run one request at a time (the service's own latency, no queueing); throughput
phases keep `--concurrency` in flight. The server's resident memory is read from its /metrics.

    python -m benchmarks.bench_search [--small] [--products N] [--seconds S] [--concurrency C]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import multiprocessing
import os
import random
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import api_server, report, resident_megabytes, run_phase, scratch_database, wait_ready

DATABASE = "marketlake_bench_search"
TARGET_P95_MS = 50.0
DISTINCT_QUERIES = 3000


# The catalog ------------------------------------------------------------------------------------

# Distinct product texts. MiniLM embeds 5-35 texts/s on one core of this shared machine, so a
# million distinct texts would take days; a marketplace lists one product from many sellers
# anyway, so the catalog holds at most this many products ("designs") and each listing offers one
# of them with its own seller, price, rating, stock and age. A search costs the same: every
# listing is its own document, vector and row.
DESIGNS = 12_000
EMBED_CHUNK = 1024


@dataclass(frozen=True)
class _Design:
    title: str
    description: str
    brand: str
    category: str
    category_names: tuple[str, ...]
    attributes: tuple[str, ...]
    median_price: float


def _designs(count: int, rng: random.Random) -> list[_Design]:
    from transactional.datagen.vocabulary import DESCRIPTION_TEMPLATES, FEATURES, leaves

    catalog = leaves()
    designs = []
    for number in range(count):
        root, leaf = rng.choice(catalog)
        brand, adjective, noun = rng.choice(root.brands), rng.choice(root.adjectives), rng.choice(leaf.nouns)
        title = f"{brand} {adjective} {noun} {rng.choice('ABCDEFGHJKLMNPRSTUVWXZ')}{number % 97}"
        designs.append(_Design(
            title=title, brand=brand, category=f"{root.slug}/{leaf.slug}", category_names=(root.name, leaf.name),
            description=rng.choice(DESCRIPTION_TEMPLATES).format(
                title=title, adjective=adjective, brand=brand, noun=noun, feature=rng.choice(FEATURES)),
            attributes=tuple(f"{key} {rng.choice(values)}" for key, values in leaf.attributes.items()),
            median_price=leaf.median_price,
        ))
    return designs


def synthetic_catalog(count: int, seed: int):
    """`count` listings of at most DESIGNS distinct products, from the data generator's vocabulary."""
    from serving.search.documents import ProductDocument
    from transactional.datagen.vocabulary import LAST_NAMES, STORE_WORDS

    rng = random.Random(seed)
    designs = _designs(min(count, DESIGNS), rng)
    stores = [(str(uuid.UUID(int=rng.getrandbits(128))), f"{rng.choice(LAST_NAMES)} {rng.choice(STORE_WORDS)}")
              for _ in range(max(2, count // 600))]
    now = time.time()
    products = []
    for number in range(count):
        design = designs[number] if number < len(designs) else rng.choice(designs)
        tenant_id, store_name = rng.choice(stores)
        rated = rng.random() < 0.4
        products.append(ProductDocument(
            id=str(uuid.UUID(int=rng.getrandbits(128))), title=design.title, description=design.description,
            brand=design.brand, category=design.category, category_names=design.category_names,
            attributes=design.attributes, tenant_id=tenant_id, store_name=store_name,
            price=round(design.median_price * math.exp(rng.gauss(0, 0.5)), 2),
            rating_avg=round(rng.uniform(2.5, 5.0), 2) if rated else None,
            rating_count=rng.randint(1, 200) if rated else 0, in_stock=rng.random() < 0.92,
            created_at=now - rng.uniform(0, 365 * 86_400),
        ))
    return products


def embed_distinct(texts: list[str], cache_root: Path, progress) -> dict[str, np.ndarray]:
    """Each distinct text's MiniLM vector, embedded once. Finished chunks are kept under
    `cache_root` (by the texts' digest), so an interrupted build resumes where it stopped."""
    from serving.search.vectors import shared_embedder

    distinct = sorted(set(texts))
    cache = cache_root / hashlib.sha256("\n".join(distinct).encode()).hexdigest()[:16]
    cache.mkdir(parents=True, exist_ok=True)
    chunks = []
    task = progress.task("embedding distinct texts", len(distinct)) if progress else None
    for number, start in enumerate(range(0, len(distinct), EMBED_CHUNK)):
        part = distinct[start:start + EMBED_CHUNK]
        saved = cache / f"{number:05d}-{len(part)}.npy"
        if not saved.exists():
            np.save(saved.with_suffix(".tmp.npy"), shared_embedder().embed(part))
            saved.with_suffix(".tmp.npy").rename(saved)
        chunks.append(np.load(saved))
        if task:
            task.advance(len(part))
    return dict(zip(distinct, np.concatenate(chunks), strict=True))


def _build_snapshot(count: int, seed: int, directory: Path) -> dict[str, float]:
    from serving.search import snapshot
    from serving.search.index import SearchIndex
    from serving.search.service import FEEDS
    from serving.search.vectors import shared_embedder
    from transactional.datagen.progress import progress_bars
    from transactional.services.change_feed import FeedPosition

    products = synthetic_catalog(count, seed)
    texts = [product.embedding_text() for product in products]
    with progress_bars() as progress:
        began = time.perf_counter()
        vectors = embed_distinct(texts, directory.with_name("vectors"), progress)
        embedded = time.perf_counter() - began
        row_of = {product.id: vectors[text] for product, text in zip(products, texts, strict=True)}
        index = SearchIndex(shared_embedder())
        indexing = progress.task("indexing products", count) if progress else None
        began = time.perf_counter()
        index.load(products, known_vector=lambda product: row_of[product.id],
                   progress=indexing.advance if indexing else None)
        indexed = time.perf_counter() - began
    snapshot.save(snapshot.capture(index, {feed: FeedPosition() for feed in FEEDS}), directory)
    return {"cached": 0.0, "distinct_texts": len(vectors), "embed_seconds": round(embedded, 1),
            "index_seconds": round(indexed, 1)}


def snapshot_for(count: int, seed: int) -> tuple[Path, dict[str, float]]:
    """A saved index of the synthetic catalog, built once (in a child process, so its memory is
    returned before the server starts) and reused."""
    from serving.search import snapshot
    from transactional.config import get_settings

    directory = get_settings().home_dir / "bench-search" / f"{count}-{seed}-d{DESIGNS}"
    state = directory / "state.json"  # written last: a snapshot with one is complete
    if state.exists() and json.loads(state.read_text()).get("format") == snapshot.FORMAT_VERSION:
        return directory, {"cached": 1.0}
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as builder:
        return directory, builder.submit(_build_snapshot, count, seed, directory).result()


# The workload -----------------------------------------------------------------------------------

def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 5:
        return word
    position = rng.randrange(1, len(word) - 2)
    return word[:position] + word[position + 1] + word[position] + word[position + 2:]


def distinct_searches(count: int, seed: int) -> list[dict]:
    """Query-string parameters of `count` distinct searches, most common first."""
    from transactional.datagen.vocabulary import leaves

    rng = random.Random(seed)
    catalog = leaves()
    searches, seen = [], set()
    while len(searches) < count:
        root, leaf = rng.choice(catalog)
        noun = rng.choice(leaf.nouns)
        colours = leaf.attributes.get("colour", ())
        shape = rng.random()
        if shape < 0.35:
            text = noun
        elif shape < 0.55:
            text = f"{rng.choice(root.adjectives)} {noun}"
        elif shape < 0.7:
            text = f"{rng.choice(root.brands).lower()} {noun}"
        elif shape < 0.82 and colours:
            text = f"{rng.choice(colours)} {noun}"
        elif shape < 0.9:
            text = " ".join(_typo(word, rng) for word in noun.split())
        else:
            text = f"{rng.choice(root.adjectives)} {rng.choice(root.brands).lower()} {noun}"
        params: dict[str, object] = {"q": text}
        if rng.random() < 0.2:
            params.update(rng.choice([{"category": root.slug}, {"price_max": round(leaf.median_price, 0)},
                                      {"in_stock": "true"}, {"rating_min": 4}]))
        if rng.random() < 0.1:
            params["sort"] = "price_asc"
        key = tuple(sorted(params.items()))
        if key not in seen:
            seen.add(key)
            searches.append(params)
    return searches


def zipf_sample(items: list, size: int, rng: random.Random, exponent: float = 1.0) -> list:
    weights = [1.0 / (rank + 1) ** exponent for rank in range(len(items))]
    return rng.choices(items, weights=weights, k=size)


def cold_searches(size: int, seed: int) -> list[dict]:
    """Searches no earlier phase sent: a number no query uses makes each text new."""
    rng = random.Random(seed + 1)
    base = distinct_searches(DISTINCT_QUERIES, seed)
    return [{**rng.choice(base), "q": f"{rng.choice(base)['q']} {number}"} for number in range(size)]


def suggest_prefixes(size: int, seed: int) -> list[dict]:
    rng = random.Random(seed + 2)
    texts = [search["q"] for search in distinct_searches(DISTINCT_QUERIES, seed)]
    return [{"q": text[: rng.randint(1, min(12, len(text)))]} for text in zipf_sample(texts, size, rng)]


def warm_up(base_url: str, seed: int, headers: dict[str, str] | None = None) -> dict:
    """Every distinct search of the warm mix once, two at a time, as a running server has seen them."""
    return run_phase(base_url, "/v1/search", distinct_searches(DISTINCT_QUERIES, seed), 2, 3600, headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="5k products and shorter phases")
    parser.add_argument("--products", type=int, help="catalog size (default 100k, 5k with --small)")
    parser.add_argument("--seconds", type=float, help="length of each phase (default 20, 10 with --small)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight in throughput phases")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    products = args.products or (5_000 if args.small else 100_000)
    seconds = args.seconds or (10.0 if args.small else 20.0)

    directory, build = snapshot_for(products, args.seed)
    rng = random.Random(args.seed)
    warm = zipf_sample(distinct_searches(DISTINCT_QUERIES, args.seed), 200_000, rng)
    cold = cold_searches(20_000, args.seed)
    prefixes = suggest_prefixes(50_000, args.seed)
    figures: dict[str, object] = {"products": products, "seconds_per_phase": seconds,
                                  "concurrency": args.concurrency, "snapshot": build}
    os.environ["MARKETLAKE_SEARCH_SNAPSHOT_DIR"] = str(directory)
    with scratch_database(DATABASE), api_server("serving.app:create_app") as base_url:
        figures["server_index_load_seconds"] = round(wait_ready(base_url), 1)
        figures["server_rss_mb_loaded"] = resident_megabytes(base_url)
        figures["search_warmup"] = warm_up(base_url, args.seed)
        phases = {
            "healthz_latency": ("/healthz", [{}] * 1_000_000, 1),
            "search_warm_latency": ("/v1/search", warm, 1),
            "search_cold_latency": ("/v1/search", cold, 1),
            "suggest_latency": ("/v1/search/suggest", prefixes, 1),
            "healthz_throughput": ("/healthz", [{}] * 1_000_000, args.concurrency),
            "search_warm_throughput": ("/v1/search", warm[len(warm) // 2:], args.concurrency),
        }
        for name, (path, requests, concurrency) in phases.items():
            figures[name] = run_phase(base_url, path, requests, concurrency, seconds)
        figures["server_rss_mb_after"] = resident_megabytes(base_url)
    healthz, search = figures["healthz_throughput"], figures["search_warm_throughput"]
    figures["ratios"] = {
        "search_warm_rps_over_healthz_rps": round(search["requests_per_s"] / healthz["requests_per_s"], 4),
        "search_warm_p95_over_healthz_p95": round(
            figures["search_warm_latency"]["p95_ms"] / figures["healthz_latency"]["p95_ms"], 2),
    }
    figures["target_search_p95_ms"] = TARGET_P95_MS
    figures["target_met_warm"] = figures["search_warm_latency"]["p95_ms"] < TARGET_P95_MS
    figures["target_met_cold"] = figures["search_cold_latency"]["p95_ms"] < TARGET_P95_MS
    report("search", figures)


if __name__ == "__main__":
    main()
