"""Values the target cannot store exactly, from every source shape and on both load paths:
refused naming the file, table and row, or changed by the one documented rule and counted;
and verification that compares the decoded values, shown by injecting a fault into each path."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrate_tools import direct, plan, rows, verify
from migrate_tools.errors import SourceError
from migrate_tools.pipeline import migrate
from migrate_tools.samples.writers import write_minitwit_sqlite, write_snapshot, write_tsql_dump
from migrate_tools.sources.sqlite import MiniTwitSqliteSource
from tests.test_migrate_postgres import dump_target, run_cli, target  # noqa: F401  (fixture)

NOTHING = {"users": None, "messages": None, "follows": None}
AT = datetime(2021, 3, 1, 10, 0, tzinfo=timezone.utc)
USERS = [(1, "alice", "a@x", "h1"), (2, "bob", "b@x", "h2")]
MESSAGES = [(1, 1, "first", AT, 0), (2, 2, "second", AT, 0), (3, 1, "third", AT, 1)]
BOTH_PATHS = pytest.mark.parametrize("method", ["direct", "staged"])


def minitwit(path: Path, table: str = "", change: str = "", where: str = "") -> Path:
    write_minitwit_sqlite(path, USERS, [(1, 2)], MESSAGES)
    if change:
        with sqlite3.connect(path) as connection:
            connection.execute(f"UPDATE {table} SET {change} WHERE {where}")
        connection.close()
    return path


def twooter_sqlite(path: Path, text: str = "second", stamp: str = "2021-03-01 10:00:00.000000") -> Path:
    """A Twooter SQLite file as the app's first revision lays it out."""
    connection = sqlite3.connect(path)
    connection.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT NOT NULL, email TEXT NOT NULL,
                            pw_hash TEXT NOT NULL, is_admin BOOLEAN NOT NULL DEFAULT 0);
        CREATE TABLE follows (follower_id INTEGER NOT NULL, followed_id INTEGER NOT NULL);
        CREATE TABLE messages (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL, text TEXT NOT NULL,
                               pub_date DATETIME NOT NULL, flagged BOOLEAN NOT NULL DEFAULT 0);
    """)
    connection.executemany("INSERT INTO users VALUES (?, ?, ?, ?, 0)", USERS)
    connection.execute("INSERT INTO follows VALUES (1, 2)")
    connection.execute("INSERT INTO messages VALUES (1, 1, 'first', '2021-03-01 10:00:00.000000', 0)")
    connection.execute("INSERT INTO messages VALUES (2, 2, ?, ?, 0)", (text, stamp))
    connection.commit()
    connection.close()
    return path


def snapshot(path: Path, message: dict | None = None, user: dict | None = None) -> Path:
    write_snapshot(path, USERS, [(1, 2)], MESSAGES[:1], exported_at=AT)
    document = json.loads(path.read_text(encoding="utf-8"))
    if message:
        document["messages"].append({"id": 2, "author_id": 2, "text": "second", "pub_date": "2021-03-01T10:00:00Z",
                                     "flagged": False, **message})
    if user:
        document["users"].append({"id": 3, "username": "carol", "email": "c@x", "pw_hash": "h", **user})
    path.write_text(json.dumps(document), encoding="utf-8")  # ASCII: \u escapes carry NUL and surrogates
    return path


def dump(path: Path, text: str = "second", stamp: str = "2021-03-01T10:00:00.0000000", user_id: int = 2) -> Path:
    write_tsql_dump(path, [USERS[0], (user_id, *USERS[1][1:])], [(1, 2)], [MESSAGES[0]], encoding="utf-8")
    content = path.read_text(encoding="utf-8")
    insert = ("INSERT [dbo].[messages] ([message_id], [Useruser_id], [text], [pub_date], [flagged]) VALUES "
              f"(2, 2, N'{text}', CAST(N'{stamp}' AS DateTime2), 0)\r\n")
    content = content.replace("SET IDENTITY_INSERT [dbo].[messages] OFF", insert + "SET IDENTITY_INSERT [dbo].[messages] OFF")
    path.write_text(content, encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def refused(source: Path, target: str, method: str = "staged") -> str:
    """The error migrating `source` gives; the target must be as it was (empty, no schema)."""
    with pytest.raises(SourceError) as raised:
        migrate([source], target, allow_direct=method == "direct")
    assert dump_target(target) == NOTHING
    return str(raised.value)


# --- refused, naming the file, table and row ------------------------------------

@BOTH_PATHS
@pytest.mark.parametrize("table, change, where, column", [
    ("message", "text = 'before' || char(0) || 'after'", "message_id = 2", "text 'before\\x00after'"),
    ("user", "username = 'bo' || char(0) || 'b'", "user_id = 2", "username 'bo\\x00b'"),
    ("user", "email = char(0)", "user_id = 2", "email '\\x00'"),
])
def test_minitwit_nul_is_refused_naming_the_row(target, tmp_path, method, table, change, where, column):
    source = minitwit(tmp_path / "nul.db", table, change, where)
    key = where.replace(" = ", " ")
    assert refused(source, target, method) == (
        f"{source}: table {table}, {key}: {column} holds a NUL character, which PostgreSQL text cannot store")


@BOTH_PATHS
@pytest.mark.parametrize("seconds", [10**12, -(10**12), 253402300800, -62135596801, 1e300])
def test_minitwit_times_out_of_range_are_refused(target, tmp_path, method, seconds):
    source = minitwit(tmp_path / "far.db", "message", f"pub_date = {seconds!r}", "message_id = 3")
    message = refused(source, target, method)
    assert message.startswith(f"{source}: table message, message_id 3: pub_date ")
    assert message.endswith(rows.TIME_RANGE_REASON)


@BOTH_PATHS
def test_minitwit_blob_text_is_refused(target, tmp_path, method):
    source = minitwit(tmp_path / "blob.db", "message", "text = x'6869'", "message_id = 1")
    assert refused(source, target, method) == f"{source}: table message, message_id 1: text 'hi' is a BLOB where text belongs"


def test_minitwit_times_at_the_edges_of_the_range_are_kept(target, tmp_path):
    source = minitwit(tmp_path / "edges.db")
    with sqlite3.connect(source) as connection:
        connection.execute(f"UPDATE message SET pub_date = {rows.EARLIEST_SECONDS} WHERE message_id = 1")
        connection.execute(f"UPDATE message SET pub_date = {rows.LATEST_SECONDS} WHERE message_id = 2")
    connection.close()
    report = migrate([source], target)
    assert report.ok and report.method == "direct"
    times = {text: moment for _, _, text, moment, _ in dump_target(target)["messages"]}
    assert times["first"] == datetime(1, 1, 1, tzinfo=timezone.utc)
    assert times["second"] == datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, stamp, reason", [
    ("nul\x00here", "2021-03-01 10:00:00.000000", "text 'nul\\x00here' holds a NUL character"),
    ("zone", "2021-03-01 10:00:00+01:00", "pub_date '2021-03-01 10:00:00+01:00' is not a time as Twooter stores it"),
    ("no such day", "2021-02-30 10:00:00.000000", "pub_date '2021-02-30 10:00:00.000000' is not a time"),
    ("seven digits", "2021-03-01 10:00:00.1234567", "pub_date '2021-03-01 10:00:00.1234567' is not a time"),
    ("a word", "yesterday", "pub_date 'yesterday' is not a time"),
])
def test_twooter_sqlite_values_are_refused_naming_the_row(target, tmp_path, text, stamp, reason):
    source = twooter_sqlite(tmp_path / "twooter.sqlite", text, stamp)
    assert refused(source, target).startswith(f"{source}: table messages, id 2: {reason}")


@pytest.mark.parametrize("message, user, reason", [
    ({"text": "before\u0000after"}, None, "messages[1]: text 'before\\x00after' holds a NUL character"),
    ({"text": "half \ud800 a pair"}, None, "messages[1]: text 'half \\ud800 a pair' is not valid Unicode"),
    ({"pub_date": "9999-12-31T23:00:00-05:00"}, None, "messages[1]: pub_date '9999-12-31T23:00:00-05:00' is outside"),
    ({"pub_date": "0001-01-01T00:00:00+05:00"}, None, "messages[1]: pub_date '0001-01-01T00:00:00+05:00' is outside"),
    (None, {"username": "car\u0000ol"}, "users[2]: username 'car\\x00ol' holds a NUL character"),
    ({"flagged": "false"}, None, "messages[1]: flagged 'false' is missing or of the wrong type"),
    (None, {"is_admin": "no"}, "users[2]: is_admin 'no' is missing or of the wrong type"),
])
def test_snapshot_values_are_refused_naming_the_item(target, tmp_path, message, user, reason):
    source = snapshot(tmp_path / "snapshot.json", message, user)
    assert refused(source, target).startswith(f"{source}: {reason}")


def test_snapshot_numbers_out_of_range_are_refused_naming_the_line(target, tmp_path):
    source = snapshot(tmp_path / "snapshot.json", user={"id": 2**63})
    assert refused(source, target) == f"{source}:1: a number {rows.ID_RANGE_REASON}"


@pytest.mark.parametrize("kind", ["nul", "zone beyond 9999", "id"])
def test_dump_values_are_refused_naming_the_line(target, tmp_path, kind):
    path = tmp_path / "dump.sql"
    if kind == "nul":
        source, needle, reason = dump(path, text="before\x00after"), "(2, 2, N'before", "[text] 'before\\x00after' holds a NUL"
    elif kind == "zone beyond 9999":
        source = dump(path, stamp="9999-12-31T23:00:00-05:00")
        needle, reason = "(2, 2, N'second'", "[pub_date] '9999-12-31T23:00:00-05:00' is outside the years"
    else:
        source, needle, reason = dump(path, user_id=2**63), f"({2**63}, N'bob'", f"[user_id] {2**63} is out of range"
    assert refused(source, target).startswith(f"{source}:{line_of(source, needle)}: {reason}")


def test_the_command_exits_2_and_names_the_row(target, tmp_path):
    source = minitwit(tmp_path / "nul.db", "message", "text = 'before' || char(0) || 'after'", "message_id = 2")
    result = run_cli(source, "--to", target)
    assert result.exit_code == 2
    assert f"{source}: table message, message_id 2: text" in result.output
    assert "the target is unchanged" in result.output
    assert dump_target(target) == NOTHING


# --- the documented rule: digits below a microsecond, counted -------------------

def test_dump_time_digits_below_a_microsecond_are_counted(target, tmp_path):
    source = dump(tmp_path / "dump.sql", stamp="2021-03-01T10:00:00.1234567")
    report = migrate([source], target)
    assert report.ok
    assert report.totals()["messages"].conflicts == {rows.BELOW_MICROSECOND: 1}
    times = {text: moment for _, _, text, moment, _ in dump_target(target)["messages"]}
    assert times["second"] == datetime(2021, 3, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)


def test_snapshot_time_digits_below_a_microsecond_are_counted(target, tmp_path):
    source = snapshot(tmp_path / "snapshot.json", {"pub_date": "2021-03-01T10:00:00.1234560Z"})
    report = migrate([source], target)
    assert report.ok and rows.BELOW_MICROSECOND not in report.totals()["messages"].conflicts  # a zero lost nothing
    source = snapshot(tmp_path / "other.json", {"pub_date": "2021-03-01T10:00:00.1234567Z"})
    report = migrate([source], target, merge=True)
    assert report.ok and report.totals()["messages"].conflicts == {rows.BELOW_MICROSECOND: 1}


def test_minitwit_real_times_are_rounded_to_the_microsecond_and_counted(target, tmp_path):
    source = minitwit(tmp_path / "real.db", "message", "pub_date = 1614592800.0000002", "message_id = 2")
    report = migrate([source], target)
    assert report.ok and report.method == "staged"  # the direct path carries whole seconds only
    assert report.totals()["messages"].conflicts == {rows.BELOW_MICROSECOND: 1}
    times = {text: moment for _, _, text, moment, _ in dump_target(target)["messages"]}
    assert times["second"] == datetime(2021, 3, 1, 10, 0, tzinfo=timezone.utc)


# --- verification compares the decoded values: faults injected into each path ---

def _fails_and_keeps_nothing(report, target: str, check: str) -> None:
    assert not report.ok and not report.committed
    failed = {name for name, c in report.verification.items() if not c.ok}
    failed |= {f"values {i}" for i, s in enumerate(report.sources) if s.value_check and not s.value_check.ok}
    assert check in failed, failed
    assert dump_target(target) == NOTHING


@BOTH_PATHS
def test_a_nul_that_passes_the_checks_fails_verification(target, tmp_path, monkeypatch, method):
    """With the refusal switched off, SQLite's printf cuts 'before\\0after' to 'before':
    the lines agree with the target, the decoded values do not."""
    monkeypatch.setattr(MiniTwitSqliteSource, "check_values", lambda self, connection: None)
    source = minitwit(tmp_path / "nul.db", "message", "text = 'before' || char(0) || 'after'", "message_id = 2")
    report = migrate([source], target, allow_direct=method == "direct")
    assert report.method == method
    _fails_and_keeps_nothing(report, target, "messages" if method == "direct" else "values 0")


@pytest.mark.parametrize("statement, check", [
    ("MESSAGE_LINES", "messages"), ("FOLLOW_LINES", "follows")])
def test_a_changed_line_on_the_direct_path_fails_verification(target, tmp_path, monkeypatch, statement, check):
    faulty = {"MESSAGE_LINES": direct.MESSAGE_LINES.replace("m.text,", "replace(m.text, 'd', 'D'),"),
              "FOLLOW_LINES": direct.FOLLOW_LINES.replace("{user:f.who_id}, {user:f.whom_id}",
                                                          "{user:f.whom_id}, {user:f.who_id}")}[statement]
    assert faulty != getattr(direct, statement)
    monkeypatch.setattr(direct, statement, faulty)
    report = migrate([minitwit(tmp_path / "m.db")], target)
    assert report.method == "direct"
    _fails_and_keeps_nothing(report, target, check)


def test_a_changed_line_on_the_staged_path_fails_the_value_check(target, tmp_path, monkeypatch):
    original = rows.copy_line

    def faulty(row):
        return original(row._replace(text1="s3cond") if row.text1 == "second" else row)

    monkeypatch.setattr(rows, "copy_line", faulty)
    report = migrate([snapshot(tmp_path / "snapshot.json", {"text": "second"})], target)
    _fails_and_keeps_nothing(report, target, "values 0")


def test_a_changed_sqlite_line_on_the_staged_path_fails_the_value_check(target, tmp_path, monkeypatch):
    original = rows.sqlite_copy_text
    monkeypatch.setattr(rows, "sqlite_copy_text", lambda column: original(
        f"replace({column}, 'i', 'I')" if column == "text" else column))
    report = migrate([minitwit(tmp_path / "m.db")], target, allow_direct=False)
    _fails_and_keeps_nothing(report, target, "values 0")


def test_a_changed_value_in_the_merge_plan_fails_verification(target, tmp_path, monkeypatch):
    faulty = plan.MESSAGES.replace("author_id, text, (timestamptz", "author_id, upper(text), (timestamptz")
    assert faulty != plan.MESSAGES
    monkeypatch.setattr(plan, "MESSAGES", faulty)
    report = migrate([minitwit(tmp_path / "m.db")], target, allow_direct=False)
    _fails_and_keeps_nothing(report, target, "messages")


def test_the_value_checks_pass_and_are_reported(target, tmp_path):
    sources = [minitwit(tmp_path / "m.db"), snapshot(tmp_path / "s.json"), dump(tmp_path / "d.sql"),
               twooter_sqlite(tmp_path / "t.sqlite")]
    report = migrate(sources, target)
    assert report.ok and report.committed
    checks = [s.value_check for s in report.sources]
    assert [c.expected_rows for c in checks] == [6, 4, 5, 5] and all(c.ok for c in checks)
    assert report.as_dict()["sources"][0]["value_check"]["ok"] is True


@pytest.mark.parametrize("text", [b"plain", b"tab\there\nnewline \\ and \"quotes\"", "ünïcødé 🐦".encode(), b"123"])
def test_the_direct_paths_spellings_are_postgresqls(target, text):
    """The file side's lines (bound %-formats over fetched rows) against PostgreSQL's."""
    engine = target.replace("postgresql://", "postgresql+psycopg2://", 1)
    with sa.create_engine(engine).connect() as connection:
        line, = connection.exec_driver_sql(
            f"SELECT {direct.MESSAGE_LINE.format(m='')} FROM (VALUES (7, 3, timestamptz '1969-12-31 00:00:00.000001+00', "
            "true, %(text)s)) v(id, author_id, pub_date, flagged, text)", {"text": text.decode()}).one()
        digest = connection.exec_driver_sql(verify.digest_sql("%(line)s::bytea", "(VALUES (1)) one"),
                                            {"line": bytes(line)}).one()
    spelled = direct.message_line((7, 3, -86_399_999_999, b"t", text))
    assert bytes(line) == spelled
    assert tuple(digest) == (1, verify.md5_sum([spelled]))
    assert direct.follow_line((4, 9)) == verify.value_line((4, 9))
    assert direct.name_line(5, text) == verify.value_line((5, text))
