"""Streaming every source row into one temporary staging table with COPY.

One table for all three kinds lets a source yield users, messages and
follows in whatever order its file has them, through a single COPY stream;
the merge plan splits them by kind afterwards. `seq` numbers rows in the
order they were read, which is the order merge rules call "first".
"""
from __future__ import annotations

from typing import Iterator

from . import rows
from .sources.base import Chunk

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
    """A file-like view of a source's chunks, in COPY text format, for copy_expert."""

    def __init__(self, chunks: Iterator[Chunk]):
        self.chunks = chunks
        self.count = {kind: 0 for kind in rows.TABLE_OF_KIND}
        self.failure: BaseException | None = None

    def read(self, size: int = 65536) -> str | bytes:
        # psycopg2 turns any exception raised here into a bare "COPY failed";
        # keep it instead, end the stream, and let copy_source raise it as is.
        try:
            for kind, lines in self.chunks:
                self.count[kind] += len(lines)
                newline = b"\n" if isinstance(lines[0], bytes) else "\n"
                return newline.join(lines) + newline
            return ""
        except BaseException as error:  # noqa: B036 - re-raised by copy_source
            self.failure = error
            return ""

    readline = read


def copy_source(cursor, source_index: int, chunks: Iterator[Chunk]) -> dict[str, int]:
    """COPY one source's rows into the staging table; returns rows read per kind."""
    cursor.execute(f"ALTER TABLE {STAGE} ALTER COLUMN src SET DEFAULT {int(source_index)}")
    stream = CopyStream(chunks)
    cursor.copy_expert(f"COPY {STAGE} ({STAGE_COLUMNS}) FROM STDIN", stream, size=1 << 18)
    if stream.failure is not None:
        raise stream.failure
    return stream.count
