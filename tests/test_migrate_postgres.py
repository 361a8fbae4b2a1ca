"""migrate_tools against a real PostgreSQL: loading, merging, verification, atomicity,
legacy logins on a real app server, and every unusable target."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import psycopg2
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from migrate_tools import direct
from migrate_tools.cli import main as cli_main
from migrate_tools.errors import SourceError, TargetError
from migrate_tools.pipeline import migrate
from migrate_tools.samples import make_samples
from migrate_tools.samples.writers import MINITWIT_SCHEMA, write_minitwit_sqlite, write_snapshot, write_tsql_dump
from tests.servers import LiveServer, PostgresDatabase
from tests.twooter_client import TwooterClient
from twooter import create_app
from twooter.extensions import db

PROJECT = Path(__file__).resolve().parents[1]


@contextmanager
def empty_target() -> Iterator[str]:
    """An empty database of its own (no schema yet), dropped afterwards."""
    with PostgresDatabase.created() as database:
        # As an operator writes it: libpq's form, which psycopg2 also takes directly.
        yield sa.make_url(database.url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def target():
    with empty_target() as url:
        yield url


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return make_samples.make(tmp_path_factory.mktemp("samples"))


def engine_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def query(url: str, sql: str) -> list[tuple]:
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        result = cursor.fetchall()
    connection.close()
    return result


def dump_target(url: str) -> dict[str, list[tuple]]:
    """Everything the app can see, in a stable order (or None per table when absent)."""
    tables = {row[0] for row in query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    order = {"users": "id", "messages": "id", "follows": "follower_id, followed_id"}
    return {
        table: query(url, f"SELECT * FROM {table} ORDER BY {key}") if table in tables else None
        for table, key in order.items()
    }


def totals(report) -> dict[str, tuple]:
    return {
        table: (t.read, t.written, t.merged, t.skipped, t.conflicts)
        for table, t in report.totals().items()
    }


def test_samples_merge_with_every_conflict_counted(samples, target):
    report = migrate(samples, target)
    assert report.ok and report.committed
    assert totals(report) == {
        "users": (11, 6, 5, {}, {"email_differs": 2, "password_hash_differs": 5}),
        "follows": (11, 5, 4, {"missing_user": 2}, {}),
        "messages": (14, 9, 2, {"empty_text": 1, "missing_author": 2}, {}),
    }
    content = dump_target(target)
    users = {u[1]: u for u in content["users"]}
    assert list(users) == ["alice", "bob", "carol", "dave", "erin", "Zoë O'Brien"]
    # The newest stage (MSSQL) gives alice's email and hash; carol only ever lived in MiniTwit.
    assert users["alice"][2] == "alice@new.example" and users["alice"][3].isdigit()
    assert users["carol"][3].startswith("pbkdf2:sha256:")
    texts = [m[2] for m in content["messages"]]
    assert texts.count("Hello, MiniTwit!") == 1
    assert "Line one\r\nline two, Windows style; GO\nGO\n-- not a comment" in texts
    assert "It's a 'quoted' twoot\nover two lines, with a tab\there" in texts
    assert "Ünïcødé and emoji 🐦✨ survive" in texts
    times = {m[2]: m[3] for m in content["messages"]}
    assert times["SQL Server keeps 100 ns: this one has microseconds"] == datetime(
        2019, 11, 20, 16, 20, 30, 123456, tzinfo=timezone.utc)
    assert times["dave, after the move to MSSQL"].microsecond == 1
    assert times["Kept in memory, for now."].microsecond == 250000
    name_of = {u[0]: u[1] for u in content["users"]}
    assert {(name_of[a], name_of[b]) for a, b in content["follows"]} == {
        ("alice", "bob"), ("bob", "alice"), ("carol", "alice"), ("dave", "alice"), ("erin", "alice")
    }
    assert [m[4] for m in content["messages"] if m[2] == "flagged long ago"] == [True]


def test_rerun_with_merge_adds_nothing(samples, target):
    migrate(samples, target)
    before = dump_target(target)
    report = migrate(samples, target, merge=True)
    assert report.ok and report.committed
    assert all(t.written == 0 for t in report.totals().values())
    assert dump_target(target) == before


def test_merging_into_a_live_target_keeps_its_users(samples, target, tmp_path):
    """A username the running app already has keeps the app's row; its old twoots join it."""
    live = tmp_path / "live.json"
    write_snapshot(live, [(7, "alice", "alice@live.example", "$argon2id$live")], [], [],
                   exported_at=datetime(2026, 1, 1, tzinfo=timezone.utc))
    migrate([live], target)
    report = migrate(samples, target, merge=True)
    assert report.ok and report.committed
    users = report.totals()["users"]
    assert (users.written, users.merged, users.conflicts["email_differs"]) == (5, 6, 3)
    assert query(target, "SELECT id, email, pw_hash FROM users WHERE username = 'alice'") == [
        (1, "alice@live.example", "$argon2id$live")]
    assert query(target, "SELECT count(*) FROM messages WHERE author_id = 1") == [(2,)]


