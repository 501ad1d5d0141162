"""Metrics computed by hand, the splitting protocols, the harness in both ranking modes, and
`marketlake evaluate` on a tiny file in each input format."""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.base import Recommender
from models.data import Interactions, from_frame, load_interactions
from models.evaluation import Scoring, evaluate_full, evaluate_sampled, sample_negatives, top_k
from models.metrics import average_precision, coverage, hit_rate, ndcg, novelty, popularity_bias, recall
from models.protocols import Split, kfold, leave_last_out, time_split
from models.synthetic import marketplace_interactions


def log(rows: list[tuple[str, str, int]]) -> Interactions:
    return from_frame(pd.DataFrame(rows, columns=["user", "item", "timestamp"]))


@dataclass
class FixedScores(Recommender):
    """The same score row for every user."""

    name = "fixed"
    row: list[float] = field(default_factory=list)

    def fit(self, train: Interactions) -> Self:
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(np.asarray(self.row, np.float32), (len(users), 1))


# ---------------------------------------------------------------- metrics


def test_metrics_match_hand_computation():
    hits = np.array([[True, False, True], [False, True, False], [False, False, False]])
    relevant = np.array([2, 4, 1])
    assert ndcg(hits, relevant) == pytest.approx(
        [
            (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)),
            (1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4)),
            0.0,
        ]
    )
    assert recall(hits, relevant) == pytest.approx([1.0, 0.25, 0.0])
    assert hit_rate(hits, relevant) == pytest.approx([1.0, 1.0, 0.0])
    assert average_precision(hits, relevant) == pytest.approx([(1 + 2 / 3) / 2, (1 / 2) / 3, 0.0])


def test_beyond_accuracy_measures():
    recommended = np.array([[0, 1], [1, 2]])
    popularity = np.array([4, 2, 1, 0, 0, 0, 0, 0, 0, 0])
    assert coverage(recommended, 10) == pytest.approx(0.3)
    # -log2 of shares 1, 1/2, 1/2, 1/4
    assert novelty(recommended, popularity, 4) == pytest.approx((0 + 1 + 1 + 2) / 4)
    assert popularity_bias(recommended, popularity, 4) == pytest.approx((1 + 0.5 + 0.5 + 0.25) / 4)


def test_top_k_orders_best_first_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, -np.inf]])
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]


# ---------------------------------------------------------------- protocols


def test_leave_last_out_holds_out_each_users_latest_item():
    data = log([("a", "x", 1), ("a", "z", 3), ("a", "y", 2), ("b", "x", 5), ("c", "x", 1), ("c", "y", 1)])
    split = leave_last_out(data)
    test = {(data.user_ids[u], data.item_ids[i]) for u, i in split.test.frame[["user", "item"]].to_numpy()}
    # b has one interaction: it only trains; c's tie goes to the later row.
    assert test == {("a", "z"), ("c", "y")}
    assert len(split.train) == 4


def test_time_split_cuts_at_a_time_and_drops_unknown_users_and_seen_pairs():
    rows = [("a", f"i{t}", t) for t in range(8)] + [("a", "i0", 8), ("a", "new", 9), ("ghost", "i1", 9)]
    data = log(rows)
    split = time_split(data, test_fraction=0.25)
    assert split.train.frame["timestamp"].max() < split.test.frame["timestamp"].min()
    test = {(data.user_ids[u], data.item_ids[i]) for u, i in split.test.frame[["user", "item"]].to_numpy()}
    # a re-buying i0 is already known; the ghost user has no history to personalise from.
    assert test == {("a", "new")}


def test_kfold_parts_are_disjoint_and_cover_the_log():
    rows = [(f"u{user}", f"i{(user * 7 + step) % 60}", step) for user in range(50) for step in range(20)]
    data = log(rows)
    splits = kfold(data, folds=4, seed=1)
    held_out = pd.concat([s.test.frame for s in splits])
    assert [s.name for s in splits] == ["fold1", "fold2", "fold3", "fold4"]
    assert all(len(s.train) + len(s.test) == len(data) for s in splits)
    assert len(held_out) == len(data) and not held_out.duplicated(["user", "item"]).any()
    inner = splits[0].inner()
    assert len(inner.train) + len(inner.test) == len(splits[0].train)


# ---------------------------------------------------------------- harness


def tiny_split() -> Split:
    # One user; items 0..4. Train has item 0; the user's targets are items 1 and 3.
    data = log([("u", "i0", 0), ("u", "i1", 1), ("u", "i2", 2), ("u", "i3", 3), ("u", "i4", 4)])
    return Split(
        "tiny",
        data.subset(np.array([True, False, False, False, False])),
        data.subset(np.array([False, True, False, True, False])),
        "leave-last-out",
    )


