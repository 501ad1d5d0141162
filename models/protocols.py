"""Evaluation protocols: how a log is split into what a model learns from and what it must find.

Each protocol can split its own training part the same way again (`inner`), which is where every
hyper-parameter and blend weight is chosen, so the test part is never looked at while tuning."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from models.data import Interactions, encode, file_digest, read_frame

ProtocolName = Literal["leave-last-out", "time-split", "random-holdout", "kfold", "movielens-folds"]


@dataclass(frozen=True)
class Split:
    """Training rows and test rows over one index. Test rows are already reduced to targets: pairs the
    user has not interacted with in training, from users who have some training history."""

    name: str
    train: Interactions
    test: Interactions
    protocol: ProtocolName
    seed: int = 0

    def inner(self) -> Split:
        """The same protocol applied to the training rows: for choosing hyper-parameters."""
        return split(self.train, self.protocol, seed=self.seed + 1, name=f"{self.name}/inner")

    def with_test_users(self, max_users: int, seed: int = 0) -> Split:
        """The same split scored on at most `max_users` random test users (to bound memory and time)."""
        users = np.unique(self.test.frame["user"].to_numpy())
        if len(users) <= max_users:
            return self
        kept = np.random.default_rng(seed).choice(users, size=max_users, replace=False)
        return replace(self, test=self.test.subset(np.isin(self.test.frame["user"].to_numpy(), kept)))


def _targets(train: Interactions, test: Interactions) -> Interactions:
    seen = set(zip(train.frame["user"].to_numpy().tolist(), train.frame["item"].to_numpy().tolist()))
    known_users = np.zeros(train.n_users, dtype=bool)
    known_users[train.frame["user"].to_numpy()] = True
    frame = test.frame
    keep = known_users[frame["user"].to_numpy()] & np.fromiter(
        ((user, item) not in seen for user, item in zip(frame["user"].tolist(), frame["item"].tolist())),
        dtype=bool,
        count=len(frame),
    )
    targets = test.subset(keep)
    return targets.subset(~targets.frame.duplicated(["user", "item"]).to_numpy())


def _make(name: str, data: Interactions, test_mask: np.ndarray, protocol: ProtocolName, seed: int) -> Split:
    train = data.subset(~test_mask)
    return Split(name, train, _targets(train, data.subset(test_mask)), protocol, seed)


def leave_last_out(data: Interactions, name: str = "leave-last-out", seed: int = 0) -> Split:
    """Each user's last interaction (by time, ties by input order) is the test; users with a single
    interaction only train."""
    frame = data.frame
    order = np.lexsort((np.arange(len(frame)), frame["timestamp"].to_numpy(), frame["user"].to_numpy()))
    users = frame["user"].to_numpy()[order]
    last = np.r_[users[1:] != users[:-1], True]
    first = np.r_[True, users[1:] != users[:-1]]
    test_mask = np.zeros(len(frame), dtype=bool)
    test_mask[order[last & ~first]] = True
    return _make(name, data, test_mask, "leave-last-out", seed)


def time_split(
    data: Interactions, test_fraction: float = 0.2, name: str = "time-split", seed: int = 0
) -> Split:
    """Everything at or after the time that leaves `test_fraction` of the rows behind it is the test."""
    timestamps = data.frame["timestamp"].to_numpy()
    cutoff = np.quantile(timestamps, 1.0 - test_fraction, method="higher")
    return _make(name, data, timestamps >= cutoff, "time-split", seed)


def random_holdout(
    data: Interactions, test_fraction: float = 0.2, seed: int = 0, name: str = "random-holdout"
) -> Split:
    """A random `test_fraction` of the rows, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    return _make(name, data, rng.random(len(data)) < test_fraction, "random-holdout", seed)


def kfold(data: Interactions, folds: int = 5, seed: int = 0) -> list[Split]:
    """`folds` disjoint random test parts of equal size, each against the rest (Gorse's and LibRec's
    k-fold cross-validation; their published MovieLens-100k tables come from this protocol on u.data)."""
    part = np.random.default_rng(seed).permutation(len(data)) % folds
    return [_make(f"fold{fold + 1}", data, part == fold, "kfold", seed + fold) for fold in range(folds)]


def split(data: Interactions, protocol: ProtocolName, seed: int = 0, name: str | None = None) -> Split:
    """One split of `data` by the named protocol; the k-fold protocols give a random holdout of the same
    share (it is what their inner validation splits use)."""
    name = name or protocol
    if protocol == "leave-last-out":
        return leave_last_out(data, name=name, seed=seed)
    if protocol == "time-split":
        return time_split(data, name=name, seed=seed)
    if protocol in ("random-holdout", "kfold", "movielens-folds"):
        return random_holdout(data, seed=seed, name=name)
    raise ValueError(f"unknown protocol {protocol!r}")


def movielens_folds(directory: Path, folds: tuple[int, ...] = (1, 2, 3, 4, 5)) -> list[Split]:
    """The GroupLens five-fold split u1..u5 (`u<k>.base` / `u<k>.test`, plain or gzipped): every
    rating is an interaction, as in the published top-10 tables."""
    directory = Path(directory)
    splits = []
    for fold in folds:
        base, test = (_fold_file(directory, f"u{fold}.{part}") for part in ("base", "test"))
        train, held_out = encode(
            [read_frame(base, "movielens"), read_frame(test, "movielens")],
            source={
                "path": str(directory),
                "sha256": file_digest(base)[:16] + file_digest(test)[:16],
                "format": "movielens",
            },
        )
        splits.append(Split(f"u{fold}", train, _targets(train, held_out), "movielens-folds", seed=fold))
    return splits


def _fold_file(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"{directory}: neither {stem} nor {stem}.gz")


def describe(split_: Split) -> dict[str, int]:
    return {
        "train_rows": len(split_.train),
        "test_rows": len(split_.test),
        "users": split_.train.n_users,
        "items": split_.train.n_items,
        "test_users": int(pd.unique(split_.test.frame["user"]).size),
    }
