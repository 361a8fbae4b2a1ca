"""Pages, new records, raw lines and per-minute counts of one hour, merged over instances.

Each instance's file of the day is read by byte offset (see reader.py) and
the files are merged newest first. A page cursor is, per instance, the
offset where the next page ends; so is the tail cursor, where new records
begin. Neither depends on how far into the hour the operator has scrolled.
"""
from __future__ import annotations

import heapq
import re
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from ..logwriter import files
from ..logwriter.records import LINE, LineLayout, Record, format_time
from . import reader
from .query import Query, hour_of

PAGE_SIZE = 100
# Lines one page may read while looking for matches (a rare search term):
# past this the page ends early and the next one carries on from there.
SCAN_BUDGET = 50_000
# Records two threads wrote in the other order are still found near an hour's edge.
EDGE_SLACK = timedelta(seconds=5)
TAIL_MAX_BYTES = 4 * 1024 * 1024


@dataclass
class Entry:
    record: Record
    offset: int


@dataclass
class Page:
    entries: list[Entry]
    next_cursor: dict[str, int] | None
    tail_cursor: dict[str, int] = field(default_factory=dict)
    scanned: int = 0


def encode_cursor(cursor: dict[str, int] | None) -> str:
    if not cursor:
        return ""
    return ",".join(f"{name}:{offset}" for name, offset in sorted(cursor.items()))


# Bounds on what a cursor may say, checked before any of it meets a file.
MAX_CURSOR_INSTANCES = 1000
MAX_OFFSET = 2**63 - 1
_CURSOR_PART = re.compile(r"^([A-Za-z0-9_.-]{1,100}):([0-9]{1,19})$")


def decode_cursor(text: str) -> dict[str, int]:
    """`name:offset,…` as encode_cursor writes it, as {instance: byte offset}.

    ValueError for anything else: a name that is not an instance name, an
    offset that is not ASCII digits or is past 2**63 - 1, a name given
    twice, more than MAX_CURSOR_INSTANCES instances.
    """
    cursor: dict[str, int] = {}
    parts = text.split(",") if text else []
    if len(parts) > MAX_CURSOR_INSTANCES:
        raise ValueError(f"a log cursor names at most {MAX_CURSOR_INSTANCES} instances")
    for part in parts:
        match = _CURSOR_PART.match(part)
        if not match or files.safe_instance_name(match.group(1)) != match.group(1) or match.group(1) in cursor:
            raise ValueError("not a log cursor")
        offset = int(match.group(2))
        if offset > MAX_OFFSET:
            raise ValueError("not a log cursor")
        cursor[match.group(1)] = offset
    return cursor


def _sources(folder: Path, query: Query, stack: ExitStack, layout: LineLayout) -> list[reader.Source]:
    opened = []
    for info in files.log_files(folder, query.hour.date()):
        if query.instance and info.instance != query.instance:
            continue
        source = reader.Source.open(info, layout)
        if source is not None:
            stack.enter_context(source)
            opened.append(source)
    return opened


def _span(source: reader.Source, query: Query) -> tuple[int, int]:
    low = format_time(query.start - EDGE_SLACK).encode()
    high = format_time(query.end + EDGE_SLACK).encode()
    start = reader.first_at_or_after(source, low)
    return start, reader.first_at_or_after(source, high, start)


def _candidate(line: bytes, query: Query, needle: bytes | None, layout: LineLayout) -> bool:
    """Cheap checks on the raw line before decoding it."""
    level = layout.level_of(line)
    if level is not None and not query.shows_level(level):
        return False
    return needle is None or needle in line.lower()


def _matching(line: bytes, query: Query, needle: bytes | None, low: str, high: str,
              layout: LineLayout) -> Record | None:
    if not _candidate(line, query, needle, layout):
        return None
    record = layout.decode(line)
    if record is None:
        return None
    stamp = format_time(record.time)
    if not (low <= stamp < high) or not query.matches(record):
        return None
    return record


def _scan(source: reader.Source, start: int, end: int, query: Query, needle: bytes | None,
          newest_first: bool = True) -> Iterator[tuple[bytes, str, int, Record | None, bytes]]:
    """Every line of the span, newest first: (time, instance, offset, record if it matches, line)."""
    low, high = format_time(query.start), format_time(query.end)
    last = b"\xff" if newest_first else b""
    lines = reader.backward(source, start, end) if newest_first else reader.forward(source, start, end)
    for offset, line in lines:
        stamp = reader.time_of(line, source.layout)
        if stamp is not None:
            last = stamp
        yield last, source.info.instance, offset, _matching(line, query, needle, low, high, source.layout), line


