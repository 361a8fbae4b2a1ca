"""Reading one day's log files by byte offset: find an hour, walk it either way.

A day file is in the order it was written, which is time order (give or
take the milliseconds two threads race by). So the first line of an hour is
found by bisecting on byte offsets, and a page of records is read by walking
back from an offset: the cost of a page depends on the page, not on how
many records the hour or the day holds.

Lines that are not records (torn, foreign, not UTF-8) are stepped over. The
last line of a file that another process is still writing may lack its
newline; it is left alone until it is complete.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from ..logwriter.files import UNPACKED_FOLDER, LogFile
from ..logwriter.records import LINE, LineLayout, format_time

CHUNK = 64 * 1024
# Below this a bisection step costs more than reading the span.
BISECT_WINDOW = 16 * 1024


def time_of(line: bytes, layout: LineLayout = LINE) -> bytes | None:
    """The record time of a line as ISO bytes (which sort as times do), or None.

    Our writer puts the time first (at `layout.time_at`); a line that does
    not start as the layout says is parsed in full.
    """
    if line.startswith(layout.time_prefix):
        return layout.time_of(line)
    record = layout.decode(line)
    return format_time(record.time).encode() if record else None


@dataclass
class Source:
    """An open day file, the end of its complete lines, and the layout its lines are in."""

    info: LogFile
    handle: BinaryIO
    end: int
    layout: LineLayout = LINE

    @classmethod
    def open(cls, info: LogFile, layout: LineLayout = LINE) -> "Source | None":
        """The file opened for reading, or None if it cannot be (gone, unreadable, a broken gzip)."""
        try:
            path = unpacked(info.path) if info.compressed else info.path
            handle: BinaryIO = open(path, "rb")
        except (OSError, EOFError, gzip.BadGzipFile):
            return None
        return cls(info, handle, complete_end(handle), layout)

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def unpacked(path: Path) -> Path:
    """A plain copy of a compressed day file, made once, so it can be read by offset too.

    Seeking in a gzip stream means decompressing up to that point on every
    page; a copy in `.unpacked/` keeps paging cheap and memory flat. Copies
    are removed by files.tidy a day after their last use.
    """
    target = path.parent / UNPACKED_FOLDER / path.name.removesuffix(".gz")
    if target.exists():
        os.utime(target)
        return target
    target.parent.mkdir(exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    with gzip.open(path, "rb") as packed, open(partial, "wb") as plain:
        shutil.copyfileobj(packed, plain, 1 << 20)
    os.replace(partial, target)
    return target


def complete_end(handle: BinaryIO) -> int:
    """Offset just past the last newline: a half-written last line is not read yet."""
    size = handle.seek(0, io.SEEK_END)
    position = size
    while position > 0:
        start = max(0, position - CHUNK)
        handle.seek(start)
        block = handle.read(position - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def first_at_or_after(source: Source, stamp: bytes, lo: int = 0, hi: int | None = None) -> int:
    """Offset of the first line in [lo, hi) with a time >= stamp (hi if none).

    lo and hi are line starts; every line before lo is older than stamp.
    """
    handle = source.handle
    hi = source.end if hi is None else hi
    while hi - lo > BISECT_WINDOW:
        middle = (lo + hi) // 2
        handle.seek(middle)
        handle.readline()
        position = handle.tell()
        found = None
        line = b""
        while position < hi:
            line = handle.readline()
            found = time_of(line.rstrip(b"\n"), source.layout)
            if found is not None:
                break
            position += len(line)
        if found is None or position >= hi:
            hi = max(lo, min(position, hi))
        elif found >= stamp:
            hi = position
        else:
            lo = position + len(line)
    handle.seek(lo)
    position = lo
    while position < hi:
        line = handle.readline()
        found = time_of(line.rstrip(b"\n"), source.layout)
        if found is not None and found >= stamp:
            return position
        position += len(line)
    return hi


def backward(source: Source, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line without newline) for complete lines in [start, end), newest first.

    start and end are line starts.
    """
    handle = source.handle
    position = end
    tail = b""  # the cut-off start of a line from the block after this one, with its newline
    while position > start:
        read_from = max(start, position - CHUNK)
        handle.seek(read_from)
        block = handle.read(position - read_from) + tail
        lines = block.split(b"\n")
        lines.pop()  # after the last newline: nothing
        offset = read_from + len(block)
        first_whole = 1 if read_from > start else 0
        for index in range(len(lines) - 1, first_whole - 1, -1):
            line = lines[index]
            offset -= len(line) + 1
            yield offset, line
        tail = lines[0] + b"\n" if first_whole and lines else b""
        position = read_from


def forward(source: Source, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line without newline) for complete lines in [start, end), oldest first."""
    handle = source.handle
    handle.seek(start)
    position = start
    carry = b""
    while position < end:
        block = carry + handle.read(min(CHUNK, end - position))
        if not block:
            break
        position_of_block = position - len(carry)
        position += len(block) - len(carry)
        lines = block.split(b"\n")
        carry = lines.pop()
        offset = position_of_block
        for line in lines:
            yield offset, line
            offset += len(line) + 1
    if carry:
        yield position - len(carry), carry
