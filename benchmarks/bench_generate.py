"""Marketplace generation and loading rates per scale, with peak memory.

- generate: `generate_marketplace(scale, seed)` in a fresh process per scale (so its peak
  resident memory, from resource.getrusage, is that scale's alone): seconds, events/s, rows/s;
- baseline_numpy: the same number of event rows of uniform random columns made with numpy into
  a polars frame, in the same process: the floor cost of producing a columnar table that size;
  `ratio_to_baseline` is generation events/s over it;
- load (scales up to --load-up-to): `load_marketplace` through the services into a scratch
  database (created, migrated and dropped here): seconds per step and rows/s overall.

    python -m benchmarks.bench_generate [--small] [--scales tiny small medium large] [--load-up-to medium]

--small runs tiny and small (generation and load).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

SCALES = ("tiny", "small", "medium", "large")
DATABASE = "marketlake_bench_generate"


def _generate(scale: str) -> dict:
    import numpy as np
    import polars as pl

    from transactional.datagen.generator import generate_marketplace

    started = time.perf_counter()
    data = generate_marketplace(scale, seed=7)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    counts = data.counts()
    events = counts["events"]
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    pl.DataFrame({name: rng.integers(0, 1 << 30, events) for name in ("session", "user", "product", "sku", "at")})
    baseline = events / (time.perf_counter() - started)
    rate = events / seconds
    return {"seconds": round(seconds, 2), "rows": sum(counts.values()), "events": events,
            "products": counts["products"], "skus": counts["skus"], "orders": counts["orders"],
            "events_per_s": round(rate), "rows_per_s": round(sum(counts.values()) / seconds),
            "peak_rss_mib": round(peak_mib), "baseline_numpy_rows_per_s": round(baseline),
            "ratio_to_baseline": round(rate / baseline, 4)}


def generate_in_fresh_process(scale: str) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_generate, (scale,))


def load(scale: str) -> dict:
    from benchmarks.common import scratch_database
    from transactional.datagen.generator import generate_marketplace
    from transactional.datagen.loader import load_marketplace

    data = generate_marketplace(scale, seed=7)
    with scratch_database(DATABASE):
        started = time.perf_counter()
        summary = load_marketplace(data)
        seconds = time.perf_counter() - started
    rows = sum(summary.written.values())
    return {"seconds": round(seconds, 1), "rows_written": rows, "rows_per_s": round(rows / seconds),
            "events_per_s": round(summary.written.get("events", 0) / max(summary.seconds["events"], 1e-9)),
            "step_seconds": summary.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="tiny and small only")
    parser.add_argument("--scales", nargs="+", choices=SCALES, default=["tiny", "small", "medium"])
    parser.add_argument("--load-up-to", choices=SCALES, default="medium",
                        help="load scales up to this one through the services (larger ones generate only)")
    args = parser.parse_args()
    scales = ["tiny", "small"] if args.small else args.scales
    limit = "small" if args.small else args.load_up_to
    figures = {}
    for scale in scales:
        figures[scale] = {"generate": generate_in_fresh_process(scale)}
        if SCALES.index(scale) <= SCALES.index(limit):
            figures[scale]["load"] = load(scale)
    from benchmarks.common import report

    report("generate", figures)


if __name__ == "__main__":
    main()
