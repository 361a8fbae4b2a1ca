"""Names registered under older rules, migrated by one rule: counted, listed, and every
migrated user logs in to a real app server on the migrated PostgreSQL and has a page."""
from __future__ import annotations

import unicodedata
from datetime import datetime, timezone
from urllib.parse import quote

import pytest

from migrate_tools import usernames
from migrate_tools.pipeline import migrate
from migrate_tools.samples.writers import werkzeug_pbkdf2, write_minitwit_sqlite, write_snapshot
from tests.servers import LiveServer
from tests.test_migrate_postgres import engine_url, query, target  # noqa: F401  (fixture)
from tests.twooter_client import TwooterClient
from twooter import accounts, create_app, names

AT = datetime(2020, 6, 1, 12, tzinfo=timezone.utc)
NFD_JOSE = unicodedata.normalize("NFD", "José")
# (id, name in the old file): one person each.
OLD_NAMES = [
    (1, "Alice"), (2, "alice"), (3, "public"), (4, "a/b"), (5, ".."), (6, NFD_JOSE), (7, "hun\u200bter"),
    (8, "Login"), (9, " bob"), (10, "alice-2"), (11, "x" * 70), (12, "favicon.ico"), (13, "tab\there"),
]
# A later stage: Alice again (the same person, same name), and another case variant.
LATER_NAMES = [(1, "Alice"), (2, "ALICE")]


def password(source: str, user_id: int) -> str:
    return f"{source}-{user_id}-secret"


def _hash(source: str, user_id: int) -> str:
    return werkzeug_pbkdf2(password(source, user_id), f"salt{user_id}", iterations=1000)


def write_sources(tmp_path):
    old = tmp_path / "minitwit.db"
    write_minitwit_sqlite(old, [(i, name, f"u{i}@old", _hash("old", i)) for i, name in OLD_NAMES], [(2, 1), (3, 1)],
                          [(i, i, f"twoot by old user {i}", AT, 0) for i, _ in OLD_NAMES])
    later = tmp_path / "later.json"
    write_snapshot(later, [(i, name, f"u{i}@later", _hash("later", i)) for i, name in LATER_NAMES], [(2, 1)],
                   [(i, i, f"twoot by later user {i}", AT, 0) for i, _ in LATER_NAMES], exported_at=AT)
    return old, later


def stored_name(report, source: int, old: str) -> str:
    """The name a user of that source has in the target (renamed or not)."""
    renamed = {(r.source, r.old): r.new for r in report.renames}
    return renamed.get((source, old), old)


def test_the_rule_as_documented():
    decisions, renames = usernames.decide(["Carol"], [
        (0, 1, "Alice"), (0, 2, "alice"), (0, 3, "public"), (0, 4, "a/b"), (0, 5, ".."), (0, 6, "alice-2"),
        (1, 7, "Alice"), (1, 8, "carol"), (1, 9, NFD_JOSE), (1, 10, "Carol")])
    assert [(r.source, r.old, r.new, r.reason) for r in renames] == [
        (0, "alice", "alice-3", usernames.CASE_VARIANT),  # alice-2 is someone's own name
        (0, "public", "public-2", usernames.RESERVED),
        (0, "a/b", "ab-2", usernames.UNREACHABLE),
        (0, "..", "user-2", usernames.UNREACHABLE),
        (1, "carol", "carol-2", usernames.CASE_VARIANT),  # the target's Carol keeps the name
        (1, NFD_JOSE, "José", usernames.NORMALIZED),
    ]
    assert decisions[(1, 7)] == decisions[(0, 1)] == usernames.Decision("Alice", "alice", None)
    assert decisions[(1, 10)].username == "Carol"