def read_page(folder: Path, query: Query, cursor: dict[str, int] | None = None,
              size: int = PAGE_SIZE, budget: int = SCAN_BUDGET, layout: LineLayout = LINE) -> Page:
    """The newest `size` matching records before `cursor` (from the end of the hour if None).

    `cursor` maps instance names to byte offsets (line starts) where the page
    ends; the Page's next_cursor is the same for the page after it.
    """
    needle = query.text_prefilter(layout)
    with ExitStack() as stack:
        streams, ends, tail = [], {}, {}
        for source in _sources(folder, query, stack, layout):
            name = source.info.instance
            start, end = _span(source, query)
            tail[name] = source.end
            if cursor is not None:
                if name not in cursor:
                    continue  # appeared after the first page: tail mode shows its records
                end = max(start, min(end, cursor[name]))
            ends[name] = end
            streams.append(_scan(source, start, end, query, needle))
        entries: list[Entry] = []
        consumed: dict[str, int] = {}
        scanned = 0
        merged = heapq.merge(*streams, key=lambda item: item[0], reverse=True)
        for _, name, offset, record, _ in merged:
            scanned += 1
            consumed[name] = offset
            if record is not None:
                entries.append(Entry(record, offset))
            if len(entries) >= size or scanned >= budget:
                break
        # Whatever the loop stopped before is still there to read: another page follows.
        more = next(merged, None) is not None
        next_cursor = {name: consumed.get(name, end) for name, end in ends.items()} if more else None
        return Page(entries, next_cursor, tail, scanned)


def read_new(folder: Path, query: Query, after: dict[str, int],
             layout: LineLayout = LINE) -> tuple[list[Entry], dict[str, int]]:
    """Records written since `after` (per instance, offsets), newest first, and the new cursor."""
    needle = query.text_prefilter(layout)
    low, high = format_time(query.start), format_time(query.end)
    entries: list[Entry] = []
    cursor: dict[str, int] = {}
    with ExitStack() as stack:
        for source in _sources(folder, query, stack, layout):
            name = source.info.instance
            start = min(after.get(name, 0), source.end)
            if source.end - start > TAIL_MAX_BYTES:
                # A burst bigger than a screen: show its newest part, the pages hold the rest.
                source.handle.seek(source.end - TAIL_MAX_BYTES)
                source.handle.readline()
                start = source.handle.tell()
            for offset, line in reader.forward(source, start, source.end):
                record = _matching(line, query, needle, low, high, layout)
                if record is not None:
                    entries.append(Entry(record, offset))
            cursor[name] = source.end
    entries.sort(key=lambda entry: (entry.record.time, entry.offset), reverse=True)
    return entries, cursor


def raw_lines(folder: Path, query: Query, layout: LineLayout = LINE) -> Iterator[bytes]:
    """The file lines of the matching records, oldest first, each with its newline."""
    needle = query.text_prefilter(layout)
    with ExitStack() as stack:
        streams = []
        for source in _sources(folder, query, stack, layout):
            start, end = _span(source, query)
            streams.append(_scan(source, start, end, query, needle, newest_first=False))
        for _, _, _, record, line in heapq.merge(*streams, key=lambda item: item[0]):
            if record is not None:
                yield line + b"\n"


def minute_counts(folder: Path, query: Query, layout: LineLayout = LINE) -> dict[int, Counter]:
    """Records per minute of the hour and level (all levels, every instance unless filtered).

    Reads only the time and level at the start of each line (see LineLayout).
    """
    whole_hour = Query(hour=query.hour, instance=query.instance)
    counts: dict[int, Counter] = {minute: Counter() for minute in range(60)}
    wanted_hour = f"{query.hour.hour:02d}".encode()
    with ExitStack() as stack:
        for source in _sources(folder, whole_hour, stack, layout):
            start, end = _span(source, whole_hour)
            source.handle.seek(start)
            remaining = end - start
            carry = b""
            while remaining > 0:
                block = carry + source.handle.read(min(reader.CHUNK * 16, remaining))
                remaining = end - source.handle.tell()
                cut = block.rfind(b"\n") + 1
                block, carry = block[:cut], block[cut:]
                for hour, minute, level in layout.minute_and_level.findall(block):
                    if hour == wanted_hour:
                        counts[int(minute)][level.decode()] += 1
    return counts


def level_totals(counts: dict[int, Counter]) -> Counter:
    """Records of each level over the whole hour, from minute_counts."""
    total: Counter = Counter()
    for counter in counts.values():
        total.update(counter)
    return total


def newest_hour(folder: Path) -> datetime | None:
    """The hour of the newest record in the folder, if any."""
    for day in reversed(files.days_with_records(folder)):
        newest = None
        with ExitStack() as stack:
            day_query = Query(hour=datetime.combine(day, datetime.min.time(), timezone.utc))
            for source in _sources(folder, day_query, stack, LINE):
                for _, line in reader.backward(source, 0, source.end):
                    record = source.layout.decode(line)
                    if record is not None:
                        newest = max(newest or record.time, record.time)
                        break
        if newest is not None:
            return hour_of(newest)
    return None


def instances(folder: Path, day: date) -> list[str]:
    return [info.instance for info in files.log_files(folder, day)]
