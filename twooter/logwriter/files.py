"""The log folder: one file per instance per UTC day, and the tidying of old ones.

`2026-11-28.web1.log` holds the records instance `web1` wrote on that day.
Each instance appends to its own file, so instances sharing a folder never
write into one another's lines.
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

FILE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.([A-Za-z0-9_.-]+?)\.(log|txt)(\.gz)?$")
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
# Plain copies of compressed days that the viewer is reading (see reader.unpacked).
UNPACKED_FOLDER = ".unpacked"
UNPACKED_KEEP_SECONDS = 24 * 3600


def safe_instance_name(name: str) -> str:
    cleaned = UNSAFE_IN_NAME.sub("-", name).strip(".-")
    return cleaned or "twooter"


def file_name(day: date, instance: str, suffix: str = "log") -> str:
    return f"{day.isoformat()}.{safe_instance_name(instance)}.{suffix}"


@dataclass(frozen=True)
class LogFile:
    path: Path
    day: date
    instance: str
    suffix: str
    compressed: bool


def parse_file_name(path: Path) -> LogFile | None:
    match = FILE_NAME.match(path.name)
    if not match:
        return None
    try:
        day = date.fromisoformat(match.group(1))
    except ValueError:
        return None
    return LogFile(path, day, match.group(2), match.group(3), bool(match.group(4)))


def log_files(folder: Path, day: date | None = None, suffix: str = "log") -> list[LogFile]:
    """The record files in the folder (of one day, when given), by instance name."""
    pattern = f"{day.isoformat()}.*" if day else "*"
    found = []
    try:
        candidates = list(folder.glob(pattern))
    except OSError:
        return []
    for path in candidates:
        info = parse_file_name(path)
        if info and info.suffix == suffix and (day is None or info.day == day):
            found.append(info)
    # A day's plain file wins over a compressed copy left by an interrupted tidy.
    chosen: dict[tuple, LogFile] = {}
    for info in sorted(found, key=lambda f: f.compressed, reverse=True):
        chosen[(info.day, info.instance)] = info
    return sorted(chosen.values(), key=lambda f: (f.day, f.instance))


def days_with_records(folder: Path) -> list[date]:
    return sorted({info.day for info in log_files(folder)})


def tidy(folder: Path, compress_after_days: int, delete_after_days: int,
         today: date | None = None) -> None:
    """Compress files older than one limit, delete those older than the other.

    Only past days are touched: no instance writes to them any more. Several
    instances may tidy at once; each step tolerates another having done it.
    A limit of 0 or less turns that step off.
    """
    today = today or datetime.now(timezone.utc).date()
    for suffix in ("log", "txt"):
        for info in log_files(folder, suffix=suffix):
            age = (today - info.day).days
            if age <= 0:
                continue
            try:
                if delete_after_days > 0 and age >= delete_after_days:
                    info.path.unlink(missing_ok=True)
                elif compress_after_days > 0 and age >= compress_after_days and not info.compressed:
                    _compress(info.path)
            except OSError:
                continue
    _forget_unpacked(folder / UNPACKED_FOLDER)


def _forget_unpacked(folder: Path) -> None:
    try:
        copies = list(folder.iterdir())
    except OSError:
        return
    for copy in copies:
        try:
            if time.time() - copy.stat().st_mtime > UNPACKED_KEEP_SECONDS:
                copy.unlink()
        except OSError:
            continue


def _compress(path: Path) -> None:
    target = path.with_name(path.name + ".gz")
    partial = path.with_name(f".{path.name}.gz.{os.getpid()}")
    with open(path, "rb") as source, gzip.open(partial, "wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)
    os.replace(partial, target)
    path.unlink(missing_ok=True)


def open_for_append(path: Path) -> int:
    """A descriptor whose every write lands whole at the end of the file.

    With O_APPEND the kernel moves to the end and writes in one step, so
    lines written by one os.write each, from any number of threads or
    processes, never overlap or interleave.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)


def write_line(fd: int, line: bytes) -> None:
    written = os.write(fd, line)
    while written < len(line):  # only on a full disk or a signal; finish the line
        written += os.write(fd, line[written:])


def day_of(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date()

