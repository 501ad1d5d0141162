"""Marketplace data: a deterministic generator, importers for real data sets, and a shopper
traffic simulator that drives the real API.

- `generate_marketplace(scale, seed)` (pure) and `generate_and_load(scale, seed)` (through the services);
- `olist.import_olist(dir)` and `interactions.import_interactions(session, path=..., fmt=...)`;
- `run_simulation(api_url, shoppers=..., duration=...)`.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from transactional.datagen.generator import generate_marketplace
from transactional.datagen.loader import DEMO_PASSWORD, LoadSummary, load_marketplace
from transactional.datagen.progress import progress_bars
from transactional.datagen.simulator import SimulationReport, run_simulation


class GenerateSummary(BaseModel):
    scale: str
    seed: int
    fingerprint: str
    rows: dict[str, int]
    generate_seconds: float
    load: LoadSummary | None
    password: str = DEMO_PASSWORD


def generate_and_load(scale: str | int, seed: int, progress: bool = True, load: bool = True) -> GenerateSummary:
    """Generate a marketplace and write it through the platform's services (idempotent: running
    it again with the same scale and seed writes nothing). Every generated account signs in with
    DEMO_PASSWORD; seller admins are `generator.seller_admin_emails(scale, seed)`."""
    started = time.perf_counter()
    data = generate_marketplace(scale, seed)
    generated = time.perf_counter() - started
    with progress_bars(progress) as bars:
        summary = load_marketplace(data, bars) if load else None
    return GenerateSummary(scale=data.scale, seed=seed, fingerprint=data.fingerprint(), rows=data.counts(),
                           generate_seconds=round(generated, 2), load=summary)


__all__ = ["GenerateSummary", "SimulationReport", "generate_and_load", "generate_marketplace", "run_simulation"]