def test_full_ranking_excludes_training_items_and_matches_hand_ndcg():
    split = tiny_split()
    # Item 0 scores highest but is already known: the list is 3, 2, 1 (4 last).
    metrics = evaluate_full(FixedScores(row=[9.0, 1.0, 2.0, 3.0, 0.0]), split, k=3)
    assert metrics["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert metrics["recall@3"] == pytest.approx(1.0)
    assert metrics["map@3"] == pytest.approx((1 + 2 / 3) / 2)
    assert metrics["coverage@3"] == pytest.approx(3 / 5)


def test_sampled_ranking_rewards_the_positive_above_its_negatives():
    data = from_frame(marketplace_interactions(3_000, 150, 400))
    split = leave_last_out(data)
    targets = split.test.frame

    @dataclass
    class Oracle(Recommender):
        name = "oracle"

        def fit(self, train):
            return self

        def score(self, users):
            scores = np.zeros((len(users), data.n_items), np.float32)
            wanted = targets[targets["user"].isin(users)]
            scores[np.searchsorted(users, wanted["user"]), wanted["item"]] = 1.0
            return scores

    perfect = evaluate_sampled(Oracle(), split, k=10, negatives=100, seed=3)
    constant = evaluate_sampled(FixedScores(row=[0.0] * data.n_items), split, k=10, negatives=100, seed=3)
    assert perfect["hr@10"] == pytest.approx(1.0) and perfect["ndcg@10"] == pytest.approx(1.0)
    # Ties count half: a constant model puts the positive at rank 50 of 101.
    assert constant["hr@10"] == 0.0


def test_sampled_negatives_are_distinct_unseen_and_fixed_by_the_seed():
    data = from_frame(marketplace_interactions(3_000, 100, 300, random_state=9))
    split = leave_last_out(data)
    users, positives, drawn = sample_negatives(split, negatives=100, seed=5)
    interacted = (split.train.matrix() + split.test.matrix()).tocsr()
    for user, row in zip(users, drawn):
        assert len(set(row)) == 100
        assert not set(row) & set(interacted[user].indices)
    assert np.array_equal(drawn, sample_negatives(split, negatives=100, seed=5)[2])
    assert not np.array_equal(drawn, sample_negatives(split, negatives=100, seed=6)[2])


def test_scoring_passes_its_sampling_settings_on():
    split = leave_last_out(from_frame(marketplace_interactions(2_000, 100, 300, random_state=10)))
    model = FixedScores(row=list(np.linspace(0, 1, split.train.n_items)))
    # With 5 negatives every positive is among the 6 candidates, so always in the top 10.
    assert Scoring(k=10, ranking="sampled", negatives=5)(model, split)["hr@10"] == 1.0
    assert Scoring(k=10, ranking="sampled", negatives=100)(model, split)["hr@10"] < 1.0
    assert Scoring(k=5).target == "ndcg@5"


# ---------------------------------------------------------------- input formats and the CLI


@pytest.fixture
def interaction_files(tmp_path):
    frame = marketplace_interactions(3_000, 120, 80, random_state=4)
    csv = tmp_path / "events.csv"
    frame.to_csv(csv, index=False)
    movielens = tmp_path / "ratings.data.gz"
    with gzip.open(movielens, "wt") as stream:
        for row in frame.itertuples():
            stream.write(f"{row.user_id[1:]}\t{row.item_id[1:]}\t4\t{row.timestamp}\n")
    sequence = tmp_path / "sequences.txt"
    sequence.write_text(
        "".join(
            f"{user} {' '.join(group['item_id'])}\n" for user, group in frame.groupby("user_id", sort=False)
        )
    )
    return {"csv": csv, "movielens": movielens, "sequence": sequence}


def test_readers_agree_on_the_same_interactions(interaction_files):
    csv = load_interactions(interaction_files["csv"], "csv")
    movielens = load_interactions(interaction_files["movielens"], "movielens")
    sequence = load_interactions(interaction_files["sequence"], "sequence")
    assert len(csv) == len(movielens) == len(sequence) == 3_000
    assert csv.n_users == movielens.n_users == sequence.n_users
    assert csv.item_category is not None and csv.item_tenant is not None
    # Purchases weigh more than views.
    assert csv.frame["weight"].max() > csv.frame["weight"].min()
    assert len(csv.source["sha256"]) == 64


@pytest.mark.parametrize("input_format", ["csv", "movielens", "sequence"])
def test_evaluate_command_prints_one_table_for_every_model(interaction_files, input_format, tmp_path):
    from orchestration.cli import app

    output = tmp_path / "table.csv"
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--interactions",
            str(interaction_files[input_format]),
            "--format",
            input_format,
            "--models",
            "item_pop,category_pop,ease",
            "--no-mlflow",
            "--output",
            str(output),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(output)
    expected = {"item_pop", "ease", "blend"} | ({"category_pop"} if input_format == "csv" else set())
    assert set(table["model"]) == expected
    assert "ndcg@10" in result.stdout and "ease" in result.stdout
    assert (table["ndcg@10"].between(0, 1)).all()


def test_evaluate_command_names_a_bad_option():
    from orchestration.cli import app

    result = CliRunner().invoke(app, ["evaluate", "--protocol", "movielens-folds", "--no-mlflow"])
    assert result.exit_code == 2
    assert "--path" in result.output


def test_evaluate_command_rejects_unknown_models(interaction_files):
    from orchestration.cli import app

    result = CliRunner().invoke(
        app, ["evaluate", "-i", str(interaction_files["csv"]), "--models", "magic", "--no-mlflow"]
    )
    assert result.exit_code == 2
    assert "magic" in result.output
