"""Reading back what the app wrote to its log folder, strictly: every line must parse."""
from __future__ import annotations

from pathlib import Path

from twooter.logwriter import records
from twooter.logwriter.files import log_files


def read_records(folder: Path) -> list[records.Record]:
    found = []
    for info in log_files(folder):
        for line in info.path.read_bytes().splitlines():
            record = records.parse_line(line)
            assert record is not None, line
            found.append(record)
    return found
