"""Session logs: read from a session column or attached to a (user, item) log, cut by every split to
what its training part allows (no held-out interaction, nothing after a time split's cut), and
item2vec's sentences when present."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from models.data import Interactions, from_frame, load_interactions
from models.item2vec import Item2Vec, sentences
from models.protocols import leave_last_out, time_split

FAMILIES = {"a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2", "b3", "b4"]}


def session_items(data: Interactions) -> dict[str, list[str]]:
    """Each user's sessions in the session log, as item ids."""
    log = data.sessions
    named = {}
    for session in pd.unique(log["session"]):
        steps = log[log["session"] == session]
        user = data.user_ids[steps["user"].iloc[0]]
        named.setdefault(user, []).append([str(data.item_ids[item]) for item in steps["item"]])
    return named


def two_family_shoppers(users: int = 60, seed: int = 0) -> pd.DataFrame:
    """Every shopper has one session within each item family, one after the other: a shopper's history
    mixes the families while each session stays within one."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(users):
        order = ["a", "b"] if user % 2 else ["b", "a"]
        for number, family in enumerate(order):
            rows += [(f"u{user}", item, f"u{user}/{number}") for item in rng.permutation(FAMILIES[family])]
    frame = pd.DataFrame(rows, columns=["user_id", "product_id", "session_id"])
    return frame.assign(timestamp=range(len(rows)))


def family_margins(data: Interactions) -> np.ndarray:
    """Per item: its least similar family member's cosine minus its most similar outsider's (> 0 when
    all its nearest neighbours are family)."""
    model = Item2Vec(vector_size=8, epochs=30, sample=0.0, random_state=1).fit(data)
    vectors = model.item_vectors()
    code = {item: index for index, item in enumerate(data.item_ids)}
    margins = []
    for family, members in FAMILIES.items():
        outsiders = [item for other, items in FAMILIES.items() if other != family for item in items]
        for item in members:
            similarity = {other: vectors[code[item]] @ vectors[code[other]] for other in code}
            nearest_outsider = max(similarity[other] for other in outsiders)
            margins.append(min(similarity[m] for m in members if m != item) - nearest_outsider)
    return np.array(margins)


def test_a_session_column_makes_the_session_log_in_time_order(tmp_path):
    path = tmp_path / "events.csv"
    pd.DataFrame(
        {
            "customer_id": ["u1", "u1", "u2", "u1", "u2"],
            "product_id": ["x", "y", "x", "z", "w"],
            "visit_id": ["s1", "s1", "s2", "s1", None],
            "timestamp": [3, 1, 5, 2, 6],
        }
    ).to_csv(path, index=False)
    data = load_interactions(path, "csv")
    # In time order; a row without a session is in none.
    assert session_items(data) == {"u1": [["y", "z", "x"]], "u2": [["x"]]}
    assert len(data) == 5


def test_logs_without_sessions_have_no_session_log(tmp_path):
    plain = from_frame(pd.DataFrame({"user": ["u1", "u1"], "item": ["x", "y"]}))
    sequence = tmp_path / "sequences.txt"
    sequence.write_text("u1 x y z\n")
    for data in (plain, load_interactions(sequence, "sequence")):
        assert data.sessions is None and data.session_sequences() == []
        assert data.subset(np.ones(len(data), dtype=bool)).sessions is None


def test_leave_last_out_keeps_the_held_out_item_out_of_its_users_sessions():
    # One row per (user, item) at its latest interaction, as gold.interactions; the sessions come apart.
    rows = pd.DataFrame(
        [("u", "y", 100), ("u", "z", 101), ("u", "x", 102), ("v", "x", 10), ("v", "y", 11)],
        columns=["user", "item", "timestamp"],
    )
    steps = pd.DataFrame(
        [
            ("s1", "u", "x", 0),  # x first seen in an earlier session...
            ("s1", "u", "y", 0),
            ("s2", "u", "y", 100),
            ("s2", "u", "z", 100),
            ("s2", "u", "x", 100),  # ...and last here: the held-out interaction
            ("s3", "v", "x", 10),
            ("s3", "v", "y", 10),
            ("s4", "stranger", "x", 5),  # outside the index
        ],
        columns=["session", "user", "item", "timestamp"],
    )
    data = from_frame(rows).with_sessions(steps)
    assert session_items(data) == {"u": [["x", "y"], ["y", "z", "x"]], "v": [["x", "y"]]}

    split = leave_last_out(data)
    test = split.test
    pairs = test.frame[["user", "item"]].to_numpy()
    assert {(test.user_ids[user], test.item_ids[item]) for user, item in pairs} == {("u", "x"), ("v", "y")}
    assert session_items(split.train) == {"u": [["y"], ["y", "z"]], "v": [["x"]]}
    assert sentences(split.train, None) == [["1", "2"]]  # u's y and z (item codes), the only pair left


def test_time_split_keeps_no_session_step_after_the_cut():
    # u revisits p after the cut: the pair stays in training, the later visit does not.
    rows = [("u", "p", "S", 7), ("u", "q", "S", 8), ("u", "p", "S", 9), ("u", "r", "S", 10)]
    rows += [("v", item, "T", t) for item, t in (("p", 1), ("q", 2), ("r", 3), ("p", 4), ("q", 5), ("r", 6))]
    data = from_frame(pd.DataFrame(rows, columns=["user", "item", "session", "timestamp"]))
    split = time_split(data, test_fraction=0.2)
    assert split.train.frame["timestamp"].max() < 9
    assert session_items(split.train) == {"u": [["p", "q"]], "v": [["p", "q", "r", "p", "q", "r"]]}
    assert (split.train.sessions["timestamp"] < 9).all()


def test_with_sessions_names_missing_columns():
    data = from_frame(pd.DataFrame({"user": ["u"], "item": ["x"]}))
    with pytest.raises(ValueError, match="timestamp"):
        data.with_sessions(pd.DataFrame({"session": ["s"], "user": ["u"], "item": ["x"]}))


def test_the_session_log_changes_the_fingerprint():
    data = from_frame(two_family_shoppers(users=4))
    assert data.fingerprint() != replace(data, sessions=None).fingerprint()


def test_item2vec_learns_from_sessions_what_user_histories_blur():
    data = from_frame(two_family_shoppers())
    assert (family_margins(data) > 0).all()  # every item's nearest neighbours are its family
    # Grouped by shopper, each history holds both families within one window: no item is separated.
    assert (family_margins(replace(data, sessions=None)) < 0).all()


def test_item2vec_without_any_multi_item_session_keeps_zero_vectors():
    data = from_frame(pd.DataFrame({"user": ["u", "u"], "item": ["x", "y"], "session": ["s1", "s2"]}))
    model = Item2Vec(vector_size=4).fit(data)
    assert not model.item_vectors().any()
    assert model.score(np.array([0])).shape == (1, 2)