def test_non_empty_target_is_refused_without_merge(samples, target):
    migrate(samples[:1], target)
    before = dump_target(target)
    with pytest.raises(TargetError, match="not empty .* --merge"):
        migrate(samples[1:], target)
    assert dump_target(target) == before


def test_dry_run_checks_everything_and_writes_nothing(samples, target):
    report = migrate(samples, target, dry_run=True)
    assert report.ok and not report.committed
    assert sum(t.written for t in report.totals().values()) == 20
    # Not even the schema: the migrations ran inside the rolled-back transaction.
    assert dump_target(target) == {"users": None, "messages": None, "follows": None}


def test_a_target_that_changes_rows_fails_verification_and_keeps_nothing(samples, target):
    """A trigger on the target rewrites text: the checksums disagree, nothing is committed."""
    migrate(samples[:1], target)
    with psycopg2.connect(target) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.text := upper(NEW.text); RETURN NEW; END $$;"
            "CREATE TRIGGER shout BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION shout()"
        )
    connection.close()
    before = dump_target(target)
    result = run_cli(*samples[1:], "--to", target, "--merge")
    assert result.exit_code == 1
    assert "MISMATCH" in result.output and "NOT committed" in result.output
    assert dump_target(target) == before


def test_sequences_continue_after_the_largest_ids(samples, target):
    migrate(samples, target)
    engine = sa.create_engine(engine_url(target))
    with engine.begin() as connection:
        new_id = connection.exec_driver_sql(
            "INSERT INTO users (username, username_key, email, pw_hash) VALUES ('new', 'new', 'n@x', 'h') RETURNING id"
        ).scalar_one()
    engine.dispose()
    assert new_id == 7


def test_legacy_passwords_log_in_to_the_app_after_migration(samples, target, tmp_path):
    migrate(samples, target)
    app = create_app({"INSTANCE_PATH": tmp_path / "instance", "SQLALCHEMY_DATABASE_URI": engine_url(target),
                      "TESTING": True})
    with LiveServer(app) as server:
        for username in ("alice", "carol", "Zoë O'Brien"):  # C#-era, Werkzeug, C#-era non-ASCII
            client = TwooterClient(server.url)
            assert "Invalid password" in client.login(username, "wrong").text
            assert "You were logged in" in client.login(username, make_samples.password(username)).text
            assert "Your message was recorded" in client.add_message(f"{username} is back").text
    hashes = dict(query(target, "SELECT username, pw_hash FROM users"))
    assert hashes["alice"].startswith("$argon2id$") and hashes["carol"].startswith("$argon2id$")
    assert hashes["bob"].isdigit()  # not logged in: still the legacy hash


