"""Each model on tiny logs with an obvious right answer; the tuner and the blend choose the better option."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pandas as pd
import pytest

from models.als import ImplicitALS
from models.base import Recommender
from models.blend import Blend, fit_weights
from models.data import Interactions, from_frame
from models.ease import EASE
from models.experiment import run, table
from models.item2vec import Item2Vec
from models.popularity import (
    CategoryPopularity,
    DecayedPopularity,
    ItemPopularity,
    TemporalPopularity,
    TenantPopularity,
)
from models.protocols import leave_last_out, random_holdout
from models.synthetic import marketplace_interactions
from models.tuning import tune

DAY = 86_400


def frame(rows, columns=("user", "item", "timestamp")) -> Interactions:
    return from_frame(pd.DataFrame(rows, columns=list(columns)))


def ranking(model: Recommender, data: Interactions, user: str) -> list[str]:
    code = int(np.flatnonzero(data.user_ids == user)[0])
    scores = model.score(np.array([code]))[0]
    return [str(data.item_ids[i]) for i in np.argsort(-scores, kind="stable")]


def blocks(n_users: int = 20, n_items: int = 10, held_out: str = "i4") -> Interactions:
    """Users u0..u9 use items i0..i4, users u10..u19 items i5..i9; u0 has not met `held_out` yet."""
    half_users, half_items = n_users // 2, n_items // 2
    rows = [
        (f"u{user}", f"i{item}", 0)
        for user in range(n_users)
        for item in (range(half_items) if user < half_users else range(half_items, n_items))
        if not (user == 0 and f"i{item}" == held_out)
    ]
    return frame(rows)


# ---------------------------------------------------------------- popularity


def test_item_popularity_orders_by_distinct_users():
    data = frame(
        [
            ("a", "x", 0),
            ("b", "x", 0),
            ("c", "x", 0),
            ("a", "y", 0),
            ("b", "y", 0),
            ("a", "z", 0),
            ("a", "z", 1),
        ]
    )
    assert ranking(ItemPopularity().fit(data), data, "c") == ["x", "y", "z"]


def test_decayed_popularity_prefers_recent_interest():
    old = [(f"u{n}", "old_hit", 0) for n in range(5)]
    recent = [(f"v{n}", "new_hit", 60 * DAY) for n in range(3)]
    data = frame(old + recent)
    assert ranking(DecayedPopularity(half_life_days=7).fit(data), data, "u0")[0] == "new_hit"
    # With a half-life far longer than the log, it is plain popularity again.
    assert ranking(DecayedPopularity(half_life_days=10_000).fit(data), data, "u0")[0] == "old_hit"


def test_group_popularity_puts_the_users_groups_first():
    rows = [(f"u{n}", "blockbuster", "films", "s1") for n in range(6)]
    rows += [
        ("fan", "novel", "books", "s2"),
        ("x", "novel", "books", "s2"),
        ("fan", "atlas", "books", "s2"),
        ("y", "cookbook", "books", "s2"),
        ("z", "cookbook", "books", "s2"),
        ("w", "cookbook", "books", "s2"),
    ]
    data = frame(rows, columns=("user", "item", "category", "tenant"))
    assert ranking(CategoryPopularity(prior=0.05).fit(data), data, "fan")[0] == "cookbook"
    assert ranking(TenantPopularity(prior=0.05).fit(data), data, "fan")[0] == "cookbook"
    assert ranking(ItemPopularity().fit(data), data, "fan")[0] == "blockbuster"


def test_group_popularity_without_groups_is_plain_popularity():
    data = frame([("a", "x", 0), ("b", "x", 0), ("a", "y", 0)])
    assert ranking(CategoryPopularity().fit(data), data, "b") == ["x", "y"]


def test_temporal_popularity_prefers_items_popular_while_the_user_was_active():
    early = [(f"e{n}", "winter_hit", n * 3600) for n in range(5)] + [("early_bird", "gloves", 0)]
    late = [(f"l{n}", "summer_hit", 120 * DAY + n * 3600) for n in range(8)]
    data = frame(early + late)
    assert ranking(TemporalPopularity(bandwidth_days=7).fit(data), data, "early_bird")[0] == "winter_hit"
    assert ranking(ItemPopularity().fit(data), data, "early_bird")[0] == "summer_hit"


# ---------------------------------------------------------------- collaborative models


@pytest.mark.parametrize(
    "model",
    [ImplicitALS(factors=4, regularization=0.01, iterations=20, num_threads=1), EASE(l2=1.0)],
    ids=["als", "ease"],
)
def test_collaborative_models_recover_block_structure(model):
    data = blocks()
    scores = model.fit(data).score(np.array([int(np.flatnonzero(data.user_ids == "u0")[0])]))[0]
    held_out = scores[list(data.item_ids).index("i4")]
    other_block = [scores[list(data.item_ids).index(f"i{item}")] for item in range(5, 10)]
    assert held_out > max(other_block)


def test_als_is_reproducible_with_a_seed():
    data = blocks()
    first = ImplicitALS(factors=4, iterations=5, random_state=7, num_threads=1).fit(data).item_vectors()
    again = ImplicitALS(factors=4, iterations=5, random_state=7, num_threads=1).fit(data).item_vectors()
    assert np.allclose(first, again)


@pytest.mark.parametrize("bought, viewed", [("a1", "b1"), ("b1", "a1")])
def test_als_confidence_follows_event_weights(bought, viewed):
    # Two item families; the shopper bought from one and only glanced at the other.
    rows = [
        (f"u{n}", f"{family}{item}", "view") for n, family in enumerate("ab" * 10) for item in range(1, 5)
    ]
    rows += [("shopper", bought, "purchase"), ("shopper", viewed, "view")]
    data = frame(rows, columns=("user", "item", "event_type"))
    model = ImplicitALS(factors=2, regularization=0.1, iterations=20, num_threads=1).fit(data)
    scores = dict(zip(data.item_ids, model.score(np.flatnonzero(data.user_ids == "shopper"))[0]))
    assert scores[f"{bought[0]}2"] > scores[f"{viewed[0]}2"]


def test_ease_limits_its_item_set_to_the_most_popular():
    data = blocks()
    model = EASE(l2=1.0, max_items=4).fit(data)
    assert len(model.kept_items) == 4
    scores = model.score(np.arange(data.n_users))
    assert np.count_nonzero(scores.any(axis=0)) <= 4


def test_item2vec_puts_co_occurring_items_close():
    rng = np.random.default_rng(0)
    rows = []
    for user in range(60):
        # Each session stays within one of two item families.
        family = ["a1", "a2", "a3", "a4"] if user % 2 else ["b1", "b2", "b3", "b4"]
        rows += [(f"u{user}", item, step) for step, item in enumerate(rng.permutation(family))]
    data = frame(rows)
    # No down-sampling: in so small a corpus every item counts as frequent.
    model = Item2Vec(vector_size=8, window=3, epochs=30, sample=0.0, random_state=1).fit(data)
    vectors = model.item_vectors()
    index = {item: i for i, item in enumerate(data.item_ids)}
    same = vectors[index["a1"]] @ vectors[index["a2"]]
    across = vectors[index["a1"]] @ vectors[index["b1"]]
    assert same > across
    assert ranking(model, data, "u1")[0].startswith("a")


def test_sasrec_learns_a_deterministic_next_item():
    pytest.importorskip("torch")
    from models.sequential import SASRec

    # Every user walks the cycle i0 -> i1 -> ... -> i7 -> i0 from a different start.
    rows = [(f"u{user}", f"i{(user + step) % 8}", step) for user in range(40) for step in range(12)]
    data = frame(rows)
    model = SASRec(
        embedding_dim=16, blocks=1, max_length=8, epochs=60, learning_rate=0.01, dropout=0.0, random_state=0
    ).fit(data)
    users = np.arange(data.n_users)
    predicted = model.score(users).argmax(axis=1)
    last = np.array(
        [data.frame[data.frame["user"] == user].sort_values("timestamp")["item"].iloc[-1] for user in users]
    )
    expected = np.array(
        [list(data.item_ids).index(f"i{(int(data.item_ids[item][1:]) + 1) % 8}") for item in last]
    )
    assert (predicted == expected).mean() >= 0.9


def test_sasrec_sampled_softmax_path_trains():
    pytest.importorskip("torch")
    from models.sequential import SASRec

    data = from_frame(marketplace_interactions(1_500, 60, 200, random_state=2))
    model = SASRec(
        embedding_dim=8, blocks=1, max_length=10, epochs=2, full_softmax_items=50, sampled_negatives=32
    ).fit(data)
    scores = model.score(np.arange(5))
    assert scores.shape == (5, data.n_items) and np.isfinite(scores).all()


# ---------------------------------------------------------------- tuning and blending


@dataclass
class Knob(Recommender):
    """Scores the held-out truth high when `good`, at random otherwise."""

    name = "knob"
    good: bool = False
    truth: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    def fit(self, train: Interactions) -> Self:
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        noise = np.random.default_rng(0).random((len(users), self.truth.shape[1])).astype(np.float32)
        return self.truth[users] + noise if self.good else noise


def truth_of(split) -> np.ndarray:
    return split.test.matrix(weighted=False).toarray() * 10


def test_tune_picks_the_better_value_on_validation():
    data = from_frame(marketplace_interactions(2_000, 80, 60, random_state=5))
    validation = random_holdout(data, seed=3)
    tuned = tune(
        lambda good: Knob(good=good, truth=truth_of(validation)), {"good": [False, True]}, validation
    )
    assert tuned.params == {"good": True}
    assert len(tuned.trials) == 2


def test_blend_weights_favour_the_informative_member():
    data = from_frame(marketplace_interactions(2_000, 80, 60, random_state=6))
    validation = leave_last_out(data)
    members = [Knob(good=False, truth=truth_of(validation)), Knob(good=True, truth=truth_of(validation))]
    weights, score = fit_weights(members, validation)
    assert weights[1] > weights[0]
    assert score == pytest.approx(1.0)
    users = np.unique(validation.test.frame["user"].to_numpy())
    assert Blend(members, weights).score(users).shape == (len(users), data.n_items)


def test_experiment_tunes_fits_and_blends_every_model():
    data = from_frame(marketplace_interactions(3_000, 150, 120, random_state=8))
    runs = run([leave_last_out(data)], ["item_pop", "category_pop", "ease"])
    evaluation = table(runs)
    assert list(evaluation["model"]) == ["item_pop", "category_pop", "ease", "blend"]
    by_model = evaluation.set_index("model")
    # Users favour two categories: knowing them beats global popularity.
    assert by_model.loc["category_pop", "ndcg@10"] > by_model.loc["item_pop", "ndcg@10"]
    assert by_model.loc["blend", "validation"] >= by_model["validation"].drop("blend").max() - 1e-9
