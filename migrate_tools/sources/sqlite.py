"""SQLite sources: the original MiniTwit database and Twooter's own embedded one.

Both are read in a single read transaction, so a running app that keeps
writing (WAL mode) still yields one consistent picture of its data.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .. import rows, verify
from ..errors import SourceError
from .base import CHUNK_ROWS, Chunk, ProgressCallback, Source

SQLITE_MAGIC = b"SQLite format 3\x00"

MINITWIT_TABLES = {"user", "follower", "message"}
TWOOTER_TABLES = {"users", "follows", "messages"}


def _connect(path: Path, shared: bool = False) -> sqlite3.Connection:
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=not shared)
        connection.isolation_level = None
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as error:
        raise SourceError(path, f"not a usable SQLite database: {error}") from None
    return connection


def _tables(connection: sqlite3.Connection) -> set[str]:
    return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _columns(connection: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in connection.execute(f'PRAGMA table_info("{table}")')}


def open_sqlite(path: Path) -> Source:
    """Pick the reader for the schema found in the file."""
    connection = _connect(path)
    try:
        tables = _tables(connection)
    finally:
        connection.close()
    if MINITWIT_TABLES <= tables:
        return MiniTwitSqliteSource(path)
    if TWOOTER_TABLES <= tables:
        return TwooterSqliteSource(path)
    found = ", ".join(sorted(tables)) or "no tables"
    raise SourceError(
        path,
        f"unknown schema: expected MiniTwit's tables (user, follower, message) "
        f"or Twooter's (users, follows, messages), found {found}",
    )


def _text_refusals(table: str, key: str, *columns: str) -> list[tuple[str, str, str, str, str]]:
    """What a text column of the file may hold that the target cannot store exactly.

    SQLite's own functions (printf among them) end a text at a NUL, so such
    a value must be refused before any line is formed from it.
    """
    refused = []
    for column in columns:
        refused += [
            (table, key, column, f"instr({column}, char(0)) > 0", rows.NUL_REASON),
            (table, key, column, f"typeof({column}) = 'blob'", "is a BLOB where text belongs"),
        ]
    return refused


def _shown(value) -> str:
    """A value for an error message: bytes as text where they decode, at most 60 characters."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="backslashreplace")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _SqliteSource(Source):
    #: (table, key, column, SQL condition of a refused value, reason), checked before reading.
    refusals: list[tuple[str, str, str, str, str]] = []

    def check_values(self, connection: sqlite3.Connection) -> None:
        """Refuse values the target cannot store exactly, naming the first such row;
        count the values a documented rule changes (see rows.BELOW_MICROSECOND).

        One scan per table: its conditions are asked together.
        """
        tables = dict.fromkeys(table for table, *_ in self.refusals)
        for table in tables:
            checks = [r for r in self.refusals if r[0] == table]
            key = checks[0][1]
            which = " ".join(f"WHEN {condition} THEN {i}" for i, (*_, condition, _) in enumerate(checks))
            either = " OR ".join(f"({condition})" for *_, condition, _ in checks)
            bad = connection.execute(
                f'SELECT {key}, CASE {which} END FROM "{table}" WHERE {either} LIMIT 1').fetchone()
            if bad is not None:
                _, _, column, _, reason = checks[bad[1]]
                factory, connection.text_factory = connection.text_factory, bytes
                try:
                    (value,) = connection.execute(
                        f'SELECT {column} FROM "{table}" WHERE {key} = ?', (bad[0],)).fetchone()
                finally:
                    connection.text_factory = factory
                raise SourceError(self.path, f"table {table}, {key} {bad[0]}: {column} {_shown(value)} {reason}")
        self.adjusted = {}
        for table, reason, condition in self.counted:
            if count := connection.execute(f'SELECT count(*) FROM "{table}" WHERE {condition}').fetchone()[0]:
                self.adjusted.setdefault("messages", {})[reason] = count

    #: (table, conflict name, SQL condition): values a documented rule changes, counted.
    counted: list[tuple[str, str, str]] = []

    #: Per kind, in reading order: the file's table, and the key its rows are read in order of.
    row_keys: dict[str, tuple[str, str]] = {}

    def _lines(self, connection: sqlite3.Connection) -> dict[str, str]:
        """Per kind: the expression of one COPY line per row of its table."""
        raise NotImplementedError

    @contextmanager
    def reading(self, checked: bool = True) -> Iterator[sqlite3.Connection]:
        """The file in one read transaction (every table is read from the same snapshot),
        checked unless the caller checks more strictly itself.

        The connection may be handed to one other thread at a time.
        """
        connection = _connect(self.path, shared=True)
        try:
            connection.execute("BEGIN")
            if checked:
                self.check_values(connection)
            yield connection
            connection.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            raise SourceError(self.path, f"cannot read the database: {error}") from None
        finally:
            connection.close()

    def chunks(self, progress: ProgressCallback) -> Iterator[Chunk]:
        with self.reading() as connection:
            yield from self.chunks_from(connection, progress)

    def chunks_from(self, connection: sqlite3.Connection, progress: ProgressCallback,
                    kinds: str = rows.USER + rows.FOLLOW + rows.MESSAGE) -> Iterator[Chunk]:
        """The rows of the given kinds, read through a connection from reading().

        Starts the sum of their value lines (self.values) afresh.
        """
        self.values = verify.Summed()
        # The COPY lines arrive as bytes in the file's text encoding: only
        # UTF-16 files (rare) need decoding before they go to PostgreSQL.
        encoding = connection.execute("PRAGMA encoding").fetchone()[0]
        codec = None if encoding == "UTF-8" else encoding.lower()
        lines = self._lines(connection)
        read = [(kind, rows.TABLE_OF_KIND[kind], *self.row_keys[kind]) for kind in self.row_keys if kind in kinds]
        for _, table, source_table, _ in read:
            progress(table, 0, 0, connection.execute(f'SELECT count(*) FROM "{source_table}"').fetchone()[0])
        for kind, table, source_table, key in read:
            done = 0
            cursor = connection.execute(f'SELECT {lines[kind]} FROM "{source_table}" ORDER BY {key}')
            while batch := cursor.fetchmany(CHUNK_ROWS):
                yield kind, [line if codec is None else line.decode(codec) for (line,) in batch]
                done += len(batch)
                progress(table, done, done, None)
            progress(table, done, done, None)
            self.values.add(map(verify.staged_value_line, self.decoded_rows(connection, kind)))

    def decoded_rows(self, connection: sqlite3.Connection, kind: str) -> Iterator[rows.StagedRow]:
        """A kind's rows in reading order, from the values as SQLite holds them, converted
        in Python (text as its bytes, never through SQLite's text functions): the side
        of verification that the lines' SQL has no part in."""
        encoding = connection.execute("PRAGMA encoding").fetchone()[0]
        codec = None if encoding == "UTF-8" else encoding.lower()
        text = (lambda raw: raw) if codec is None else (lambda raw: None if raw is None else raw.decode(codec))
        table, key = self.row_keys[kind]
        columns, convert = self._decoders(connection)[kind]
        listed = ", ".join(f"CAST({column[5:]} AS BLOB)" if column.startswith("text:") else column
                           for column in columns)
        cursor = connection.execute(f'SELECT {listed} FROM "{table}" ORDER BY {key}')
        while batch := cursor.fetchmany(CHUNK_ROWS):
            for values in batch:
                yield convert(*(text(v) if c.startswith("text:") else v for c, v in zip(columns, values)))

    def _decoders(self, connection: sqlite3.Connection) -> dict:
        """Per kind: the columns to read ('text:name' for text) and what makes a StagedRow of them."""
        raise NotImplementedError

    def describe_row(self, kind: str, index: int) -> str:
        table, key = self.row_keys[kind]
        connection = _connect(self.path)
        try:
            (value,) = connection.execute(
                f'SELECT {key} FROM "{table}" ORDER BY {key} LIMIT 1 OFFSET ?', (index,)).fetchone()
        finally:
            connection.close()
        return f"table {table}, {key} {value}"


