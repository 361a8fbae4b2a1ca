"""What the operator asked the viewer for: an hour, and the filters on it.

The state lives in the URL, so a filtered view can be bookmarked:
`/logs/14@28-11-2026?info=false&q=timeout&instance=web1&rid=…&minute=7`.
Every level can be hidden with `<level>=false`, as the C#-era viewer's
`?info=false` did.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Mapping

from ..logwriter.levels import RECORD_LEVELS
from ..logwriter.records import LINE, LineLayout, Record

HOUR_FORMAT = "<hh>@<dd>-<mm>-<yyyy>"
HOUR_PATTERN = re.compile(r"^(\d{1,2})@(\d{1,2})-(\d{1,2})-(\d{4})$")
FALSE_WORDS = {"false", "0", "no", "off"}
MAX_TEXT = 200


class BadHour(ValueError):
    pass


def parse_hour(text: str) -> datetime:
    match = HOUR_PATTERN.match(text)
    if not match:
        raise BadHour(f"{text!r} is not an hour; the expected format is {HOUR_FORMAT}, e.g. 14@28-11-2026 (UTC)")
    hour, day, month, year = (int(part) for part in match.groups())
    try:
        return datetime(year, month, day, hour, tzinfo=timezone.utc)
    except ValueError:
        raise BadHour(
            f"{text!r} is not a real hour; the expected format is {HOUR_FORMAT}, e.g. 14@28-11-2026 (UTC)"
        ) from None


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
        hidden = frozenset(
            name for name in RECORD_LEVELS if str(args.get(name.lower(), "")).strip().lower() in FALSE_WORDS
        )
        minute = args.get("minute", "")
        return cls(
            hour=hour,
            hidden=hidden,
            text=str(args.get("q", "")).strip()[:MAX_TEXT],
            instance=str(args.get("instance", "")).strip(),
            request_id=str(args.get("rid", "")).strip(),
            minute=int(minute) if str(minute).isdigit() and int(minute) < 60 else None,
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