def test_twooter_export_round_trips_through_a_snapshot(tmp_path, target):
    """`twooter export` of an embedded SQLite app, migrated: the same rows come out."""
    sqlite_uri = f"sqlite:///{tmp_path / 'twooter.sqlite'}"
    environment = {**os.environ, "DATABASE_URL": sqlite_uri, "TWOOTER_INSTANCE_PATH": str(tmp_path)}
    app = create_app({"INSTANCE_PATH": tmp_path, "SQLALCHEMY_DATABASE_URI": sqlite_uri})
    from twooter import database, models

    database.upgrade_to_latest(app)
    with app.app_context():
        ann = models.create_user("ann", "ann@x", "pbkdf2:sha256:1$s$h")
        ben = models.create_user("ben 🐝", "ben@x", "12345")
        models.follow(ann, ben)
        models.add_message(ann, "tab\there \\ and \"quotes\"", datetime(2020, 1, 2, 3, 4, 5, 678901, timezone.utc))
        models.add_message(ben, "ünïcødé\nline", datetime(2020, 1, 3, tzinfo=timezone.utc))
        db.engine.dispose()
    snapshot = tmp_path / "snapshot.json"
    _export(environment, snapshot)
    report = migrate([snapshot, tmp_path / "twooter.sqlite"], target)
    assert report.ok
    assert [s.kind for s in report.sources] == ["twooter-snapshot", "twooter-sqlite"]
    assert report.totals()["messages"].written == 2 and report.totals()["messages"].merged == 2
    content = dump_target(target)
    assert [u[1:4] for u in content["users"]] == [("ann", "ann@x", "pbkdf2:sha256:1$s$h"), ("ben 🐝", "ben@x", "12345")]
    assert [(m[2], m[3]) for m in content["messages"]] == [
        ("tab\there \\ and \"quotes\"", datetime(2020, 1, 2, 3, 4, 5, 678901, timezone.utc)),
        ("ünïcødé\nline", datetime(2020, 1, 3, tzinfo=timezone.utc)),
    ]


def _export(environment: dict, snapshot: Path) -> None:
    script = "from twooter.cli import main; main()"
    subprocess.run([sys.executable, "-c", script, "export", str(snapshot)], env=environment,
                   check=True, cwd=PROJECT, capture_output=True, timeout=60)


# --- the command line: exit statuses, the JSON report, bad input ----------------

def run_cli(*args: str):
    return CliRunner().invoke(cli_main, [str(a) for a in args])


def test_cli_writes_the_json_report_and_the_summary(samples, target, tmp_path):
    report_file = tmp_path / "report.json"
    result = run_cli(*samples, "--to", target, "--report", report_file)
    assert result.exit_code == 0, result.output
    assert "OK: committed" in result.output and "missing_author" in result.output
    report = json.loads(report_file.read_text())
    assert report["ok"] and report["committed"]
    assert report["tables"]["messages"]["skipped"] == {"empty_text": 1, "missing_author": 2}
    assert all(check["ok"] for check in report["verification"].values())
    assert "twooter:***@" in report["target"]


@pytest.mark.parametrize("damage", ["not_sqlite", "truncated_dump", "wrong_encoding"])
def test_bad_input_names_the_file_and_leaves_the_target_untouched(samples, target, tmp_path, damage):
    migrate(samples[:1], target)
    before = dump_target(target)
    if damage == "not_sqlite":
        bad = tmp_path / "twooter.sqlite"
        bad.write_text("not a database")
        expected = f"{bad}: not a SQLite database"
    elif damage == "truncated_dump":
        bad = tmp_path / "dump.sql"
        text = samples[2].read_text(encoding="utf-16")
        bad.write_text(text[: text.index("an orphan")], encoding="utf-16")
        expected = f"{bad}:{text[: text.index('an orphan')].count(chr(10)) + 1}: unterminated string"
    else:
        bad = tmp_path / "dump.sql"
        text = samples[2].read_text(encoding="utf-16")
        bad.write_bytes(text.replace("Zoë", "Zo\udceb").encode("utf-8", errors="surrogateescape"))
        expected = f"{bad}:{text[: text.index('Zoë')].count(chr(10)) + 1}: wrong encoding"
    # The bad source comes after good ones, so rows were already staged when it fails.
    result = run_cli(samples[1], bad, "--to", target, "--merge")
    assert result.exit_code == 2
    assert expected in result.output and "the target is unchanged" in result.output
    assert dump_target(target) == before


def test_unreachable_target(samples):
    result = run_cli(*samples, "--to", "postgresql://twooter:twooter@127.0.0.1:1/nowhere")
    assert result.exit_code == 2 and "cannot connect to PostgreSQL at" in result.output


