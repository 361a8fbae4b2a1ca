"""Sources: each file is recognised from its own bytes, never from its name."""
from __future__ import annotations

from pathlib import Path

from ..errors import SourceError
from .base import Source
from .snapshot import SnapshotSource, looks_like_snapshot
from .sqlite import SQLITE_MAGIC, open_sqlite

__all__ = ["Source", "open_source"]

SQLITE_SUFFIXES = {".sqlite", ".sqlite3", ".db"}


def open_source(path: Path | str) -> Source:
    """Recognise the file and check its schema; nothing is read beyond that yet."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError as error:
        raise SourceError(path, f"cannot read: {error.strerror or error}") from None
    if head.startswith(SQLITE_MAGIC):
        return open_sqlite(path)
    if path.suffix.lower() in SQLITE_SUFFIXES:
        raise SourceError(path, "not a SQLite database (the file does not start with the SQLite header)")
    if looks_like_snapshot(head):
        return SnapshotSource(path)
    # Imported here: the T-SQL tokenizer takes a while to load and only dumps need it.
    from .tsql import TsqlDumpSource, looks_like_tsql

    if looks_like_tsql(head):
        return TsqlDumpSource(path)
    raise SourceError(
        path,
        "unrecognised source: expected a SQLite database, a T-SQL dump or a Twooter JSON snapshot",
        line=1,
    )