def test_many_names_at_once_get_the_answers_of_one_at_a_time():
    tricky = [name for _, name in OLD_NAMES] + [
        "ok", "a b", "a  b", " ", "", ".", "...", "Public", "PUBLIC", "x" * 64, "x" * 65, " x" * 40, "\u202eevil",
        "zero\ufeffwidth", "line\u2028break", "nbsp\u00a0here", "e\u0301", "ß", "İ", "🐦", "\x7f", "a/", "/"]
    expected = {name: problem for name in tricky
                if (problem := names.name_problem(name, names.RESERVED_NAMES)) is not None}
    assert names.name_problems(tricky, names.RESERVED_NAMES) == expected
    assert len(expected) > 15 and set(expected.values()) == {
        names.TOO_LONG, names.EDGE_WHITESPACE, names.BAD_CHARACTER, names.NOT_A_PATH_SEGMENT, names.RESERVED}


def test_the_reserved_names_are_the_apps(tmp_path):
    """names.RESERVED_NAMES, which the migration uses without an app, is what the app routes."""
    app = create_app({"INSTANCE_PATH": tmp_path, "SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True})
    with app.app_context():
        assert names.RESERVED_NAMES == accounts.reserved_names()


@pytest.mark.parametrize("method", ["direct", "staged"])
def test_every_migrated_user_logs_in_and_has_a_page(target, tmp_path, method):
    old, later = write_sources(tmp_path)
    sources = [old] if method == "direct" else [old, later]
    report = migrate(sources, target)
    assert report.ok and report.committed and report.method == method
    stored = dict(query(target, "SELECT username, username_key FROM users"))
    # Every stored name is one the app can serve, and no two are one name.
    assert all(names.name_problem(name, names.RESERVED_NAMES) is None for name in stored)
    assert len({names.name_key(name) for name in stored}) == len(stored)
    assert all(key == names.name_key(name) for name, key in stored.items())
    assert stored_name(report, 0, "Alice") == "Alice" and stored_name(report, 0, "x" * 70) == "x" * 62 + "-2"
    reasons = (usernames.CASE_VARIANT, usernames.RESERVED, usernames.UNREACHABLE, usernames.NORMALIZED,
               usernames.TOO_LONG)
    conflicts = {k: n for k, n in report.sources[0].tables["users"].conflicts.items() if k in reasons}
    assert conflicts == {usernames.CASE_VARIANT: 1, usernames.RESERVED: 3, usernames.UNREACHABLE: 5,
                         usernames.NORMALIZED: 1, usernames.TOO_LONG: 1}
    assert {r.old for r in report.renames if r.source == 0} == {
        "alice", "public", "a/b", "..", NFD_JOSE, "hun\u200bter", "Login", " bob", "favicon.ico", "tab\there", "x" * 70}
    people = [(0, "old", i, name) for i, name in OLD_NAMES]
    if method == "staged":
        people += [(1, "later", i, name) for i, name in LATER_NAMES]
        assert stored_name(report, 1, "Alice") == "Alice"  # the same person as the old Alice
        assert report.sources[1].tables["users"].conflicts[usernames.CASE_VARIANT] == 1
    assert len(stored) == len(OLD_NAMES) + (1 if method == "staged" else 0)
    rendered = report.as_dict()["renames"]
    assert {(r["old"], r["new"]) for r in rendered} == {(r.old, r.new) for r in report.renames}
    app = create_app({"INSTANCE_PATH": tmp_path / "instance", "SQLALCHEMY_DATABASE_URI": engine_url(target),
                      "TESTING": True})
    with LiveServer(app) as server:
        for source, stage, user_id, old_name in people:
            name = stored_name(report, source, old_name)
            client = TwooterClient(server.url)
            # The Alice of both stages is one user: the newest stage's hash is hers now.
            secret = password("later", 1) if name == "Alice" and method == "staged" else password(stage, user_id)
            assert "You were logged in" in client.login(name, secret).text, name
            page = client.get(f"/{quote(name, safe='')}")
            assert page.status_code == 200, name
            assert f"twoot by {stage} user {user_id}" in page.text
