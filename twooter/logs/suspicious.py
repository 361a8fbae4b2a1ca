"""Suspicious activity worth a WARN: the same name failing to log in again and again.

The failures are counted in the log files themselves, which every instance
behind the load balancer writes to, not in one process's memory.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from flask import current_app

from ..names import name_key
from . import files, reader, settings
from .records import format_time, parse_line

log = logging.getLogger("twooter.security")
FAILED_LOGINS_TO_WARN = 5
WINDOW = timedelta(minutes=15)
# Enough for any honest window; an attack cannot make a login scan the whole day.
MAX_LINES_PER_FILE = 20_000

_FAILED = "login failed for "


def failed_login_reason(username: str) -> str:
    return f"{_FAILED}{json.dumps(username, ensure_ascii=False)}"


def _failed_name_key(message: str) -> str | None:
    """The name key of the name a failed-login record ends by quoting, or None."""
    # The first marker followed by exactly one JSON string to the end: the
    # path before it and the name itself may hold the marker's words too.
    start = message.find(_FAILED)
    while start != -1:
        try:
            name = json.loads(message[start + len(_FAILED):])
        except ValueError:
            name = None
        if isinstance(name, str):
            return name_key(name)
        start = message.find(_FAILED, start + 1)
    return None


def count_failed_logins(username: str, now: datetime | None = None) -> int:
    """Failed logins for `username` in the last WINDOW, across every instance's file.

    Every form of the name counts ("Alice", "alice"): they are one name.
    """
    now = now or datetime.now(timezone.utc)
    since = format_time(now - WINDOW).encode()
    key = name_key(username)
    where = settings.of(current_app)
    count = 0
    for day in sorted({(now - WINDOW).date(), now.date()}):
        for info in files.log_files(where.folder, day):
            source = reader.Source.open(info)
            if source is None:
                continue
            with source:
                for seen, (_, line) in enumerate(reader.backward(source, 0, source.end)):
                    stamp = reader.time_of(line)
                    if seen >= MAX_LINES_PER_FILE or (stamp is not None and stamp < since):
                        break
                    if b"login failed for" not in line:
                        continue
                    record = parse_line(line)
                    if record and record.logger == "twooter.requests" and _failed_name_key(record.message) == key:
                        count += 1
    return count


def check_failed_logins(username: str) -> None:
    count = count_failed_logins(username)
    if count >= FAILED_LOGINS_TO_WARN:
        log.warning("repeated failed logins for %s: %d in the last %d minutes",
                    json.dumps(username, ensure_ascii=False), count, WINDOW.seconds // 60)
