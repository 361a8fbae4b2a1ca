"""The in-memory era's JSON snapshot (what `twooter export` writes), read as a stream.

ijson yields parse events, so arrays of any length pass through with flat
memory; the three arrays may come in any order.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Iterator

import ijson
import ijson.backends.python as ijson_python

from twooter.snapshot import SNAPSHOT_FORMAT, SNAPSHOT_VERSION

from .. import rows
from ..errors import SourceError
from .base import ProgressCallback, Source

_ARRAYS = {"users.item": "users", "follows.item": "follows", "messages.item": "messages"}
_SCALARS = {"string", "number", "boolean", "null"}
_FRACTION = re.compile(r"[T ]\d\d:\d\d:\d\d[.,](\d+)")


def looks_like_snapshot(head: bytes) -> bool:
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().startswith(b"{")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _surrogate_escapes(path: Path) -> bool:
    """Whether the file spells a UTF-16 surrogate as a JSON escape anywhere (read in 1 MiB pieces)."""
    with path.open("rb") as file:
        tail = b""
        while piece := file.read(1 << 20):
            if _SURROGATE_ESCAPE.search(tail + piece):
                return True
            tail = piece[-5:]
    return False


def _line_at(path: Path, offset: int) -> int:
    with path.open("rb") as file:
        return file.read(offset).count(b"\n") + 1


class SnapshotSource(Source):
    kind = "twooter-snapshot"

    def staged_rows(self, progress: ProgressCallback) -> Iterator[rows.StagedRow]:
        total = self.path.stat().st_size
        with self.path.open("rb") as file:
            try:
                yield from self._rows(file, total, progress)
            except ijson.JSONError as error:
                if "integer overflow" in str(error):
                    raise self._error(file, f"a number {rows.ID_RANGE_REASON}") from None
                raise self._error(file, f"malformed or truncated JSON: {error}") from None
            except UnicodeDecodeError as error:
                raise self._error(file, f"wrong encoding (JSON must be UTF-8): {error.reason}") from None

    def _rows(self, file, total: int, progress: ProgressCallback) -> Iterator[rows.StagedRow]:
        convert = {"users": self._user, "follows": self._follow, "messages": self._message}
        counts = {"users": 0, "follows": 0, "messages": 0}
        marker = version = None
        item: dict | None = None
        item_prefix = ""
        # yajl, ijson's fast parser, turns a lone surrogate escape into '?'; the
        # pure-Python one keeps it, so that the text check below refuses it.
        parser = ijson_python if _surrogate_escapes(self.path) else ijson
        for prefix, event, value in parser.parse(file, use_float=True):
            if item is not None:
                if event == "map_key" or event in _SCALARS:
                    if event in _SCALARS and prefix.startswith(item_prefix + "."):
                        item[prefix[len(item_prefix) + 1:]] = value
                    continue
                if event == "end_map" and prefix == item_prefix:
                    table = _ARRAYS[prefix]
                    yield convert[table](item, counts[table])
                    counts[table] += 1
                    if counts[table] % 50_000 == 0:
                        progress(table, counts[table], file.tell(), total)
                    item = None
                    continue
                raise self._error(file, f"{_ARRAYS[item_prefix]}[{counts[_ARRAYS[item_prefix]]}]: "
                                        "nested values are not part of the format")
            if event == "start_map" and prefix in _ARRAYS:
                item, item_prefix = {}, prefix
            elif prefix == "format" and event == "string":
                marker = value
            elif prefix == "version" and event == "number":
                version = value
        for table, count in counts.items():
            progress(table, count, total, total)
        if marker != SNAPSHOT_FORMAT:
            raise SourceError(self.path, f'unknown schema: not a Twooter snapshot (no "format": "{SNAPSHOT_FORMAT}")')
        if version != SNAPSHOT_VERSION:
            raise SourceError(self.path, f"unsupported snapshot version {version!r} (this reads {SNAPSHOT_VERSION})")

    def _error(self, file, message: str) -> SourceError:
        return SourceError(self.path, message, _line_at(self.path, file.tell()))

    def _field(self, item: dict, name: str, where: str, types: tuple, required: bool = True):
        value = item.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
            raise SourceError(self.path, f"{where}: {name} {value!r} is missing or of the wrong type")
        reason = rows.text_problem(value) if isinstance(value, str) else rows.id_problem(value)
        if reason:
            raise SourceError(self.path, f"{where}: {name} {value!r} {reason}")
        return value

    def _user(self, item: dict, index: int) -> rows.StagedRow:
        where = f"users[{index}]"
        return rows.user(
            self._field(item, "id", where, (int,)),
            self._field(item, "username", where, (str,), required=False),
            self._field(item, "email", where, (str,), required=False),
            self._field(item, "pw_hash", where, (str,), required=False),
            bool(self._field(item, "is_admin", where, (bool,), required=False)),  # a string is refused
        )

    def _follow(self, item: dict, index: int) -> rows.StagedRow:
        where = f"follows[{index}]"
        return rows.follow(
            self._field(item, "follower_id", where, (int,), required=False),
            self._field(item, "followed_id", where, (int,), required=False),
        )

    def _message(self, item: dict, index: int) -> rows.StagedRow:
        where = f"messages[{index}]"
        stamp = self._field(item, "pub_date", where, (str,), required=False)
        micros = None
        if stamp is not None:
            try:
                micros = rows.micros_of(datetime.fromisoformat(stamp))
            except ValueError:
                raise SourceError(self.path, f"{where}: pub_date {stamp!r} is not an ISO 8601 time") from None
            if reason := rows.micros_problem(micros):
                raise SourceError(self.path, f"{where}: pub_date {stamp!r} {reason}")
            # fromisoformat keeps six digits of a longer fraction: the documented rule, counted.
            fraction = _FRACTION.search(stamp)
            if fraction and fraction.group(1)[6:].strip("0"):
                counted = self.adjusted.setdefault("messages", {})
                counted[rows.BELOW_MICROSECOND] = counted.get(rows.BELOW_MICROSECOND, 0) + 1
        flagged = self._field(item, "flagged", where, (bool,), required=False)
        return rows.message(
            self._field(item, "id", where, (int,), required=False),
            self._field(item, "author_id", where, (int,), required=False),
            self._field(item, "text", where, (str,), required=False),
            micros,
            None if flagged is None else bool(flagged),
        )
