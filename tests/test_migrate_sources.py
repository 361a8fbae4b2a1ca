"""migrate_tools' readers: every source shape, streamed, and every kind of bad input.

These read files only; loading into PostgreSQL is tested in test_migrate_postgres.py.
"""
from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone

import pytest

from migrate_tools import rows
from migrate_tools.errors import SourceError
from migrate_tools.samples.writers import (
    MINITWIT_SCHEMA,
    csharp_sha256,
    write_minitwit_sqlite,
    write_snapshot,
    write_tsql_dump,
)
from migrate_tools.sources import open_source
from migrate_tools.sources.sqlite import MiniTwitSqliteSource
from migrate_tools.sources.tsql import TsqlDumpSource

TRICKY = "It''s ''quoted'', [bracketed] -- not a comment /* nor this */\nGO\n; INSERT ✓ 🐦 Zoë"


def _value(field: str, kind: str):
    if field == "\\N":
        return None
    if kind == "int":
        return int(field)
    if kind == "flag":
        return field in ("t", "1")
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), field)


def read_all(path) -> list[rows.StagedRow]:
    """Every row the source streams, decoded back from its COPY lines."""
    types = ("str", "int", "int", "int", "str", "str", "str", "int", "flag")
    staged = []
    for kind, lines in open_source(path).chunks(lambda *a: None):
        for line in lines:
            fields = (line.decode("utf-8") if isinstance(line, bytes) else line).split("\t")
            assert len(fields) == 9 and fields[0] == kind
            staged.append(rows.StagedRow(*(_value(f, t) for f, t in zip(fields, types))))
    return staged


def by_kind(staged, kind):
    return [row for row in staged if row.kind == kind]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


USERS = [(1, "alice", "a@x", csharp_sha256("pw")), (2, "Zoë 🐦", "z@x", "pbkdf2:sha256:1$s$h")]
FOLLOWS = [(1, 2), (2, 1)]
MESSAGES = [
    (1, 1, TRICKY.replace("''", "'"), at("2021-03-01 10:00:00.123456"), 0),
    (2, 2, "line\r\nbreaks\rand\ttabs \\ backslash", at("1999-12-31 23:59:59"), 1),
]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-8-sig"])
@pytest.mark.parametrize("rows_per_insert", [1, 3])
def test_tsql_dump_values_survive_exactly(tmp_path, encoding, rows_per_insert):
    path = tmp_path / "dump.sql"
    write_tsql_dump(path, USERS, FOLLOWS, MESSAGES, encoding=encoding, rows_per_insert=rows_per_insert)
    staged = read_all(path)
    assert isinstance(open_source(path), TsqlDumpSource)
    assert [(r.source_id, r.text1, r.text2, r.text3) for r in by_kind(staged, "u")] == USERS
    assert [(r.ref1, r.ref2) for r in by_kind(staged, "f")] == FOLLOWS
    assert [(r.source_id, r.ref1, r.text1, rows.datetime_of(r.micros), r.flag) for r in by_kind(staged, "m")] == [
        (i, a, t, d, bool(f)) for i, a, t, d, f in MESSAGES
    ]


def test_tsql_keeps_microseconds_of_datetime2(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_text(
        "INSERT [dbo].[users] ([user_id], [username], [email], [pw_hash]) VALUES (1, N'a', N'a@x', N'1')\n"
        "INSERT [dbo].[messages] ([message_id], [Useruser_id], [text], [pub_date], [flagged]) VALUES "
        "(7, 1, N'x', CAST(N'2021-03-01T10:00:00.1234567' AS DateTime2), NULL), "
        "(8, NULL, 'y', CAST(N'2021-03-01T10:00:00' AS DateTime2), 0)\nGO\n",
        encoding="utf-8",
    )
    first, second = by_kind(read_all(path), "m")
    assert rows.datetime_of(first.micros) == at("2021-03-01 10:00:00.123456")
    assert (first.flag, second.ref1, second.text1) == (None, None, "y")


def test_minitwit_sqlite_with_duplicate_follows(tmp_path):
    path = tmp_path / "minitwit.db"
    write_minitwit_sqlite(path, USERS, FOLLOWS + [(1, 2)], MESSAGES)
    assert isinstance(open_source(path), MiniTwitSqliteSource)
    staged = read_all(path)
    assert [(r.ref1, r.ref2) for r in by_kind(staged, "f")] == [(1, 2), (2, 1), (1, 2)]
    # MiniTwit keeps whole Unix seconds.
    assert [rows.datetime_of(r.micros) for r in by_kind(staged, "m")] == [
        at("2021-03-01 10:00:00"), at("1999-12-31 23:59:59")
    ]
    assert [r.text1 for r in by_kind(staged, "m")] == [m[2] for m in MESSAGES]
    assert [r.flag for r in by_kind(staged, "m")] == [False, True]


@pytest.mark.parametrize("encoding", ["UTF-16le", "UTF-16be"])
def test_minitwit_sqlite_in_a_utf16_file_reads_like_utf8(tmp_path, encoding):
    utf8, utf16 = tmp_path / "utf8.db", tmp_path / "utf16.db"
    write_minitwit_sqlite(utf8, USERS, FOLLOWS, MESSAGES)
    original, connection = sqlite3.connect(utf8), sqlite3.connect(utf16)
    connection.execute(f"PRAGMA encoding = '{encoding}'")
    connection.executescript(MINITWIT_SCHEMA)
    for table in ("user", "follower", "message"):
        copied = original.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
        connection.executemany(f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(copied[0]))})', copied)
    connection.commit()
    connection.close()
    original.close()
    assert sqlite3.connect(utf16).execute("PRAGMA encoding").fetchone()[0] == encoding
    staged = read_all(utf16)
    assert staged == read_all(utf8)
    assert [r.text1 for r in by_kind(staged, "m")] == [m[2] for m in MESSAGES]


