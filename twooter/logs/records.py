"""One log record as one line of a file, and back.

The file layout is one JSON object per line. JSON escapes newlines, quotes
and control characters inside strings, so a message with `|`, quotes,
newlines, a traceback or any Unicode text is still exactly one line, and it
reads back exactly as it was written. Keys come in a fixed order with time
and level first, so a scan that only needs those two (the per-minute chart)
can read them without decoding the whole line.

Text targets (the console, or a file an operator wants in NLog's `a|b|c`
style) use a layout of `${name}` fields instead; see `render_layout`.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from .levels import level_name

# Request fields in the order they are written.
REQUEST_FIELDS = ("rid", "method", "path", "status", "ms", "client")


@dataclass(frozen=True)
class Record:
    time: datetime
    level: str
    logger: str
    message: str
    instance: str = ""
    exception: str = ""
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def request_id(self) -> str:
        return str(self.request.get("rid") or "")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "t": format_time(self.time),
            "lvl": self.level,
            "logger": self.logger,
            "msg": self.message,
            "inst": self.instance,
        }
        if self.exception:
            data["exc"] = self.exception
        for key in REQUEST_FIELDS:
            if key in self.request and self.request[key] is not None:
                data[key] = self.request[key]
        return data

    def to_line(self) -> bytes:
        return _encode(self.to_dict())


def _encode(data: dict[str, Any]) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    # Lone surrogates (undecodable bytes smuggled into a str) cannot be UTF-8;
    # write them as U+FFFD rather than fail to log.
    return (text + "\n").encode("utf-8", errors="replace")


def format_time(moment: datetime) -> str:
    """UTC with milliseconds: 2026-11-28T14:03:05.123Z."""
    # isoformat is several times cheaper than strftime, and this runs for every record.
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_time(text: str) -> datetime:
    if not isinstance(text, str) or len(text) != 24 or not text.endswith("Z"):
        raise ValueError(f"not a record time: {text!r}")
    return datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


def parse_line(raw: bytes) -> Record | None:
    """The record on one file line, or None for anything that is not one.

    Files may hold foreign or damaged lines (a torn write from a crashed
    process, an editor's save, bytes that are not UTF-8); reading must never
    fail on them.
    """
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
        if not isinstance(data, dict):
            return None
        time = parse_time(data["t"])
        level = data["lvl"]
        if not isinstance(level, str):
            return None
        request = {key: data[key] for key in REQUEST_FIELDS if key in data}
        return Record(
            time=time,
            level=level,
            logger=str(data.get("logger", "")),
            message=str(data.get("msg", "")),
            instance=str(data.get("inst", "")),
            exception=str(data.get("exc", "") or ""),
            request=request,
        )
    except (ValueError, KeyError, TypeError, RecursionError):
        return None


# --- from logging.LogRecord ------------------------------------------------

def exception_text(record: logging.LogRecord) -> str:
    if record.exc_info and record.exc_info[0] is not None:
        return "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
    if record.exc_text:
        return record.exc_text
    return ""


def from_log_record(record: logging.LogRecord, instance: str, request: dict[str, Any],
                    redact) -> Record:
    """Build the file record; `redact` removes secrets from free text."""
    message = record.getMessage()
    if record.stack_info:
        message = f"{message}\n{record.stack_info}"
    return Record(
        time=datetime.fromtimestamp(record.created, timezone.utc),
        level=level_name(record.levelno),
        logger=record.name,
        message=redact(message),
        instance=instance,
        exception=redact(exception_text(record)),
        request=request,
    )


# --- text layouts ------------------------------------------------------------

LAYOUT_FIELD = re.compile(r"\$\{([a-z_]+)\}")
LAYOUT_FIELDS = {
    "time": lambda r: format_time(r.time),
    "level": lambda r: r.level,
    "logger": lambda r: r.logger,
    "message": lambda r: r.message,
    "exception": lambda r: ("\n" + r.exception) if r.exception else "",
    "instance": lambda r: r.instance,
    "request_id": lambda r: str(r.request.get("rid", "")),
    "method": lambda r: str(r.request.get("method", "")),
    "path": lambda r: str(r.request.get("path", "")),
    "status": lambda r: str(r.request.get("status", "")),
    "duration": lambda r: str(r.request.get("ms", "")),
    "client": lambda r: str(r.request.get("client", "")),
}


def check_layout(layout: str) -> None:
    """ValueError naming the first unknown `${field}` of a text layout."""
    if layout == "json":
        return
    for name in LAYOUT_FIELD.findall(layout):
        if name not in LAYOUT_FIELDS:
            raise ValueError(f"unknown layout field ${{{name}}}; known: {', '.join(sorted(LAYOUT_FIELDS))}")


@functools.lru_cache(maxsize=64)
def _compiled_layout(layout: str) -> tuple[tuple[str, Callable[[Record], str] | None], ...]:
    """A text layout as (literal text, field getter or None) pairs, parsed once."""
    parts, position = [], 0
    for match in LAYOUT_FIELD.finditer(layout):
        parts.append((layout[position:match.start()], LAYOUT_FIELDS[match.group(1)]))
        position = match.end()
    parts.append((layout[position:], None))
    return tuple(parts)


def render(record: Record, layout: str) -> bytes:
    """The line for a target: JSON for `"json"`, else the text layout."""
    if layout == "json":
        return record.to_line()
    pieces = []
    for literal, getter in _compiled_layout(layout):
        pieces.append(literal)
        if getter is not None:
            pieces.append(getter(record))
    return ("".join(pieces) + "\n").encode("utf-8", errors="replace")