def test_read_only_target(samples, target):
    admin = sa.make_url(target)
    query(target, "SELECT 1")
    with psycopg2.connect(target) as connection:
        connection.autocommit = True
        connection.cursor().execute(
            f'ALTER DATABASE "{admin.database}" SET default_transaction_read_only = on')
    connection.close()
    result = run_cli(*samples, "--to", target)
    assert result.exit_code == 2 and "is read-only" in result.output


def test_a_target_that_is_not_postgresql(samples, tmp_path):
    result = run_cli(*samples, "--to", f"sqlite:///{tmp_path / 'x.sqlite'}")
    assert result.exit_code == 2 and "must be a PostgreSQL URL" in result.output


# --- atomicity: interrupted or killed mid-load, the target stays as it was -------

def _wait_for_the_load(target: str, process: subprocess.Popen, timeout: float = 60) -> None:
    """Return once the migration's transaction has begun writing (it stages rows from then on)."""
    database = sa.make_url(target).database
    deadline = time.monotonic() + timeout
    watcher = psycopg2.connect(target)
    watcher.autocommit = True
    try:
        with watcher.cursor() as cursor:
            while time.monotonic() < deadline:
                assert process.poll() is None, process.stderr.read()
                # Client backends only: autovacuum's ANALYZE of the rows loaded
                # before also takes a transaction id, in the same database.
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                    "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()", (database,))
                if cursor.fetchone()[0]:
                    return
                time.sleep(0.02)
    finally:
        watcher.close()
    pytest.fail("the migration never began its load")


def _stop_mid_load(target: str, stop: signal.Signals, *args: str) -> None:
    """Run the command line, send `stop` once its load has begun, and check how it ended."""
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate_tools", *args, "--to", target, "--quiet"],
        cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A shell's background job ignores SIGINT, and so would the child (Python then
        # installs no KeyboardInterrupt handler): give it the default back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_for_the_load(target, process)
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    if stop == signal.SIGINT:
        assert process.returncode == 130 and "nothing was committed" in stderr, stderr
    else:
        assert process.returncode == -signal.SIGKILL


def _numbered_twoots(count: int, users: int = 2000):
    start = datetime(2015, 1, 1, tzinfo=timezone.utc).timestamp()
    return ((i, 1 + i % users, f"twoot number {i}", datetime.fromtimestamp(start + i, timezone.utc), 0)
            for i in range(1, count + 1))


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_stopping_mid_load_leaves_the_target_unchanged(samples, target, tmp_path, stop):
    migrate(samples[:1], target)
    before = dump_target(target)
    # A dump streams slowly enough (it is parsed statement by statement) that
    # the signal lands mid-load however busy the machine is.
    big = tmp_path / "big.sql"
    write_tsql_dump(big, [(i, f"user{i}", f"u{i}@x", "h") for i in range(1, 2001)], [], _numbered_twoots(40_000),
                    encoding="utf-8")
    _stop_mid_load(target, stop, str(big), "--merge")
    assert dump_target(target) == before
    report = migrate([big], target, merge=True)  # and a re-run succeeds
    assert report.ok and report.totals()["messages"].written == 40_000


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT])
def test_stopping_a_direct_load_leaves_the_target_unchanged(target, tmp_path, stop):
    # Large enough that the load outlasts the signal's way on a busy machine.
    big = tmp_path / "big.db"
    users = [(i, f"user{i}", f"u{i}@x", "h") for i in range(1, 2001)]
    write_minitwit_sqlite(big, users, [(i, 1 + (i * 7) % 2000) for i in range(1, 2001)], _numbered_twoots(400_000))
    _stop_mid_load(target, stop, str(big))
    assert dump_target(target) == {"users": None, "messages": None, "follows": None}
    report = migrate([big], target)
    assert report.ok and report.method == "direct" and report.totals()["messages"].written == 400_000


