"""Import generic user-item interaction data (user, item, optional timestamp and weight) so any
public data set can train and evaluate models beside the marketplace's own events.

Formats:
- `csv`: a header naming a user and an item column (aliases below), optionally a timestamp
  (epoch seconds or ISO 8601) and a weight (or rating);
- `movielens`: MovieLens ratings, `user item rating timestamp` separated by whitespace (100K's
  u.data) or by `::` (1M's ratings.dat), no header;
- `sequence`: one line per user, `user item item ...` in the order they happened, separated by
  whitespace or commas (the format of many sequential-recommendation benchmarks).

Each interaction gets its `position` in its user's history (by time, then file order). A data
set is replaced as a whole, atomically; importing the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from transactional.datagen.progress import Progress
from transactional.datagen.validation import (
    Problems, csv_header, csv_records, file_digest, parse_number, parse_timestamp, text_lines,
)
from transactional.db import PLATFORM, acting_as
from transactional.models import ExternalDataset, ExternalInteraction

Format = Literal["csv", "movielens", "sequence"]
ALIASES = {
    "user": ("user", "user_id", "userid", "customer_id", "visitorid"),
    "item": ("item", "item_id", "itemid", "movieid", "product_id"),
    "timestamp": ("timestamp", "occurred_at", "time", "ts", "event_time"),
    "weight": ("weight", "rating", "value", "count"),
}
CHUNK = 50_000
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(slots=True)
class Interaction:
    user: str
    item: str
    occurred_at: datetime | None
    weight: float | None


class InteractionImportResult(BaseModel):
    dataset: str
    status: Literal["imported", "unchanged"]
    rows: int
    users: int
    items: int


def default_dataset_name(path: Path) -> str:
    stem = path.name.lower().removesuffix(".gz")
    stem = re.sub(r"\.(csv|tsv|txt|dat|data)$", "", stem)
    return re.sub(r"[^a-z0-9_.-]+", "-", stem).strip("-.") or "interactions"


def _ref(value: str, path: Path, line: int, column: str, problems: Problems) -> str:
    ref = value.strip()
    if not ref:
        problems.add(path, line, column, "is empty")
    elif len(ref) > 128:
        problems.add(path, line, column, "is longer than 128 characters")
    return ref


def _read_csv(path: Path, problems: Problems) -> list[Interaction]:
    header = csv_header(path, problems)
    lowered = {name.lower(): name for name in header}
    columns = {role: next((lowered[a] for a in aliases if a in lowered), None) for role, aliases in ALIASES.items()}
    for role in ("user", "item"):
        if columns[role] is None:
            problems.add(path, 1, role, f"missing column {role!r} (or one of {', '.join(ALIASES[role][1:])});"
                         f" the header has: {', '.join(header)}")
    if columns["user"] is None or columns["item"] is None:
        return []
    rows, seen = [], {}
    for line, record in csv_records(path, {columns["user"], columns["item"]}, problems):
        user = _ref(record[columns["user"]], path, line, columns["user"], problems)
        item = _ref(record[columns["item"]], path, line, columns["item"], problems)
        moment = parse_timestamp(record[columns["timestamp"]], path, line, columns["timestamp"], problems) \
            if columns["timestamp"] else None
        weight = parse_number(record[columns["weight"]], float, path, line, columns["weight"], problems) \
            if columns["weight"] else None
        if moment is not None:
            first = seen.setdefault((user, item, moment), line)
            if first != line:
                problems.add(path, line, columns["user"], f"duplicates line {first} (same user, item and time)")
        rows.append(Interaction(user, item, moment, weight))
    return rows


def _read_movielens(path: Path, problems: Problems) -> list[Interaction]:
    rows, seen = [], {}
    for line, content in enumerate(text_lines(path, problems), start=1):
        if not content.strip():
            continue
        fields = content.strip().split("::") if "::" in content else content.split()
        if len(fields) != 4:
            problems.add(path, line, None, f"has {len(fields)} fields; expected user, item, rating, timestamp")
            continue
        user = _ref(fields[0], path, line, "user", problems)
        item = _ref(fields[1], path, line, "item", problems)
        rating = parse_number(fields[2], float, path, line, "rating", problems, optional=False)
        moment = parse_timestamp(fields[3], path, line, "timestamp", problems)
        first = seen.setdefault((user, item), line)
        if first != line:
            problems.add(path, line, "item", f"user {user} already rated item {item} on line {first}")
        rows.append(Interaction(user, item, moment, rating))
    return rows


def _read_sequences(path: Path, problems: Problems) -> list[Interaction]:
    rows, seen = [], {}
    for line, content in enumerate(text_lines(path, problems), start=1):
        fields = [field for field in re.split(r"[\s,]+", content.strip()) if field]
        if not fields:
            continue
        if len(fields) < 2:
            problems.add(path, line, "items", "a sequence line needs a user and at least one item")
            continue
        user = _ref(fields[0], path, line, "user", problems)
        first = seen.setdefault(user, line)
        if first != line:
            problems.add(path, line, "user", f"user {user} already has a sequence on line {first}")
        rows.extend(Interaction(user, _ref(item, path, line, "items", problems), None, None) for item in fields[1:])
    return rows


READERS = {"csv": _read_csv, "movielens": _read_movielens, "sequence": _read_sequences}


def read_interactions(path: Path, fmt: Format) -> list[Interaction]:
    """Parse and validate the whole file; ImportRejected lists every problem."""
    problems = Problems()
    if not path.is_file():
        problems.add(path, None, None, "no such file")
        problems.raise_if_any()
    rows = READERS[fmt](path, problems)
    if not rows and not problems.total:
        problems.add(path, None, None, "contains no interactions")
    problems.raise_if_any()
    return rows


def _positions(rows: list[Interaction]) -> list[int]:
    """Each row's rank within its user's history: by time (untimed rows keep file order), then file order."""
    never = datetime.min.replace(tzinfo=UTC)
    order = sorted(range(len(rows)), key=lambda i: (rows[i].user, rows[i].occurred_at or never, i))
    positions = [0] * len(rows)
    previous, rank = None, 0
    for index in order:
        rank = rank + 1 if rows[index].user == previous else 0
        previous = rows[index].user
        positions[index] = rank
    return positions


_INSERT = text(
    "INSERT INTO external_interactions (dataset, user_ref, item_ref, position, occurred_at, weight)"
    " SELECT :dataset, u.* FROM unnest(CAST(:users AS text[]), CAST(:items AS text[]), CAST(:positions AS int[]),"
    " CAST(:times AS timestamptz[]), CAST(:weights AS float8[])) AS u"
)


def import_interactions(
    session: Session, *, path: Path, fmt: Format, dataset: str | None = None, progress: Progress | None = None
) -> InteractionImportResult:
    """Validate the file, then replace the data set `dataset` with it inside the caller's transaction."""
    name = dataset or default_dataset_name(path)
    if not NAME.match(name):
        raise ValueError(f"dataset name {name!r} must match {NAME.pattern}")
    rows = read_interactions(path, fmt)
    fingerprint = hashlib.sha256(f"{fmt}:{file_digest(path)}".encode()).hexdigest()
    result = InteractionImportResult(dataset=name, status="unchanged", rows=len(rows),
                                     users=len({row.user for row in rows}), items=len({row.item for row in rows}))
    with acting_as(session, PLATFORM):
        stored = session.get(ExternalDataset, name)
        if stored is not None and stored.fingerprint == fingerprint:
            return result
        session.execute(delete(ExternalInteraction).where(ExternalInteraction.dataset == name))
        if stored is not None:
            session.delete(stored)
            session.flush()
        session.add(ExternalDataset(name=name, format=fmt, source=str(path)[-500:], rows=len(rows), users=result.users,
                                    items=result.items, fingerprint=fingerprint, imported_at=datetime.now(UTC)))
        session.flush()
        positions = _positions(rows)
        task = progress.task(f"interactions → {name}", total=len(rows)) if progress else None
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start:start + CHUNK]
            session.execute(_INSERT, {
                "dataset": name, "users": [r.user for r in chunk], "items": [r.item for r in chunk],
                "positions": positions[start:start + CHUNK], "times": [r.occurred_at for r in chunk],
                "weights": [r.weight for r in chunk],
            })
            if task:
                task.advance(len(chunk))
    return result.model_copy(update={"status": "imported"})
