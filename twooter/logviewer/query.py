"""What the operator asked the viewer for: an hour, and the filters on it.

The state lives in the URL, so a filtered view can be bookmarked:
`/logs/14@28-11-2026?info=false&q=timeout&instance=web1&rid=…&minute=7`.
Every level can be hidden with `<level>=false`, as the C#-era viewer's
`?info=false` did.

Every value is range-checked here, before it reaches `datetime`, a file
offset or a file name: a bad hour in the path is BadHour (404), a bad
query value is BadQuery (400), each with the reason. Nothing is quietly
cut, clamped or ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Mapping

from ..logwriter.files import safe_instance_name
from ..logwriter.levels import RECORD_LEVELS
from ..logwriter.records import LINE, LineLayout, Record
from ..logwriter.requests import ACCEPTABLE_ID

HOUR_FORMAT = "<hh>@<dd>-<mm>-<yyyy>"
# ASCII digits only: \d would take other scripts' digits too.
HOUR_PATTERN = re.compile(r"^([0-9]{1,2})@([0-9]{1,2})-([0-9]{1,2})-([0-9]{4})$")
# The hour before and after, and a few seconds either side, must still be a datetime.
YEARS = (1970, 9998)
FALSE_WORDS = {"false", "0", "no", "off"}
TRUE_WORDS = {"true", "1", "yes", "on"}
MAX_TEXT = 200
MAX_INSTANCE_NAME = 100
MINUTE = re.compile(r"^[0-9]{1,2}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class BadHour(ValueError):
    """The path names no hour the viewer can show (404)."""


class BadQuery(ValueError):
    """A query value the viewer cannot use (400); the message says which and why."""


def parse_hour(text: str) -> datetime:
    """`14@28-11-2026` as the aware UTC datetime of that hour's start; BadHour otherwise."""
    match = HOUR_PATTERN.match(text)
    shown = text if len(text) <= 40 else text[:40] + "…"
    if not match:
        raise BadHour(f"{shown!r} is not an hour; the expected format is {HOUR_FORMAT}, e.g. 14@28-11-2026 (UTC)")
    hour, day, month, year = (int(part) for part in match.groups())
    if not YEARS[0] <= year <= YEARS[1]:
        raise BadHour(f"{shown!r}: the viewer shows the years {YEARS[0]} to {YEARS[1]}")
    try:
        return datetime(year, month, day, hour, tzinfo=timezone.utc)
    except ValueError:
        raise BadHour(
            f"{shown!r} is not a real hour; the expected format is {HOUR_FORMAT}, e.g. 14@28-11-2026 (UTC)"
        ) from None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "…")


def _level_hidden(name: str, value: str) -> bool:
    word = value.strip().lower()
    if word in FALSE_WORDS:
        return True
    if word in TRUE_WORDS or word == "":
        return False
    raise BadQuery(f"'{name}' shows or hides a level: true or false, not {_shown(value)}.")


def _minute(value: str) -> int | None:
    if value == "":
        return None
    if not MINUTE.match(value) or int(value) > 59:
        raise BadQuery(f"'minute' is a minute of the hour, 0 to 59, not {_shown(value)}.")
    return int(value)


def _search_text(value: str) -> str:
    text = value.strip()
    if len(text) > MAX_TEXT:
        raise BadQuery(f"'q' searches for at most {MAX_TEXT} characters, not {len(text)}.")
    if CONTROL.search(text):
        raise BadQuery("'q' cannot contain control characters.")
    return text


def _instance(value: str) -> str:
    name = value.strip()
    if name and (len(name) > MAX_INSTANCE_NAME or safe_instance_name(name) != name):
        raise BadQuery(f"'instance' is an instance name (letters, digits, '.', '_', '-'), not {_shown(value)}.")
    return name


def _request_id(value: str) -> str:
    rid = value.strip()
    if rid and not ACCEPTABLE_ID.match(rid):
        raise BadQuery(f"'rid' is a request id (8 to 64 letters, digits, '.', '_', '-'), not {_shown(value)}.")
    return rid


def format_hour(moment: datetime) -> str:
    return f"{moment.hour:02d}@{moment.day:02d}-{moment.month:02d}-{moment.year:04d}"


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class Query:
    hour: datetime
    hidden: frozenset[str] = frozenset()
    text: str = ""
    instance: str = ""
    request_id: str = ""
    minute: int | None = None

    @classmethod
    def from_args(cls, hour: datetime, args: Mapping[str, str]) -> "Query":
        """The view the query string asks for; BadQuery naming the first value that cannot be used.

        Empty values mean "not set", as an HTML form sends them.
        """
        hidden = frozenset(name for name in RECORD_LEVELS if _level_hidden(name.lower(), args.get(name.lower(), "")))
        return cls(
            hour=hour,
            hidden=hidden,
            text=_search_text(args.get("q", "")),
            instance=_instance(args.get("instance", "")),
            request_id=_request_id(args.get("rid", "")),
            minute=_minute(args.get("minute", "")),
        )

    # --- the time span asked for ---
    @property
    def start(self) -> datetime:
        return self.hour + timedelta(minutes=self.minute or 0)

    @property
    def end(self) -> datetime:
        return self.start + (timedelta(minutes=1) if self.minute is not None else timedelta(hours=1))

    # --- URLs ---
    def args(self, **changes) -> dict[str, str]:
        """The query string of this view (or of this view changed), without defaults."""
        query = replace(self, **changes) if changes else self
        found = {name.lower(): "false" for name in RECORD_LEVELS if name in query.hidden}
        if query.text:
            found["q"] = query.text
        if query.instance:
            found["instance"] = query.instance
        if query.request_id:
            found["rid"] = query.request_id
        if query.minute is not None:
            found["minute"] = str(query.minute)
        return found

    # --- matching ---
    def shows_level(self, level: bytes) -> bool:
        return level.decode("ascii", "replace") not in self.hidden

    def text_prefilter(self, layout: LineLayout = LINE) -> bytes | None:
        """Bytes every matching raw line must contain (ASCII searches only), to skip decoding the rest."""
        if not self.text or not self.text.isascii():
            return None
        return layout.text_in_line(self.text).lower()

    def matches(self, record: Record) -> bool:
        if record.level in self.hidden:
            return False
        if self.instance and record.instance != self.instance:
            return False
        if self.request_id and record.request_id != self.request_id:
            return False
        if self.text:
            # lower(), not casefold(): the raw-line prefilter must agree on what matches.
            needle = self.text.lower()
            haystack = " ".join(
                (record.message, record.exception, record.logger, str(record.request.get("path", "")))
            ).lower()
            if needle not in haystack:
                return False
        return True
