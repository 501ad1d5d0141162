"""Progress bars (rich) for long generation, loading and import work; silent when disabled."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress


@dataclass
class Task:
    bars: RichProgress
    task_id: int

    def advance(self, amount: int = 1) -> None:
        self.bars.advance(self.task_id, amount)


class Progress:
    def __init__(self, bars: RichProgress) -> None:
        self.bars = bars

    def task(self, description: str, total: int) -> Task:
        return Task(self.bars, self.bars.add_task(description, total=total))


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    bars = RichProgress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
    with bars:
        yield Progress(bars)
