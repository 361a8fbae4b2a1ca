"""Streaming every source row into one temporary staging table with COPY.

One table for all three kinds lets a source yield users, messages and
follows in whatever order its file has them, through a single COPY stream;
the merge plan splits them by kind afterwards. `seq` numbers rows in the
order they were read, which is the order merge rules call "first".
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import psycopg2

from . import rows
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


class StagedRows(CopyStream):
    """A source's chunks as COPY text for the staging table, counted per kind."""

    def __init__(self, chunks: Iterator[Chunk]):
        self.chunks = chunks
        self.count = {kind: 0 for kind in rows.TABLE_OF_KIND}

    def next_data(self) -> str | bytes:
        for kind, lines in self.chunks:
            self.count[kind] += len(lines)
            newline = b"\n" if isinstance(lines[0], bytes) else "\n"
            return newline.join(lines) + newline
        return ""


def copy_in(cursor, statement: str, stream: CopyStream) -> None:
    cursor.copy_expert(statement, stream, size=1 << 18)
    if stream.failure is not None:
        raise stream.failure


def copy_source(cursor, source_index: int, chunks: Iterator[Chunk]) -> dict[str, int]:
    """COPY one source's rows into the staging table; returns rows read per kind."""
    cursor.execute(f"ALTER TABLE {STAGE} ALTER COLUMN src SET DEFAULT {int(source_index)}")
    stream = StagedRows(chunks)
    copy_in(cursor, f"COPY {STAGE} ({STAGE_COLUMNS}) FROM STDIN", stream)
    return stream.count


@contextmanager
def storing(source: Source) -> Iterator[None]:
    """Name the source when PostgreSQL refuses one of its values (say, text where an id goes)."""
    try:
        yield
    except psycopg2.DataError as error:
        raise SourceError(source.path, f"a value cannot be stored: {first_line(error)}") from None