def _expected_messages(users, messages):
    """The documented rule, applied row by row: what the target should hold, in id order."""
    name_of = {}
    for user_id, username, _, _ in users:
        name_of.setdefault(user_id, username)
    kept, seen = [], set()
    for _, author, text, moment, flagged in messages:
        if author not in name_of or not text or moment is None:
            continue
        key = (name_of[author], text, moment)
        if key not in seen:
            seen.add(key)
            kept.append((name_of[author], text, moment, bool(flagged)))
    return kept


@pytest.mark.parametrize("method", ["direct", "staged"])
def test_message_copies_are_found_among_messages_sharing_a_time(target, tmp_path, method):
    # Copies need the same author (after matching usernames), text and time;
    # times repeat, are out of order, and some rows are skipped.
    at = [datetime(2020, 5, 1, 12, 0, s, tzinfo=timezone.utc) for s in range(4)]
    users = [(1, "alice", "a@x", "h"), (2, "bob", "b@x", "h"), (3, "alice", "a2@x", "h2")]
    messages = [
        (1, 1, "hello", at[2], 0),
        (2, 1, "hello", at[2], 1),    # copy of 1: merged, 1's flag stays
        (3, 2, "hello", at[2], 0),    # another author
        (4, 1, "hello!", at[2], 0),   # another text
        (5, 1, "hello", at[3], 0),    # another time
        (6, 3, "hello", at[2], 0),    # alice again under her second source id: merged
        (7, 2, "", at[2], 0),         # empty text: skipped
        (8, 9, "hello", at[2], 0),    # no such author: skipped
        (9, 2, "early", at[0], 0),
        (10, 2, "early", at[0], 0),   # copy of 9
        (11, 1, "early", at[0], 0),
        (12, 2, "tab\tand\nnewline", at[1], 0),
        (13, 2, "tab\tand\nnewline", at[1], 0),  # copy of 12
    ]
    source = tmp_path / "copies.db"
    write_minitwit_sqlite(source, users, [], messages)
    report = migrate([source], target, allow_direct=method == "direct")
    assert report.ok and report.committed and report.method == method
    tally = report.totals()["messages"]
    assert (tally.read, tally.written, tally.merged, tally.skipped) == (
        13, 7, 4, {"empty_text": 1, "missing_author": 1})
    rows_ = query(target, "SELECT m.id, u.username, m.text, m.pub_date, m.flagged "
                          "FROM messages m JOIN users u ON u.id = m.author_id ORDER BY m.id")
    # The direct path keeps the file's ids; the staged path numbers the rows it writes.
    assert [row[0] for row in rows_] == ([1, 3, 4, 5, 9, 11, 12] if method == "direct" else list(range(1, 8)))
    assert [row[1:] for row in rows_] == _expected_messages(users, messages)


@pytest.mark.parametrize("method", ["direct", "staged"])
def test_large_source_keeps_the_rule_when_copies_are_spread_out(target, tmp_path, method):
    # Enough rows that the copies sit far apart in reading order and in time order.
    users = [(i, f"user{i}", f"u{i}@x", "h") for i in range(1, 51)]
    start = datetime(2016, 1, 1, tzinfo=timezone.utc).timestamp()
    messages = []
    for i in range(1, 3001):
        moment = datetime.fromtimestamp(start + (i * 7919) % 1000, timezone.utc)
        messages.append((i, 1 + i % 50, f"twoot {i % 400}", moment, i % 13 == 0))
    source = tmp_path / "spread.db"
    write_minitwit_sqlite(source, users, [], messages)
    report = migrate([source], target, allow_direct=method == "direct")
    assert report.ok and report.method == method
    expected = _expected_messages(users, messages)
    assert report.totals()["messages"].merged == len(messages) - len(expected) > 0
    rows_ = query(target, "SELECT u.username, m.text, m.pub_date, m.flagged "
                          "FROM messages m JOIN users u ON u.id = m.author_id ORDER BY m.id")
    assert rows_ == expected


# --- the direct path: one MiniTwit file into an empty target ---------------------

