"""The one row shape every source yields, as lines of PostgreSQL's COPY text format.

Sources differ in schema, but each produces the same staged rows: a user, a
message or a follow, carrying the source's own ids so the merge plan can
remap them. Times are integer microseconds since the Unix epoch (UTC), exact
on both sides. Sources hand over chunks of ready COPY lines, one kind per
chunk: SQLite sources have SQLite format them (it is much faster), the
others format StagedRows with `copy_line`.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import NamedTuple

USER, MESSAGE, FOLLOW = "u", "m", "f"
TABLE_OF_KIND = {USER: "users", MESSAGE: "messages", FOLLOW: "follows"}

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class StagedRow(NamedTuple):
    kind: str
    source_id: int | None = None
    ref1: int | None = None
    ref2: int | None = None
    text1: str | None = None
    text2: str | None = None
    text3: str | None = None
    micros: int | None = None
    flag: bool | None = None


def user(source_id, username, email, pw_hash, is_admin=False) -> StagedRow:
    return StagedRow(USER, source_id, None, None, username, email, pw_hash, None, is_admin)


def message(source_id, author_id, text, micros, flagged) -> StagedRow:
    return StagedRow(MESSAGE, source_id, author_id, None, text, None, None, micros, flagged)


def follow(follower_id, followed_id) -> StagedRow:
    return StagedRow(FOLLOW, None, follower_id, followed_id)


def micros_of(moment: datetime) -> int:
    """Exact microseconds since the epoch; a naive time is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def datetime_of(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


# What the target stores exactly and the app can show: times in the years
# 0001-9999 UTC (Python's datetime range), ids that fit PostgreSQL's bigint
# (the staging table's; the app's own ids are given afresh), and text
# without NUL characters or lone surrogates (PostgreSQL's UTF-8 text holds
# neither). Sources refuse anything else, naming the row.
EARLIEST_MICROS = micros_of(datetime(1, 1, 1, tzinfo=timezone.utc))
LATEST_MICROS = micros_of(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc))
EARLIEST_SECONDS, LATEST_SECONDS = EARLIEST_MICROS // 1_000_000, LATEST_MICROS // 1_000_000
BIGINT = (-(2**63), 2**63 - 1)

NUL_REASON = "holds a NUL character, which PostgreSQL text cannot store"
SURROGATE_REASON = "is not valid Unicode (it holds a lone surrogate)"
TIME_RANGE_REASON = "is outside the years 0001-9999 that Twooter can store and show"
ID_RANGE_REASON = "is out of range for a 64-bit integer"

# The one documented change to a value, counted per source as a conflict of
# messages: a time with digits below a microsecond (a dump's datetime2 keeps
# 100 ns, an SQLite REAL as many as a double has) is kept to the microsecond.
BELOW_MICROSECOND = "time_below_microsecond"


def text_problem(value: str | bytes) -> str | None:
    """Why the target cannot store this text exactly, or None."""
    if ("\x00" if isinstance(value, str) else b"\x00") in value:
        return NUL_REASON
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_REASON
    return None


def micros_problem(micros: int) -> str | None:
    """Why a time (microseconds since the epoch) cannot be stored and shown, or None."""
    return None if EARLIEST_MICROS <= micros <= LATEST_MICROS else TIME_RANGE_REASON


def id_problem(value: int) -> str | None:
    return None if BIGINT[0] <= value <= BIGINT[1] else ID_RANGE_REASON


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _field(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)


def copy_text(value: str | None) -> str:
    """A text (or NULL) as a field of PostgreSQL's COPY text format."""
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


def copy_line(row: StagedRow) -> str:
    """The row's columns in PostgreSQL's COPY text format, without a newline."""
    return "\t".join(map(_field, row))


def sqlite_copy_text(column: str) -> str:
    """An SQLite expression giving a text column as copy_line writes it.

    Escaping is only done for the few values that need it: replace() copies
    every value it is given, even when nothing matches.
    """
    if column == "NULL":
        return "'\\N'"
    escaped = (f"replace(replace(replace(replace({column}, '\\', '\\\\'), char(9), '\\t'), "
               f"char(10), '\\n'), char(13), '\\r')")
    special = " OR ".join(f"instr({column}, char({code}))" for code in (92, 9, 10, 13))
    return f"ifnull(CASE WHEN {special} THEN {escaped} ELSE {column} END, '\\N')"


def sqlite_copy_number(column: str) -> str:
    if column == "NULL":
        return "'\\N'"
    return f"ifnull({column}, '\\N')"


def sqlite_copy_line(kind: str, sid="NULL", ref1="NULL", ref2="NULL", text1="NULL", text2="NULL",
                     text3="NULL", micros="NULL", flag="NULL") -> str:
    """An SQLite expression building a whole COPY line in the StagedRow layout, as a BLOB.

    One printf costs less than a chain of concatenations, and a BLOB reaches
    Python as bytes: no decoding here and encoding again for PostgreSQL. The
    bytes are in the database's text encoding (see sources.sqlite). The
    printf template holds literal tabs, COPY's field separator.
    """
    fields = [sqlite_copy_number(sid), sqlite_copy_number(ref1), sqlite_copy_number(ref2),
              sqlite_copy_text(text1), sqlite_copy_text(text2), sqlite_copy_text(text3),
              sqlite_copy_number(micros), sqlite_copy_number(flag)]
    template = kind + "\t%s" * len(fields)
    return f"CAST(printf('{template}', {', '.join(fields)}) AS BLOB)"