def test_snapshot_reads_arrays_in_any_order(tmp_path):
    path = tmp_path / "snap.json"
    write_snapshot(path, USERS, FOLLOWS, MESSAGES, exported_at=at("2020-01-01 00:00:00"))
    staged = read_all(path)
    assert [(r.source_id, r.text1) for r in by_kind(staged, "u")] == [(1, "alice"), (2, "Zoë 🐦")]
    assert [rows.datetime_of(r.micros) for r in by_kind(staged, "m")] == [MESSAGES[0][3], MESSAGES[1][3]]
    reordered = tmp_path / "reordered.json"
    reordered.write_text(
        '{"messages": [{"id": 1, "author_id": 5, "text": "t", "pub_date": "2021-03-01T10:00:00+01:00", '
        '"flagged": false}], "users": [], "follows": [], "format": "twooter-snapshot", "version": 1}',
        encoding="utf-8",
    )
    (message,) = read_all(reordered)
    assert rows.datetime_of(message.micros) == at("2021-03-01 09:00:00")


# --- bad input: clear errors naming the file and, where it applies, the line ---

def error_of(path) -> SourceError:
    with pytest.raises(SourceError) as caught:
        read_all(path)
    return caught.value


def test_not_sqlite(tmp_path):
    path = tmp_path / "twooter.sqlite"
    path.write_bytes(b"this is a text file, not a database\n")
    error = error_of(path)
    assert error.path == str(path) and "not a SQLite database" in str(error)


def test_unknown_sqlite_schema(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (id integer)")
    assert "unknown schema" in str(error_of(path)) and "customers" in str(error_of(path))


def test_unrecognised_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("Dear operator,\nthis is not a database.\n")
    assert str(error_of(path)).startswith(f"{path}:1: unrecognised source")


def test_truncated_dump_unterminated_string(tmp_path):
    path = tmp_path / "dump.sql"
    write_tsql_dump(path, USERS, FOLLOWS, MESSAGES, encoding="utf-16")
    data = path.read_text(encoding="utf-16")
    cut = data.index("It''s")
    path.write_text(data[: cut + 10], encoding="utf-16")
    line = data[:cut].count("\n") + 1
    error = error_of(path)
    assert (error.path, error.line) == (str(path), line)
    assert "unterminated string" in error.reason


def test_truncated_dump_missing_go(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_text(
        "USE [MiniTwit]\nGO\nSET IDENTITY_INSERT [dbo].[users] ON\n"
        "INSERT [dbo].[users] ([user_id], [username], [email], [pw_hash]) VALUES (1, N'a', N'a@x', N'1')\n",
        encoding="utf-8",
    )
    error = error_of(path)
    assert error.line == 3 and "does not end with GO" in error.reason


def test_dump_in_wrong_encoding(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_bytes(
        b"USE [MiniTwit]\nGO\n"
        b"INSERT [dbo].[users] ([user_id], [username], [email], [pw_hash]) VALUES (1, N'Zo\xeb', N'z@x', N'1')\nGO\n"
    )
    error = error_of(path)
    assert error.line == 3 and "wrong encoding" in error.reason


def test_dump_of_an_unknown_schema(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_text("INSERT [dbo].[Customers] ([Id]) VALUES (1)\nGO\n", encoding="utf-8")
    assert "unknown schema" in error_of(path).reason


def test_dump_with_a_column_missing(tmp_path):
    path = tmp_path / "dump.sql"
    path.write_text("GO\n\nINSERT [dbo].[users] ([user_id], [email]) VALUES (1, N'x')\nGO\n", encoding="utf-8")
    error = error_of(path)
    assert error.line == 3 and "[username]" in error.reason


def test_truncated_snapshot(tmp_path):
    path = tmp_path / "snap.json"
    write_snapshot(path, USERS, FOLLOWS, MESSAGES, exported_at=at("2020-01-01 00:00:00"))
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index('"messages"') + 40], encoding="utf-8")
    error = error_of(path)
    assert "truncated" in error.reason and error.line is not None


def test_json_that_is_not_a_snapshot(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"users": [], "hello": "world"}', encoding="utf-8")
    assert "not a Twooter snapshot" in error_of(path).reason
