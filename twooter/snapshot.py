"""The snapshot document: the in-memory era's JSON format, written from row dictionaries.

`twooter export` fills it from the database; migrate_tools reads it back
(documented in migrate_tools/SNAPSHOT_FORMAT.md). This module needs no app,
so tools can use it without loading one.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import IO, Iterable

SNAPSHOT_FORMAT = "twooter-snapshot"
SNAPSHOT_VERSION = 1


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _write_array(out: IO[str], name: str, items: Iterable[dict], last: bool) -> int:
    out.write(f' "{name}": [')
    count = 0
    for item in items:
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(item, ensure_ascii=False))
        count += 1
    out.write("\n ]" if count else "]")
    out.write("\n" if last else ",\n")
    return count


def write_document(out: IO[str], users: Iterable[dict], follows: Iterable[dict],
                   messages: Iterable[dict], exported_at: datetime | None = None) -> dict[str, int]:
    """Write a snapshot from row dictionaries (as the format documents them)."""
    out.write("{\n")
    out.write(f' "format": "{SNAPSHOT_FORMAT}",\n "version": {SNAPSHOT_VERSION},\n')
    out.write(f' "exported_at": "{iso_utc(exported_at or datetime.now(timezone.utc))}",\n')
    counts = {"users": _write_array(out, "users", users, last=False)}
    counts["follows"] = _write_array(out, "follows", follows, last=False)
    counts["messages"] = _write_array(out, "messages", messages, last=True)
    out.write("}\n")
    return counts
