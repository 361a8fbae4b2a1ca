"""Reading back what the app wrote to its log folder, strictly: every line must parse."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from twooter.logs import records
from twooter.logs.files import log_files


def read_records(folder: Path) -> list[records.Record]:
    found = []
    for info in log_files(folder):
        for line in info.path.read_bytes().splitlines():
            record = records.parse_line(line)
            assert record is not None, line
            found.append(record)
    return found


def current_hour() -> datetime:
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def in_the_current_hour(scenario: Callable[[datetime], None]) -> None:
    """Run `scenario(hour)` on the current UTC hour, and once more if that hour ended under it.

    Tail mode follows the current hour only, by design, and on a busy machine
    a test started near the end of an hour may outlive it. Only a failure
    during which the hour changed is run again; the second run starts at the
    top of an hour, with an hour ahead of it.
    """
    for attempt in (1, 2):
        hour = current_hour()
        try:
            scenario(hour)
            return
        except AssertionError:
            if attempt == 2 or current_hour() == hour:
                raise
