"""Streaming every source row into one temporary staging table with COPY.

One table for all three kinds lets a source yield users, messages and
follows in whatever order its file has them, through a single COPY stream;
the merge plan splits them by kind afterwards. `seq` numbers rows in the
order they were read, which is the order merge rules call "first".
"""
from __future__ import annotations

import re
from typing import Iterator

import psycopg2

from . import rows, verify
from .errors import SourceError, first_line
from .sources.base import Chunk, Source

STAGE = "migrate_stage"
STAGE_COLUMNS = "kind, sid, r1, r2, t1, t2, t3, ts, flag"

CREATE_STAGE = f"""
CREATE TEMP TABLE {STAGE} (
    src smallint NOT NULL DEFAULT 0,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    kind "char" NOT NULL,
    sid bigint, r1 bigint, r2 bigint,
    t1 text, t2 text, t3 text,
    ts bigint,
    flag boolean
) ON COMMIT DROP
"""


class CopyStream:
    """A file-like view of data for copy_expert, keeping whatever stopped it.

    psycopg2 turns any exception raised in read() into a bare "COPY failed";
    the stream keeps the exception instead, ends the data, and copy_in()
    raises it as is (a KeyboardInterrupt stays one).
    """

    failure: BaseException | None = None

    def read(self, size: int = 65536) -> str | bytes:
        try:
            return self.next_data()
        except BaseException as error:  # noqa: B036 - re-raised by copy_in
            self.failure = error
            return ""

    readline = read

    def next_data(self) -> str | bytes:
        """The next piece of COPY data; empty at the end."""
        raise NotImplementedError

    def describe_line(self, number: int) -> str | None:
        """Which source row the data's line `number` (from 1) came from, if the stream can tell."""
        return None


class StagedRows(CopyStream):
    """A source's chunks as COPY text for the staging table, counted per kind."""

    def __init__(self, chunks: Iterator[Chunk], source: Source):
        self.chunks, self.source = chunks, source
        self.count = {kind: 0 for kind in rows.TABLE_OF_KIND}
        self.runs: list[list] = []  # [kind, rows] per run of one kind, in the order sent

    def next_data(self) -> str | bytes:
        for kind, lines in self.chunks:
            self.count[kind] += len(lines)
            if self.runs and self.runs[-1][0] == kind:
                self.runs[-1][1] += len(lines)
            else:
                self.runs.append([kind, len(lines)])
            newline = b"\n" if isinstance(lines[0], bytes) else "\n"
            return newline.join(lines) + newline
        return ""

    def describe_line(self, number: int) -> str | None:
        earlier = {kind: 0 for kind in rows.TABLE_OF_KIND}
        for kind, count in self.runs:
            if number <= count:
                return self.source.describe_row(kind, earlier[kind] + number - 1)
            number -= count
            earlier[kind] += count
        return None


# COPY's error context names the line of its input that failed.
COPY_LINE = re.compile(r"COPY \S+, line (\d+)")


def copy_in(cursor, statement: str, stream: CopyStream, source: Source) -> None:
    """COPY the stream in; a value PostgreSQL refuses becomes a SourceError naming the row."""
    try:
        cursor.copy_expert(statement, stream, size=1 << 18)
    except psycopg2.DataError as error:  # say, text where an id goes, or bytes that are not UTF-8
        line = COPY_LINE.match(error.diag.context or "")
        where = stream.describe_line(int(line.group(1))) if line else None
        raise SourceError(source.path, f"{where + ': ' if where else ''}a value cannot be stored: "
                                       f"{first_line(error)}") from None
    if stream.failure is not None:
        raise stream.failure


def copy_source(cursor, source_index: int, source: Source, chunks: Iterator[Chunk]) -> dict[str, int]:
    """COPY one source's rows into the staging table; returns rows read per kind."""
    cursor.execute(f"ALTER TABLE {STAGE} ALTER COLUMN src SET DEFAULT {int(source_index)}")
    stream = StagedRows(chunks, source)
    copy_in(cursor, f"COPY {STAGE} ({STAGE_COLUMNS}) FROM STDIN", stream, source)
    return stream.count


def check_values(cursor, source_index: int, source: Source) -> verify.Check:
    """The source's values as its reader decoded them (source.values, summed while
    streaming) against the staged rows, read back as value lines."""
    staged = verify.read_back(cursor, verify.STAGED_VALUES.format(stage=STAGE, src=int(source_index)))
    return source.values.against(staged)
