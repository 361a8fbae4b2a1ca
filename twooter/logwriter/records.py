"""One log record as one line of a file, and back.

The file layout is one JSON object per line. JSON escapes newlines, quotes
and control characters inside strings, so a message with `|`, quotes,
newlines, a traceback or any Unicode text is still exactly one line, and it
reads back exactly as it was written. Keys come in a fixed order with time
and level first, so a scan that only needs those two (the per-minute chart)
can read them without decoding the whole line.

The byte layout of a line is stated once, in LineLayout (LINE), beside the
code that writes it; the viewer takes its offsets and patterns from there.

Text targets (the console, or a file an operator wants in NLog's `a|b|c`
style) use a layout of `${name}` fields instead; see `render`.
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
# format_time's length: 2026-11-28T14:03:05.123Z
TIME_LENGTH = 24


@dataclass(frozen=True)
class LineLayout:
    """The byte layout of a record line, stated once; the writer and the viewer both derive from it.

    A line is one JSON object in UTF-8 with compact separators (`,` and `:`,
    no spaces), ended by one `\\n`. Its keys come in the order of `keys`: the
    time first, as TIME_LENGTH characters of format_time, the level second,
    then the other fields; absent optional fields are left out. With the
    default statement a line begins

        {"t":"2026-11-28T14:03:05.123Z","lvl":"INFO","logger":…

    so the time sits at byte `time_at` and the level at byte `level_at`
    of every line, and a scan that needs only those two (the per-minute
    chart, the level filter, bisecting an hour) never decodes the JSON.
    """

    # Record field -> JSON key, in the order written. Time and level must come first.
    keys: tuple[tuple[str, str], ...] = (
        ("time", "t"), ("level", "lvl"), ("logger", "logger"), ("message", "msg"),
        ("instance", "inst"), ("exception", "exc"),
        *((name, name) for name in REQUEST_FIELDS),
    )

    def __post_init__(self) -> None:
        if [field for field, _ in self.keys[:2]] != ["time", "level"]:
            raise ValueError("a record line starts with its time and then its level")

    @functools.cached_property
    def key_of(self) -> dict[str, str]:
        """Record field -> JSON key ("message" -> "msg")."""
        return dict(self.keys)

    def key(self, field_name: str) -> str:
        """The JSON key of a record field; KeyError if lines have none."""
        return self.key_of[field_name]

    # --- what the viewer derives: offsets, prefixes, patterns ---
    @functools.cached_property
    def time_prefix(self) -> bytes:
        """The bytes every line starts with, up to the first character of the time."""
        return b'{' + json.dumps(self.key("time")).encode() + b':"'

    @functools.cached_property
    def time_at(self) -> int:
        return len(self.time_prefix)

    @functools.cached_property
    def level_prefix(self) -> bytes:
        """The bytes between the time's closing quote and the level's first character."""
        return b',' + json.dumps(self.key("level")).encode() + b':"'

    @functools.cached_property
    def level_key_at(self) -> int:
        return self.time_at + TIME_LENGTH + 1

    @functools.cached_property
    def level_at(self) -> int:
        return self.level_key_at + len(self.level_prefix)

    def time_of(self, line: bytes) -> bytes | None:
        """The time of a line written in this layout, as ISO bytes, or None if it does not start so."""
        if not line.startswith(self.time_prefix):
            return None
        stamp = line[self.time_at:self.time_at + TIME_LENGTH]
        if len(stamp) == TIME_LENGTH and stamp[-1:] == b"Z" and line[self.level_key_at - 1:self.level_key_at] == b'"':
            return stamp
        return None

    def level_of(self, line: bytes) -> bytes | None:
        """The level of a line written in this layout (b"INFO"), or None."""
        if line[self.level_key_at:self.level_at] != self.level_prefix:
            return None
        close = line.find(b'"', self.level_at)
        return line[self.level_at:close] if close > 0 else None

    @functools.cached_property
    def minute_and_level(self) -> re.Pattern[bytes]:
        """Finds (hour, minute, level) at the start of every line of a block of lines."""
        return re.compile(
            b"^" + re.escape(self.time_prefix) + rb"\d{4}-\d\d-\d\dT(\d\d):(\d\d):\d\d\.\d{3}Z\""
            + re.escape(self.level_prefix) + rb'([A-Z]+)"',
            re.M,
        )

    @staticmethod
    def text_in_line(text: str) -> bytes:
        """How an ASCII text appears inside a line's JSON string (escaped as the writer escapes it)."""
        return json.dumps(text)[1:-1].encode()

    # --- writing and reading one line ---
    def encode(self, record: "Record") -> bytes:
        values = record.line_values()
        data = {key: values[field_name] for field_name, key in self.keys if values.get(field_name) is not None}
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        # Lone surrogates (undecodable bytes smuggled into a str) cannot be UTF-8;
        # write them as U+FFFD rather than fail to log.
        return (text + "\n").encode("utf-8", errors="replace")

    def decode(self, raw: bytes) -> "Record | None":
        """The record on one file line, or None for anything that is not one.

        Files may hold foreign or damaged lines (a torn write from a crashed
        process, an editor's save, bytes that are not UTF-8); reading must never
        fail on them.
        """
        try:
            data = json.loads(raw.decode("utf-8", errors="replace"))
            if not isinstance(data, dict):
                return None
            key = self.key_of
            time = parse_time(data[key["time"]])
            level = data[key["level"]]
            if not isinstance(level, str):
                return None
            request = {name: data[key[name]] for name in REQUEST_FIELDS if key[name] in data}
            return Record(
                time=time,
                level=level,
                logger=str(data.get(key["logger"], "")),
                message=str(data.get(key["message"], "")),
                instance=str(data.get(key["instance"], "")),
                exception=str(data.get(key["exception"], "") or ""),
                request=request,
            )
        except (ValueError, KeyError, TypeError, RecursionError):
            return None


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

    def line_values(self) -> dict[str, Any]:
        """Every field a line may hold, by field name; None or "" for an optional one left out."""
        values: dict[str, Any] = {
            "time": format_time(self.time),
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "instance": self.instance,
            "exception": self.exception or None,
        }
        for name in REQUEST_FIELDS:
            values[name] = self.request.get(name)
        return values

    def to_line(self, layout: "LineLayout | None" = None) -> bytes:
        """The record as one file line (bytes ending in a newline), in LINE's layout unless told."""
        return (layout or LINE).encode(self)


# The line format of every day file: the one statement the viewer reads by.
LINE = LineLayout()


def format_time(moment: datetime) -> str:
    """UTC with milliseconds: 2026-11-28T14:03:05.123Z."""
    # isoformat is several times cheaper than strftime, and this runs for every record.
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def parse_time(text: str) -> datetime:
    """A record time written by format_time back as an aware UTC datetime; ValueError otherwise."""
    if not isinstance(text, str) or len(text) != TIME_LENGTH or not text.endswith("Z"):
        raise ValueError(f"not a record time: {text!r}")
    return datetime.strptime(text[:-1], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)


def parse_line(raw: bytes, layout: LineLayout | None = None) -> Record | None:
    """The record on one file line (LINE's layout unless told), or None for anything that is not one."""
    return (layout or LINE).decode(raw)


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
#
# A text line is read by people and by tools that split on newlines, so no
# field may carry a line break or any other control character into it: a
# path like "/%0A2026-01-01T00:00:00.000Z|ERROR|…" would otherwise print a
# second, forged record. Every field is escaped (backslash too, so the escape
# reads back unambiguously); a traceback goes on continuation lines that
# start with CONTINUATION, which no record line can start with (check_layout).

CONTINUATION = "  | "
_NEEDS_ESCAPE = re.compile("[\x00-\x1f\x7f-\x9f\\\\\u2028\u2029\u0085]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape_character(match: re.Match[str]) -> str:
    character = match.group()
    known = _ESCAPES.get(character)
    if known:
        return known
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_text(text: str) -> str:
    r"""Text for one line of a text layout: control characters and `\` written as escapes (`\n`, `\x1b`)."""
    return _NEEDS_ESCAPE.sub(_escape_character, text)


def continuation_lines(text: str) -> str:
    """A multi-line text (a traceback) as escaped lines after the record's, each starting CONTINUATION."""
    if not text:
        return ""
    return "".join("\n" + CONTINUATION + escape_text(line) for line in text.split("\n"))


LAYOUT_FIELD = re.compile(r"\$\{([a-z_]+)\}")
LAYOUT_FIELDS: dict[str, Callable[[Record], str]] = {
    "time": lambda r: format_time(r.time),
    "level": lambda r: escape_text(r.level),
    "logger": lambda r: escape_text(r.logger),
    "message": lambda r: escape_text(r.message),
    "exception": lambda r: continuation_lines(r.exception),
    "instance": lambda r: escape_text(r.instance),
    "request_id": lambda r: escape_text(str(r.request.get("rid", ""))),
    "method": lambda r: escape_text(str(r.request.get("method", ""))),
    "path": lambda r: escape_text(str(r.request.get("path", ""))),
    "status": lambda r: escape_text(str(r.request.get("status", ""))),
    "duration": lambda r: escape_text(str(r.request.get("ms", ""))),
    "client": lambda r: escape_text(str(r.request.get("client", ""))),
}
# Fields whose text may begin with a space: a layout starting with one could
# print a record line that looks like a traceback's continuation, or the reverse.
_NOT_FIRST = ("message", "exception")


def check_layout(layout: str) -> None:
    """ValueError naming the first unknown `${field}` of a text layout, or why it cannot start as it does."""
    if layout == "json":
        return
    for name in LAYOUT_FIELD.findall(layout):
        if name not in LAYOUT_FIELDS:
            raise ValueError(f"unknown layout field ${{{name}}}; known: {', '.join(sorted(LAYOUT_FIELDS))}")
    first = LAYOUT_FIELD.match(layout)
    if not layout or layout[0].isspace() or (first and first.group(1) in _NOT_FIRST):
        raise ValueError("a text layout must start with text that is not a space, or with a field other than "
                         "${message} or ${exception}, so that a traceback's continuation lines cannot pass for records")


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
    """The line for a target, as UTF-8 bytes ending in a newline: JSON for `"json"`, else the text layout."""
    if layout == "json":
        return record.to_line()
    pieces = []
    for literal, getter in _compiled_layout(layout):
        pieces.append(literal)
        if getter is not None:
            pieces.append(getter(record))
    return ("".join(pieces) + "\n").encode("utf-8", errors="replace")
