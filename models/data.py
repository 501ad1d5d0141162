"""Interaction logs encoded against one shared user/item index, and readers for the input formats.

Every split of one data set (train, test, validation) keeps the same index, so a model fitted on
one part scores the items of another without any remapping. A log may carry a session log (what
each browsing session touched, in order) for models that learn from sessions."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

InputFormat = Literal["csv", "movielens", "sequence"]

# Confidence of one event of each type, relative to a view: a purchase says far more about taste
# than a glance at a product page. Unknown types count as a view.
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "search_click": 1.0,
    "wishlist": 3.0,
    "add_to_cart": 4.0,
    "review": 6.0,
    "purchase": 10.0,
    "order": 10.0,
}

_COLUMN_ALIASES = {
    "user": ("user", "user_id", "customer_id", "buyer_id", "userid", "shopper_id"),
    "item": ("item", "item_id", "product_id", "sku_id", "movie_id", "itemid"),
    "timestamp": ("timestamp", "ts", "time", "event_time", "occurred_at", "created_at"),
    "event_type": ("event_type", "event", "type", "action"),
    "weight": ("weight", "rating", "value", "quantity"),
    "category": ("category", "category_id", "product_category", "product_category_name"),
    "tenant": ("tenant", "tenant_id", "seller_id", "shop_id"),
    "session": ("session", "session_id", "sessionid", "visit_id"),
}
SESSION_LOG_COLUMNS = ["session", "user", "item", "timestamp"]


@dataclass(frozen=True)
class Interactions:
    """A log of (user, item, weight, timestamp) rows with dense integer codes.

    `user_ids[code]` and `item_ids[code]` give the original identifiers; `item_category` and
    `item_tenant` give each item's group code (-1 when unknown) for the group popularity models.

    `sessions`, when there is one, is the session log: one row per step (session code, user, item,
    timestamp), each session's steps together and in order. It only ever holds what the rows allow
    (`subset`), so a split's training part never learns a held-out interaction from a session."""

    frame: pd.DataFrame
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_category: np.ndarray | None = None
    item_tenant: np.ndarray | None = None
    source: dict[str, str] = field(default_factory=dict)
    sessions: pd.DataFrame | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, mask: np.ndarray | pd.Series) -> Interactions:
        """The rows selected by `mask`, keeping the shared index, and the session steps they allow."""
        frame = self.frame[np.asarray(mask)].reset_index(drop=True)
        return replace(self, frame=frame, sessions=self._steps_allowed_by(frame))

    def with_sessions(self, steps: pd.DataFrame) -> Interactions:
        """This log with a session log read from `steps` (columns session, user, item and timestamp, on
        the rows' clock; in order within each session), for logs whose rows carry no session, such as
        one row per (user, item). Steps of users or items outside the index are dropped, and so are
        those the rows do not allow."""
        missing = set(SESSION_LOG_COLUMNS) - set(steps.columns)
        if missing:
            raise ValueError(f"session steps need columns {sorted(missing)} (found {list(steps.columns)})")
        log = _session_log(
            pd.factorize(steps["session"])[0],
            pd.Index(self.user_ids).get_indexer(steps["user"]),
            pd.Index(self.item_ids).get_indexer(steps["item"]),
            _timestamps(steps, offset=0),
        )
        return replace(self, sessions=self._steps_allowed_by(self.frame, log))

    def _steps_allowed_by(self, frame: pd.DataFrame, log: pd.DataFrame | None = None) -> pd.DataFrame | None:
        """The session steps a model may learn from next to `frame`: a step stays only when its user has
        its item among the rows and it is no later than that user's latest row. Held-out items of a
        user are thereby never in that user's sessions, and nothing after a time split's cut is."""
        log = self.sessions if log is None else log
        if log is None:
            return None
        users, items = frame["user"].to_numpy(np.int64), frame["item"].to_numpy(np.int64)
        latest = np.full(self.n_users, np.iinfo(np.int64).min)
        np.maximum.at(latest, users, frame["timestamp"].to_numpy(np.int64))
        step_users = log["user"].to_numpy(np.int64)
        allowed = np.isin(step_users * self.n_items + log["item"].to_numpy(), users * self.n_items + items)
        allowed &= log["timestamp"].to_numpy() <= latest[step_users]
        return log[allowed].reset_index(drop=True)

    def matrix(self, weighted: bool = True) -> sp.csr_matrix:
        """Users x items; repeated interactions add up their weights (or count once when not weighted)."""
        values = self.frame["weight"].to_numpy(np.float32) if weighted else np.ones(len(self), np.float32)
        matrix = sp.csr_matrix(
            (values, (self.frame["user"].to_numpy(), self.frame["item"].to_numpy())),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        matrix.sum_duplicates()
        if not weighted:
            matrix.data[:] = 1.0
        return matrix

    def users(self) -> np.ndarray:
        """Codes of the users that have at least one row."""
        return np.unique(self.frame["user"].to_numpy())

    def item_popularity(self) -> np.ndarray:
        """Distinct users per item."""
        return np.asarray(self.matrix(weighted=False).sum(axis=0)).ravel()

    def sequences(self) -> dict[int, np.ndarray]:
        """Each user's items in time order (ties keep the input order)."""
        ordered = self.frame.sort_values(["user", "timestamp"], kind="stable")
        users = ordered["user"].to_numpy()
        items = ordered["item"].to_numpy()
        bounds = np.flatnonzero(np.diff(users)) + 1
        return {
            int(chunk_users[0]): chunk_items
            for chunk_users, chunk_items in zip(np.split(users, bounds), np.split(items, bounds))
            if len(chunk_users)
        }

    def session_sequences(self) -> list[np.ndarray]:
        """Each session's items in order (none without a session log)."""
        if self.sessions is None:
            return []
        sessions = self.sessions["session"].to_numpy()
        return np.split(self.sessions["item"].to_numpy(), np.flatnonzero(np.diff(sessions)) + 1)

    def fingerprint(self) -> str:
        """A short content hash of the encoded rows (and session log), to tell which data a run trained on."""
        digest = hashlib.sha256()
        columns = [self.frame[column] for column in ("user", "item", "weight", "timestamp")]
        if self.sessions is not None:
            columns += [self.sessions[column] for column in SESSION_LOG_COLUMNS]
        for column in columns:
            digest.update(np.ascontiguousarray(column.to_numpy()).tobytes())
        return digest.hexdigest()[:16]


def encode(frames: list[pd.DataFrame], source: dict[str, str] | None = None) -> list[Interactions]:
    """Encode raw frames (columns user, item and optionally timestamp, weight, event_type, category,
    tenant, session) against one index built from all of them, so they stay comparable. With a
    session column, the rows that name a session make up the session log."""
    combined = pd.concat(frames, ignore_index=True)
    if combined.empty:
        raise ValueError("no interactions")
    user_codes, user_ids = pd.factorize(combined["user"], sort=True)
    item_codes, item_ids = pd.factorize(combined["item"], sort=True)
    session_codes = pd.factorize(combined["session"])[0] if "session" in combined else None
    groups = {
        name: _item_groups(combined, item_codes, len(item_ids), name) for name in ("category", "tenant")
    }
    results, start = [], 0
    for frame in frames:
        stop = start + len(frame)
        encoded = pd.DataFrame(
            {
                "user": user_codes[start:stop].astype(np.int32),
                "item": item_codes[start:stop].astype(np.int32),
                "weight": _weights(frame).astype(np.float32),
                "timestamp": _timestamps(frame, offset=start),
            }
        )
        sessions = None
        if session_codes is not None:
            sessions = _session_log(
                session_codes[start:stop], encoded["user"], encoded["item"], encoded["timestamp"]
            )
        results.append(
            Interactions(
                encoded,
                np.asarray(user_ids),
                np.asarray(item_ids),
                groups["category"],
                groups["tenant"],
                dict(source or {}),
                sessions,
            )
        )
        start = stop
    return results


def _session_log(session, user, item, timestamp) -> pd.DataFrame:
    """Steps with a known session, user and item (codes >= 0), grouped by session in time order (ties
    keep the input order)."""
    log = pd.DataFrame(
        {
            "session": np.asarray(session, np.int64),
            "user": np.asarray(user, np.int32),
            "item": np.asarray(item, np.int32),
            "timestamp": np.asarray(timestamp, np.int64),
        }
    )
    known = (log[SESSION_LOG_COLUMNS[:3]] >= 0).all(axis=1)
    return log[known].sort_values(["session", "timestamp"], kind="stable").reset_index(drop=True)


def from_frame(frame: pd.DataFrame) -> Interactions:
    """One frame with columns named like the csv format's."""
    return encode([_canonical_columns(frame)])[0]


def _item_groups(
    combined: pd.DataFrame, item_codes: np.ndarray, n_items: int, column: str
) -> np.ndarray | None:
    if column not in combined:
        return None
    group_codes, _ = pd.factorize(combined[column])
    groups = np.full(n_items, -1, dtype=np.int32)
    # An item's group is the one it was last seen with.
    groups[item_codes] = group_codes
    return groups


def _weights(frame: pd.DataFrame) -> np.ndarray:
    if "weight" in frame:
        return frame["weight"].astype(float).to_numpy()
    if "event_type" in frame:
        event = frame["event_type"].astype(str).str.lower()
        return event.map(DEFAULT_EVENT_WEIGHTS).fillna(1.0).to_numpy()
    return np.ones(len(frame))


def _timestamps(frame: pd.DataFrame, offset: int) -> np.ndarray:
    """Seconds since the epoch; without a timestamp column the row order stands for time."""
    if "timestamp" not in frame:
        return np.arange(offset, offset + len(frame), dtype=np.int64)
    column = frame["timestamp"]
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(np.int64)
    parsed = pd.to_datetime(column, utc=True, format="mixed")
    return (parsed - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def _canonical_columns(frame: pd.DataFrame) -> pd.DataFrame:
    lowered = {column.lower().strip(): column for column in frame.columns}
    renamed = {}
    for canonical, aliases in _COLUMN_ALIASES.items():
        original = next((lowered[alias] for alias in aliases if alias in lowered), None)
        if original is not None:
            renamed[original] = canonical
    missing = {"user", "item"} - set(renamed.values())
    if missing:
        raise ValueError(f"interactions need columns {sorted(missing)} (found {list(frame.columns)})")
    return frame.rename(columns=renamed)[list(renamed.values())]


def read_frame(path: Path, input_format: InputFormat) -> pd.DataFrame:
    """The raw rows of one file (plain or gzipped) in the given format.

    csv: a header naming user and item columns (aliases such as user_id, product_id accepted), optionally
      timestamp, event_type or weight/rating, category, tenant and session (session_id).
    movielens: `user item rating timestamp` separated by tabs or `::` (u.data, u1.base, ratings.dat);
      every rating counts as one interaction.
    sequence: `user item1 item2 ...` per line in time order; a user's lines continue each other, so the
      one-interaction-per-line `user item` format of SASRec's data files reads the same."""
    path = Path(path)
    if input_format == "csv":
        return _canonical_columns(pd.read_csv(path, sep=None, engine="python"))
    if input_format == "movielens":
        with _open_text(path) as stream:
            separator = "::" if "::" in stream.readline() else r"\s+"
        frame = pd.read_csv(
            path,
            sep=separator,
            engine="python" if separator == "::" else "c",
            header=None,
            names=["user", "item", "rating", "timestamp"],
        )
        return frame[["user", "item", "timestamp"]]
    if input_format == "sequence":
        return _read_sequences(path)
    raise ValueError(f"unknown format {input_format!r}")


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix == ".gz" else open(path)


def _read_sequences(path: Path) -> pd.DataFrame:
    users, items = [], []
    with _open_text(path) as lines:
        for line in lines:
            tokens = line.split()
            if len(tokens) >= 2:
                users.extend([tokens[0]] * (len(tokens) - 1))
                items.extend(tokens[1:])
    if not users:
        raise ValueError(f"{path}: no `user item ...` lines")
    return pd.DataFrame({"user": users, "item": items})


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_interactions(path: Path, input_format: InputFormat) -> Interactions:
    """Read and encode one interactions file, noting its content hash as the data version."""
    path = Path(path)
    return encode(
        [read_frame(path, input_format)],
        source={"path": str(path), "sha256": file_digest(path), "format": input_format},
    )[0]