def _tricky_minitwit(path: Path) -> None:
    """A MiniTwit file with every rule at work: users skipped and matched by name,
    unknown users, copies with other flags, odd values that must survive as they are."""
    connection = sqlite3.connect(path)
    connection.executescript(MINITWIT_SCHEMA.replace(" not null", ""))  # a laxer variant
    connection.executemany("INSERT INTO user VALUES (?, ?, ?, ?)", [
        (1, "alice", "a@x", "h1"), (2, "bob", "b@x", "h2"),
        (4, "alice", "a2@x", "h3"),      # alice again: one user, her follows and messages merge
        (5, "", "e@x", "h"),             # skipped: empty username
        (6, "carol", "c@x", None),       # skipped: no password hash
        (7, "dave", "d@x", "h"), (9, "erin", None, "h"),
    ])
    connection.executemany("INSERT INTO follower VALUES (?, ?)", [
        (1, 2), (1, 2), (4, 2), (2, 1), (5, 1), (8, 1), (7, 9), (2, 7), (9, 9),
    ])
    at = int(datetime(2020, 5, 1, 12, tzinfo=timezone.utc).timestamp())
    connection.executemany("INSERT INTO message VALUES (?, ?, ?, ?, ?)", [
        (10, 1, 'say "hi", then\nleave', at, 0),
        (11, 4, 'say "hi", then\nleave', at, 1),   # alice's copy under her other id, other flag
        (12, 2, "back\\slash\ttab\r\nand 🐦 ünïcødé", at, None),
        (13, 2, "back\\slash\ttab\r\nand 🐦 ünïcødé", at, 2),  # copy
        (14, 2, "back\\slash\ttab\r\nand 🐦 ünïcødé", at + 1, 0),
        (15, 7, "123", at, 0),                       # stored as a number (MiniTwit's `string`)
        (16, 7, "before 1970", -86400 * 365, 0),
        (17, 7, "", at, 0), (18, 7, None, at, 0),    # skipped: empty text
        (19, 7, "no time", None, 0),                 # skipped: missing time
        (20, 8, "nobody", at, 0), (21, 5, "skipped author", at, 0),  # skipped: missing author
        (25, 9, "last", at + 2, 1),
    ])
    connection.commit()
    connection.close()


def _by_names(url: str) -> dict[str, list[tuple]]:
    """The target's rows with users named instead of numbered (ids may differ between paths)."""
    return {
        "users": query(url, "SELECT username, email, pw_hash, is_admin FROM users ORDER BY username"),
        "follows": query(url, "SELECT a.username, b.username FROM follows f JOIN users a ON a.id = f.follower_id "
                              "JOIN users b ON b.id = f.followed_id ORDER BY 1, 2"),
        "messages": query(url, "SELECT u.username, m.text, m.pub_date, m.flagged FROM messages m "
                               "JOIN users u ON u.id = m.author_id ORDER BY m.pub_date, u.username, m.text"),
    }


def test_direct_and_staged_paths_agree_on_every_rule(target, tmp_path):
    source = tmp_path / "tricky.db"
    _tricky_minitwit(source)
    direct = migrate([source], target)
    with empty_target() as other:
        staged = migrate([source], other, allow_direct=False)
        staged_rows = _by_names(other)
    assert (direct.method, staged.method) == ("direct", "staged")
    assert direct.ok and staged.ok and direct.committed
    assert totals(direct) == totals(staged)
    assert totals(direct)["messages"] == (13, 6, 2, {"empty_text": 2, "missing_time": 1, "missing_author": 2}, {})
    assert totals(direct)["follows"] == (9, 5, 2, {"missing_user": 2}, {})
    assert _by_names(target) == staged_rows
    texts = [row[1] for row in staged_rows["messages"]]
    assert "back\\slash\ttab\r\nand 🐦 ünïcødé" in texts and 'say "hi", then\nleave' in texts and "123" in texts
    # The direct path keeps the file's message ids.
    assert [row[0] for row in query(target, "SELECT id FROM messages ORDER BY id")] == [10, 12, 14, 15, 16, 25]


