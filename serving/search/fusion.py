"""Fusing the lexical and the semantic ranking: weighted reciprocal rank fusion (RRF).

score(d) = sum over rankings r of  w_r / (k + rank_r(d)),  rank starting at 1.

Why RRF rather than a weighted sum of scores: BM25 scores are unbounded and depend on the query's
length and term rarity, cosine similarities crowd into a narrow band; normalising either per query
(min-max, z-score) is fragile when one list is short or flat. RRF only uses ranks, needs no
calibration, and rewards products both retrievers agree on (Cormack et al., SIGIR 2009; the default
hybrid fusion of Elasticsearch, OpenSearch and Vespa). k = 60 is the paper's value; the weights
let one retriever count more, and the semantic list is cut at a similarity floor first so that
"nearest" never means "unrelated". `marketlake evaluate-search` measures the result against
either retriever alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RRF_K = 60.0


def reciprocal_rank_fusion(rankings: Sequence[np.ndarray], weights: Sequence[float], k: float = RRF_K
                           ) -> tuple[np.ndarray, np.ndarray]:
    """(slots, fused scores) over the union of `rankings` (each an array of slots, best first),
    best first, ties broken by slot."""
    slots = np.concatenate([np.asarray(ranking, dtype=np.int64) for ranking in rankings])
    if not len(slots):
        return slots, np.zeros(0)
    contributions = np.concatenate([
        weight / (k + np.arange(1, len(ranking) + 1)) for ranking, weight in zip(rankings, weights, strict=True)
    ])
    union, position = np.unique(slots, return_inverse=True)
    scores = np.bincount(position, weights=contributions)
    order = np.lexsort((union, -scores))
    return union[order], scores[order]
