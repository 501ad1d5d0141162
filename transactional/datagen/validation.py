"""Shared by the importers: read CSV-like files (plain or gzip) strictly, and collect every problem
with its file, line and column, so a bad file is reported whole and nothing is written."""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MAX_PROBLEMS = 200


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        return f"{where}{f' [{self.column}]' if self.column else ''}: {self.message}"


class ImportRejected(Exception):
    """The input has problems; nothing was written."""

    def __init__(self, problems: list[Problem], total: int) -> None:
        self.problems, self.total = problems, total
        more = f"\n... and {total - len(problems)} more" if total > len(problems) else ""
        super().__init__(f"{total} problem(s); nothing was imported:\n" + "\n".join(map(str, problems)) + more)


@dataclass
class Problems:
    items: list[Problem] = field(default_factory=list)
    total: int = 0

    def add(self, file: Path | str, line: int | None, column: str | None, message: str) -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(Problem(Path(file).name, line, column, message))

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportRejected(self.items, self.total)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _raw_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        yield from handle


def text_lines(path: Path, problems: Problems, encoding: str = "utf-8") -> Iterator[str]:
    """The file's lines decoded strictly; a line that does not decode is reported (and skipped).
    A leading UTF-8 byte order mark is dropped (Olist's translation file has one)."""
    for number, raw in enumerate(_raw_lines(path), start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode(encoding)
        except UnicodeDecodeError as exc:
            problems.add(path, number, None, f"not valid {encoding} at byte {exc.start}: {raw[exc.start:exc.start + 4]!r}")
            yield ""


def csv_header(path: Path, problems: Problems) -> list[str]:
    first = next(csv.reader(text_lines(path, problems)), None)
    return [name.strip() for name in first] if first else []


def csv_records(path: Path, required: set[str], problems: Problems) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row of a CSV file with a header naming at least `required`.
    Rows with the wrong number of fields are reported."""
    reader = csv.reader(text_lines(path, problems))
    header = next(reader, None)
    if header is None:
        problems.add(path, 1, None, "the file is empty (a header row is required)")
        return
    header = [name.strip() for name in header]
    missing = sorted(required - set(header))
    for name in missing:
        problems.add(path, 1, name, f"missing column {name!r} (the header has: {', '.join(header)})")
    if missing:
        return
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            problems.add(path, reader.line_num, None, f"has {len(row)} fields, the header has {len(header)}")
            continue
        yield reader.line_num, dict(zip(header, row, strict=True))


def parse_number(value: str, kind: type[int] | type[float], path: Path, line: int, column: str,
                 problems: Problems, *, optional: bool = True) -> int | float | None:
    text = value.strip()
    if not text:
        if not optional:
            problems.add(path, line, column, "is empty")
        return None
    try:
        number = kind(float(text)) if kind is int and "." in text else kind(text)
    except ValueError:
        problems.add(path, line, column, f"{text!r} is not a number")
        return None
    if kind is float and number != number:  # NaN
        problems.add(path, line, column, "is NaN")
        return None
    return number


def parse_timestamp(value: str, path: Path, line: int, column: str, problems: Problems) -> datetime | None:
    """Epoch seconds or ISO 8601 (naive times are UTC)."""
    text = value.strip()
    if not text:
        return None
    try:
        if text.lstrip("-").replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        problems.add(path, line, column, f"{text!r} is not a timestamp (epoch seconds or ISO 8601)")
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
