"""What every source offers the pipeline."""
from __future__ import annotations

from abc import ABC
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .. import rows, verify

# progress(table, rows_done, position, total): position/total are bytes for
# files read front to back, rows for databases; total may be None.
ProgressCallback = Callable[[str, int, int, int | None], None]

#: A run of COPY lines (see rows.copy_line), all of one kind (rows.USER, …);
#: bytes lines are UTF-8.
Chunk = tuple[str, list[str] | list[bytes]]

CHUNK_ROWS = 5_000


class Source(ABC):
    #: A short name of the schema shape, shown in the report.
    kind: str = "source"

    def __init__(self, path: Path):
        self.path = Path(path)
        #: Tables found in the file but not part of any migration, with their row counts.
        self.ignored: dict[str, int] = {}
        #: Per table, documented changes to values made while reading, counted by name
        #: (reported with the plan's conflicts); complete once the rows are read.
        self.adjusted: dict[str, dict[str, int]] = {}
        #: The value lines (verify.staged_value_line) of every row streamed, spelled
        #: from the values as the reader decoded them, not from the COPY lines.
        self.values = verify.Summed()

    def chunks(self, progress: ProgressCallback) -> Iterator[Chunk]:
        """Every row of the source, streamed; raises SourceError on bad input.

        Sources that read row by row give staged_rows(); a source that can
        produce COPY lines wholesale overrides this instead.
        """
        self.values = verify.Summed()
        return chunked(self.staged_rows(progress), self.values)

    def staged_rows(self, progress: ProgressCallback) -> Iterator[rows.StagedRow]:
        raise NotImplementedError(f"{type(self).__name__} yields chunks directly")

    def describe(self) -> str:
        return f"{self.path} ({self.kind})"

    def describe_row(self, kind: str, index: int) -> str:
        """Where the `index`-th (from 0) row of a kind that this source yielded is, for errors."""
        return f"{rows.TABLE_OF_KIND[kind]} row {index + 1} in reading order"


def chunked(staged: Iterable[rows.StagedRow], values: verify.Summed, size: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Group rows into chunks of one kind, in their order; sum their value lines into `values`."""
    kind, lines, decoded = None, [], []
    for row in staged:
        if row.kind != kind or len(lines) >= size:
            if lines:
                values.add(map(verify.staged_value_line, decoded))
                yield kind, lines
            kind, lines, decoded = row.kind, [], []
        lines.append(rows.copy_line(row))
        decoded.append(row)
    if lines:
        values.add(map(verify.staged_value_line, decoded))
        yield kind, lines
