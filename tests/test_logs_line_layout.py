"""The byte layout of a record line is stated once (records.LINE): the writer writes by it and the
viewer's offsets, level filter, chart and search read by it, so a changed statement changes both."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from twooter.logviewer import browse, reader
from twooter.logviewer.query import Query
from twooter.logwriter import records
from twooter.logwriter.files import file_name

HOUR = datetime(2031, 3, 4, 9, tzinfo=timezone.utc)

# Another statement of the same record: other key names, other order after time and level.
RENAMED = records.LineLayout(keys=(
    ("time", "when"), ("level", "severity"), ("message", "text"), ("logger", "source"),
    ("instance", "host"), ("exception", "trace"),
    *((name, "req_" + name) for name in records.REQUEST_FIELDS),
))


def sample(second: int, level: str, message: str) -> records.Record:
    return records.Record(HOUR + timedelta(seconds=second), level, "twooter.test", message, "web1", "",
                          {"rid": f"rid{second:08d}", "method": "GET", "path": "/p", "status": 200})


def write(folder: Path, layout: records.LineLayout, entries: list[records.Record]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / file_name(HOUR.date(), "web1"), "ab") as handle:
        for entry in entries:
            handle.write(entry.to_line(layout))


ENTRIES = [sample(60 * minute + 1, level, f"event {minute} {level.lower()}")
           for minute, level in [(0, "INFO"), (0, "ERROR"), (2, "WARN"), (2, "INFO"), (7, "ERROR")]]


def test_the_default_statement_says_where_time_and_level_sit_in_a_written_line():
    line = sample(5, "WARN", "hello").to_line()
    layout = records.LINE
    assert line.startswith(layout.time_prefix)
    assert line[layout.time_at:layout.time_at + records.TIME_LENGTH] == b"2031-03-04T09:00:05.000Z"
    assert line[layout.level_key_at:layout.level_at] == layout.level_prefix
    assert layout.level_of(line) == b"WARN" and layout.time_of(line) == b"2031-03-04T09:00:05.000Z"
    # Key order as stated: time, level, then the rest.
    keys = list(json.loads(line))
    assert keys == [key for field, key in layout.keys if field not in ("exception", "ms", "client")]


@pytest.mark.parametrize("layout", [records.LINE, RENAMED], ids=["default", "renamed"])
def test_the_viewer_reads_whatever_the_statement_says(tmp_path, layout):
    write(tmp_path, layout, ENTRIES)
    raw = (tmp_path / file_name(HOUR.date(), "web1")).read_bytes().splitlines()
    assert all(line.startswith(layout.time_prefix) for line in raw)
    assert [layout.decode(line) for line in raw] == ENTRIES

    query = Query(hour=HOUR)
    page = browse.read_page(tmp_path, query, layout=layout)
    assert [entry.record.message for entry in page.entries] == [e.message for e in reversed(ENTRIES)]
    # The level filter works on the raw bytes at the stated offset.
    hidden = browse.read_page(tmp_path, Query(hour=HOUR, hidden=frozenset({"INFO"})), layout=layout)
    assert [entry.record.level for entry in hidden.entries] == ["ERROR", "WARN", "ERROR"]
    searched = browse.read_page(tmp_path, Query(hour=HOUR, text="Event 2"), layout=layout)
    assert [entry.record.message for entry in searched.entries] == ["event 2 info", "event 2 warn"]
    # The chart's pattern is built from the statement.
    counts = browse.minute_counts(tmp_path, query, layout=layout)
    assert dict(counts[0]) == {"INFO": 1, "ERROR": 1}
    assert dict(counts[2]) == {"WARN": 1, "INFO": 1}
    assert dict(counts[7]) == {"ERROR": 1}
    assert sum(sum(counter.values()) for counter in counts.values()) == len(ENTRIES)
    assert list(browse.raw_lines(tmp_path, query, layout=layout)) == [line + b"\n" for line in raw]


def test_lines_written_by_one_statement_are_not_read_by_another(tmp_path):
    write(tmp_path, RENAMED, ENTRIES)
    query = Query(hour=HOUR)
    assert browse.read_page(tmp_path, query).entries == []
    assert sum(sum(counter.values()) for counter in browse.minute_counts(tmp_path, query).values()) == 0
    line = ENTRIES[0].to_line(RENAMED).rstrip(b"\n")
    assert reader.time_of(line) is None and reader.time_of(line, RENAMED) == b"2031-03-04T09:00:01.000Z"


def test_a_statement_must_put_time_and_level_first():
    with pytest.raises(ValueError):
        records.LineLayout(keys=(("level", "lvl"), ("time", "t"), ("message", "msg")))


def test_bisecting_an_hour_reads_times_where_the_statement_puts_them(tmp_path):
    many = [sample(second, "INFO", "x" * 100) for second in range(0, 3600, 3)]
    write(tmp_path, RENAMED, many)
    info = next(iter(files_of(tmp_path)))
    with reader.Source.open(info, RENAMED) as source:
        assert source.end > 4 * reader.BISECT_WINDOW
        offset = reader.first_at_or_after(source, b"2031-03-04T09:30:00.000Z")
        source.handle.seek(offset)
        first = RENAMED.decode(source.handle.readline())
    assert first is not None and first.time == HOUR + timedelta(minutes=30)


def files_of(folder: Path):
    from twooter.logwriter.files import log_files

    return log_files(folder)