def test_direct_path_verification_catches_a_changed_row(target, tmp_path):
    """A trigger on the (empty) target rewrites text: the read-back differs, nothing is committed."""
    empty = tmp_path / "empty.db"
    write_minitwit_sqlite(empty, [], [], [])
    assert migrate([empty], target).method == "direct"  # the schema, no rows
    with psycopg2.connect(target) as connection, connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.id = 16 THEN NEW.text := upper(NEW.text); END IF; RETURN NEW; END $$;"
            "CREATE TRIGGER shout BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION shout()"
        )
    connection.close()
    source = tmp_path / "tricky.db"
    _tricky_minitwit(source)
    report = migrate([source], target)
    assert report.method == "direct" and not report.ok and not report.committed
    assert not report.verification["messages"].ok
    assert all(check.ok for name, check in report.verification.items() if name != "messages")
    assert query(target, "SELECT count(*) FROM messages") == [(0,)]


def test_files_the_direct_path_cannot_carry_take_the_staged_path(target, tmp_path):
    source = tmp_path / "fraction.db"
    _tricky_minitwit(source)
    with sqlite3.connect(source) as connection:  # a time with a fraction of a second
        connection.execute("UPDATE message SET pub_date = pub_date + 0.25 WHERE message_id = 25")
    connection.close()
    report = migrate([source], target)
    assert report.method == "staged" and report.ok
    assert query(target, "SELECT pub_date FROM messages WHERE text = 'last'")[0][0].microsecond == 250000


def test_the_direct_path_is_for_one_file_into_an_empty_target(samples, target, tmp_path):
    minitwit = next(path for path in samples if path.suffix == ".sqlite")
    tried = migrate([minitwit], target, dry_run=True)
    assert (tried.method, tried.ok, tried.committed) == ("direct", True, False)
    assert dump_target(target) == {"users": None, "messages": None, "follows": None}
    assert migrate([minitwit], target).method == "direct"
    assert migrate([minitwit], target, merge=True).method == "staged"  # the target holds rows now
    with empty_target() as other:
        assert migrate([minitwit, minitwit], other).method == "staged"


def test_follows_beyond_the_read_ahead_stream_after_it(target, tmp_path, monkeypatch):
    monkeypatch.setattr(direct, "READ_AHEAD_BYTES", 1)  # one chunk ahead, the rest streamed
    source = tmp_path / "follows.db"
    users = [(i, f"user{i}", f"u{i}@x", "h") for i in range(1, 201)]
    follows = [(1 + i % 200, 1 + (i * 7 + (i // 200) % 40) % 200) for i in range(12_000)]  # 4,000 copies
    write_minitwit_sqlite(source, users, follows, _numbered_twoots(10, users=200))
    report = migrate([source], target)
    assert report.ok and report.method == "direct"
    distinct = len(set(follows))
    assert distinct == 8_000 and totals(report)["follows"] == (12_000, distinct, 4_000, {}, {})
    assert query(target, "SELECT count(*) FROM follows") == [(distinct,)]


@pytest.mark.parametrize("method", ["direct", "staged"])
@pytest.mark.parametrize("table, damage, row", [
    ("message", "text = CAST(x'5a6feb' AS TEXT)", "message_id 2"),  # Latin-1 bytes where UTF-8 belongs
    ("message", "author_id = 'alice'", "message_id 2"),             # a name where an id belongs
    ("follower", "whom_id = 'alice'", "rowid 2"),
])
def test_a_value_postgresql_refuses_names_the_file_and_row(target, tmp_path, method, table, damage, row):
    source = tmp_path / "damaged.db"
    write_minitwit_sqlite(source, [(1, "alice", "a@x", "h")], [(1, 1), (1, 1)], _numbered_twoots(3, users=1))
    with sqlite3.connect(source) as connection:
        connection.execute(f"UPDATE {table} SET {damage} WHERE {row.replace(' ', ' = ')}")
    connection.close()
    with pytest.raises(SourceError) as raised:
        migrate([source], target, allow_direct=method == "direct")
    assert str(raised.value).startswith(f"{source}: table {table}, {row}: a value cannot be stored")
    assert dump_target(target) == {"users": None, "messages": None, "follows": None}
    result = run_cli(source, "--to", target)
    assert result.exit_code == 2 and "the target is unchanged" in result.output