class MiniTwitSqliteSource(_SqliteSource):
    """The original MiniTwit schema: `user`, `follower` (no key), `message` with Unix seconds."""

    kind = "minitwit-sqlite"
    row_keys = {rows.USER: ("user", "user_id"), rows.FOLLOW: ("follower", "rowid"),
                rows.MESSAGE: ("message", "message_id")}

    refusals = [
        *_text_refusals("user", "user_id", "username", "email", "pw_hash"),
        *_text_refusals("message", "message_id", "text"),
        ("message", "message_id", "pub_date", "typeof(pub_date) NOT IN ('integer', 'real', 'null')",
         "is not a Unix time"),
        ("message", "message_id", "pub_date",
         f"pub_date < {rows.EARLIEST_SECONDS} OR pub_date >= {rows.LATEST_SECONDS + 1}", rows.TIME_RANGE_REASON),
    ]
    # A REAL time is rounded to the microsecond (as the lines below do).
    counted = [("message", rows.BELOW_MICROSECOND,
                "typeof(pub_date) = 'real' AND pub_date * 1000000 <> round(pub_date * 1000000)")]

    def _decoders(self, connection):
        return {
            rows.USER: (("user_id", "text:username", "text:email", "text:pw_hash"),
                        lambda i, name, email, pw_hash: rows.user(i, name, email, pw_hash, False)),
            rows.FOLLOW: (("who_id", "whom_id"), rows.follow),
            rows.MESSAGE: (("message_id", "author_id", "text:text", "pub_date", "flagged"),
                           lambda i, author, text, seconds, flagged: rows.message(
                               i, author, text, _unix_micros(seconds), None if flagged is None else flagged != 0)),
        }

    def _lines(self, connection):
        return {
            rows.USER: rows.sqlite_copy_line(
                rows.USER, sid="user_id", text1="username", text2="email", text3="pw_hash", flag="0"),
            rows.FOLLOW: rows.sqlite_copy_line(rows.FOLLOW, ref1="who_id", ref2="whom_id"),
            rows.MESSAGE: rows.sqlite_copy_line(
                rows.MESSAGE, sid="message_id", ref1="author_id", text1="text",
                micros="CAST(round(pub_date * 1000000) AS INTEGER)", flag="flagged != 0"),
        }


