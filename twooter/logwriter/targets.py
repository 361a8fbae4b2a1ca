"""Targets, as NLog called them: logging handlers that write records as lines.

A file target appends each record as one whole line to its instance's file
of the day; a console target writes the same record to the real stderr.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections import OrderedDict
from datetime import date
from pathlib import Path
from typing import Any

from flask import g, has_request_context

from .. import metrics
from . import files, records, redact, settings

_local = threading.local()


def emitting() -> bool:
    """True while this thread is writing a record (so console capture must not log it again)."""
    return getattr(_local, "depth", 0) > 0


def request_fields(record: logging.LogRecord) -> dict[str, Any]:
    explicit = getattr(record, "request_fields", None)
    if explicit is not None:
        return explicit
    if has_request_context():
        return g.get("log_request") or {}
    return {}


def _secrets_of_this_request() -> list[str]:
    # A request writes several records; its secrets are gathered once.
    if not has_request_context():
        return []
    found = g.get("log_secrets")
    if found is None:
        found = g.log_secrets = redact.request_secrets()
    return found


def build(record: logging.LogRecord, where: settings.LogSettings | None) -> records.Record:
    # Several targets write the same record: build it (and redact it) once.
    built = getattr(record, "_twooter_record", None)
    if built is None:
        secrets = _secrets_of_this_request()
        built = records.from_log_record(
            record,
            where.instance if where else settings.default_instance_name(),
            request_fields(record),
            lambda text: redact.redact(text, secrets),
        )
        record._twooter_record = built
        metrics.count_log_record(built.level)
    return built


class Target(logging.Handler):
    def __init__(self, name: str, layout: str):
        super().__init__()
        self.target_name = name
        self.layout = layout

    def emit(self, record: logging.LogRecord) -> None:
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            where = settings.current()
            built = build(record, where)
            self.write(records.render(built, self.layout), built, where)
        except Exception:
            self.handleError(record)
        finally:
            _local.depth -= 1

    def write(self, line: bytes, record: records.Record, where: settings.LogSettings | None) -> None:
        raise NotImplementedError


class DescriptorPool:
    """Open day files of this process, shared by every file target.

    A reloaded configuration makes new targets while old ones may still be
    writing, so descriptors belong to the process, not to a target, and a
    line is written under the same lock that closes yesterday's files: no
    write can ever land on a descriptor that was closed and reused.
    """

    # An app writes to one file a day; more open at once means apps come and go
    # in one process (tests), and the ones not written to lately can be closed.
    MAX_OPEN = 16

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[Path, int] = OrderedDict()
        self._day: date | None = None

    def write(self, path: Path, day: date, line: bytes, where: settings.LogSettings) -> None:
        with self._lock:
            fd = self._open.get(path)
            if fd is None:
                if self._day is None or day > self._day:
                    self._start_day(day, where)
                while len(self._open) >= self.MAX_OPEN:
                    _close(self._open.popitem(last=False)[1])
                fd = files.open_for_append(path)
                self._open[path] = fd
            else:
                self._open.move_to_end(path)
            files.write_line(fd, line)

    def _start_day(self, day: date, where: settings.LogSettings) -> None:
        self._day = day
        for path in [path for path in self._open if not path.name.startswith(day.isoformat())]:
            _close(self._open.pop(path))
        # Compressing yesterday's files takes a while; logging must not wait for it.
        threading.Thread(
            target=files.tidy,
            args=(where.folder, where.compress_after_days, where.delete_after_days, day),
            name="twooter-log-tidy",
            daemon=True,
        ).start()

    def close_all(self) -> None:
        with self._lock:
            for fd in self._open.values():
                _close(fd)
            self._open.clear()


POOL = DescriptorPool()


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class FileTarget(Target):
    """One file per instance per UTC day; the first record of a new day opens a new file."""

    def __init__(self, name: str, layout: str):
        super().__init__(name, layout)
        self.suffix = "log" if layout == "json" else "txt"

    def write(self, line, record, where) -> None:
        if where is None:
            return
        day = files.day_of(record.time)
        POOL.write(where.folder / files.file_name(day, where.instance, self.suffix), day, line, where)


class ConsoleTarget(Target):
    """The process's real stderr, even while sys.stderr is being captured into the log."""

    def write(self, line, record, where) -> None:
        stream = sys.__stderr__
        if stream is None:
            return
        stream.write(line.decode("utf-8", errors="replace"))
        stream.flush()


TARGET_TYPES = {"file": FileTarget, "console": ConsoleTarget}
