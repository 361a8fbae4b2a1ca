"""Progress per source and table: bars on a terminal, plain lines otherwise, nothing when quiet."""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn


class Quiet:
    def source(self, label: str) -> None: ...
    def update(self, table: str, rows_done: int, position: int, total: int | None) -> None: ...
    def phase(self, text: str) -> None: ...
    def close(self) -> None: ...


class Lines(Quiet):
    """For logs and pipes: a line per source, at most one per table every few seconds."""

    INTERVAL = 5.0

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.label = ""
        self.last: dict[str, float] = {}
        self.totals: dict[str, int] = {}
        self.shown: dict[str, int] = {}

    def _say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def source(self, label: str) -> None:
        self.label = label
        self.last, self.totals, self.shown = {}, {}, {}
        self._say(f"reading {label}")

    def update(self, table, rows_done, position, total) -> None:
        if total is not None:
            self.totals[table] = total
        total = self.totals.get(table)
        finished = total is not None and position >= total
        now = time.monotonic()
        due = now - self.last.get(table, 0.0) >= self.INTERVAL
        if rows_done != self.shown.get(table) and (finished or (due and rows_done)):
            self.last[table], self.shown[table] = now, rows_done
            self._say(f"  {table}: {rows_done} rows{'' if finished else ' …'}")

    def phase(self, text: str) -> None:
        self._say(text)


class Bars(Quiet):
    """A bar per source (bytes or rows) and a counter per table."""

    def __init__(self):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[rows]}"), TimeElapsedColumn(), console=Console(stderr=True),
        )
        self.progress.start()
        self.tasks: dict[str, int] = {}
        self.label = ""

    def source(self, label: str) -> None:
        self.label = label
        self.tasks = {}

    def update(self, table, rows_done, position, total) -> None:
        task = self.tasks.get(table)
        if task is None:
            task = self.progress.add_task(f"{self.label} · {table}", total=total, rows="")
            self.tasks[table] = task
        self.progress.update(task, completed=position, rows=f"{rows_done} rows",
                             **({"total": total} if total is not None else {}))

    def phase(self, text: str) -> None:
        self.progress.console.print(text)

    def close(self) -> None:
        self.progress.stop()


def for_output(quiet: bool) -> Quiet:
    if quiet:
        return Quiet()
    return Bars() if sys.stderr.isatty() else Lines()