class TwooterSqliteSource(_SqliteSource):
    """Twooter's embedded database at any migration revision (columns read as present)."""

    kind = "twooter-sqlite"
    row_keys = {rows.USER: ("users", "id"), rows.FOLLOW: ("follows", "rowid"), rows.MESSAGE: ("messages", "id")}

    # SQLAlchemy stores the app's UTC times as naive ISO text, 'YYYY-MM-DD HH:MM:SS.ffffff':
    # anything else (another shape, an impossible date, a zone) is refused, not guessed at.
    refusals = [
        *_text_refusals("users", "id", "username", "email", "pw_hash"),
        *_text_refusals("messages", "id", "text"),
        ("messages", "id", "pub_date",
         "pub_date IS NOT NULL AND NOT (typeof(pub_date) = 'text' "
         "AND datetime(substr(pub_date, 1, 19), '+0 seconds') = replace(substr(pub_date, 1, 19), 'T', ' ') "
         "AND (length(pub_date) = 19 OR (length(pub_date) = 26 AND substr(pub_date, 20, 1) = '.' "
         "AND substr(pub_date, 21) GLOB '[0-9][0-9][0-9][0-9][0-9][0-9]')))",
         "is not a time as Twooter stores it ('YYYY-MM-DD HH:MM:SS.ffffff', UTC)"),
    ]

    def _decoders(self, connection):
        admin = "is_admin" if "is_admin" in _columns(connection, "users") else "0"
        flagged = "flagged" if "flagged" in _columns(connection, "messages") else "0"
        return {
            rows.USER: (("id", "text:username", "text:email", "text:pw_hash", admin),
                        lambda i, name, email, pw_hash, is_admin: rows.user(
                            i, name, email, pw_hash, None if is_admin is None else is_admin != 0)),
            rows.FOLLOW: (("follower_id", "followed_id"), rows.follow),
            rows.MESSAGE: (("id", "author_id", "text:text", "pub_date", flagged),
                           lambda i, author, text, stamp, flag: rows.message(
                               i, author, text, None if stamp is None else rows.micros_of(datetime.fromisoformat(stamp)),
                               None if flag is None else flag != 0)),
        }

    def _lines(self, connection):
        admin = "is_admin != 0" if "is_admin" in _columns(connection, "users") else "0"
        flagged = "flagged != 0" if "flagged" in _columns(connection, "messages") else "0"
        # Whole seconds from strftime, microseconds from the fraction's digits (padded to six).
        micros = ("CAST(strftime('%s', substr(pub_date, 1, 19)) AS INTEGER) * 1000000 + "
                  "CAST(substr(substr(pub_date, 21) || '000000', 1, 6) AS INTEGER)")
        return {
            rows.USER: rows.sqlite_copy_line(
                rows.USER, sid="id", text1="username", text2="email", text3="pw_hash", flag=admin),
            rows.FOLLOW: rows.sqlite_copy_line(rows.FOLLOW, ref1="follower_id", ref2="followed_id"),
            rows.MESSAGE: rows.sqlite_copy_line(
                rows.MESSAGE, sid="id", ref1="author_id", text1="text",
                micros=f"CASE WHEN pub_date IS NULL THEN NULL ELSE {micros} END", flag=flagged),
        }


def _unix_micros(seconds: int | float | None) -> int | None:
    """Unix seconds as microseconds; a REAL rounded half away from zero, as SQLite's round() does."""
    if seconds is None or isinstance(seconds, int):
        return None if seconds is None else seconds * 1_000_000
    scaled = seconds * 1_000_000
    return int(scaled + 0.5) if scaled >= 0 else -int(-scaled + 0.5)
