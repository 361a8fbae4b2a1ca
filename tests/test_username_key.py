"""Revision 0002: every user has a comparison key, existing rows are keyed, clashing names stop the upgrade."""
from __future__ import annotations

import subprocess

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy.exc import IntegrityError

from tests.servers import run_twooter
from twooter import models
from twooter.extensions import db
from twooter.schema import UpgradeRefused


def _at_revision_0001_with(app, usernames):
    """Downgrade to 0001 and insert users the older rules allowed, each with a twoot and a follow."""
    with app.app_context():
        downgrade(revision="0001")
        with db.engine.begin() as connection:
            for name in usernames:
                connection.execute(
                    sa.text("INSERT INTO users (username, email, pw_hash) VALUES (:n, 'x@example.com', 'h')"),
                    {"n": name},
                )
            ids = [row[0] for row in connection.exec_driver_sql("SELECT id FROM users ORDER BY id")]
            for user_id in ids:
                connection.execute(
                    sa.text("INSERT INTO messages (author_id, text, pub_date, flagged) "
                            "VALUES (:a, 'hello', :d, false)"),
                    {"a": user_id, "d": "2026-01-01 00:00:00"},
                )
            connection.execute(sa.text("INSERT INTO follows VALUES (:a, :b)"), {"a": ids[0], "b": ids[-1]})
    return ids


def _revision(app) -> str:
    with app.app_context(), db.engine.connect() as connection:
        return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()


def _user_columns(app) -> set[str]:
    with app.app_context():
        return {column["name"] for column in db.inspect(db.engine).get_columns("users")}


def _empty_and_upgraded(app) -> None:
    """Leave the shared test database as build_app expects it, whatever the test did."""
    with app.app_context():
        with db.engine.begin() as connection:
            for table in ("follows", "messages", "users"):
                connection.exec_driver_sql(f"DELETE FROM {table}")
        upgrade()


def test_upgrade_keys_existing_users_and_keeps_their_twoots_and_follows(app):
    try:
        _at_revision_0001_with(app, ["Alice", "José", "bob"])
        with app.app_context():
            upgrade(revision="0002")
            with db.engine.connect() as connection:
                keys = dict(connection.exec_driver_sql("SELECT username, username_key FROM users").all())
                counts = [connection.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()
                          for t in ("messages", "follows")]
        assert keys == {"Alice": "alice", "José": "josé", "bob": "bob"}
        assert counts == [3, 1]
        assert _revision(app) == "0002"
    finally:
        _empty_and_upgraded(app)


def test_upgrade_stops_naming_users_whose_names_are_one_name_now(app):
    try:
        ids = _at_revision_0001_with(app, ["Alice", "alice", "carol", "Jose\u0301", "jos\u00e9"])
        with app.app_context(), pytest.raises(UpgradeRefused) as refused:
            upgrade()
        message = refused.value.message
        assert f"'Alice' (id {ids[0]}), 'alice' (id {ids[1]})" in message
        assert "'Jose\u0301'" in message and "'jos\u00e9'" in message
        assert "carol" not in message
        assert "Nothing was changed" in message and "Rename all but one" in message
        assert _revision(app) == "0001"
        assert "username_key" not in _user_columns(app)
        with app.app_context(), db.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM messages").scalar_one() == 5
    finally:
        _empty_and_upgraded(app)


def test_twooter_db_upgrade_reports_the_clash_and_exits_non_zero(app, backend, request, tmp_path):
    database_url = request.getfixturevalue("postgres").url if backend == "postgresql" else None
    try:
        _at_revision_0001_with(app, ["Dave", "dave"])
        instance = app.instance_path
        process = run_twooter(instance, "db", "upgrade", database_url=database_url,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = process.communicate(timeout=120)
        assert process.returncode != 0
        assert "'Dave'" in err and "'dave'" in err and "Rename all but one" in err
        assert "Traceback" not in err
        assert _revision(app) == "0001"
    finally:
        _empty_and_upgraded(app)


def test_downgrade_removes_the_key_and_upgrade_restores_it(app):
    try:
        with app.app_context():
            models.create_user("Erin", "e@example.com", "h")
            db.session.remove()
            downgrade(revision="0001")
        assert "username_key" not in _user_columns(app)
        with app.app_context():
            upgrade()
            assert models.user_by_name("ERIN").username == "Erin"
    finally:
        _empty_and_upgraded(app)


def test_two_users_cannot_share_a_key(app):
    with app.app_context():
        models.create_user("Frank", "f@example.com", "h")
        with pytest.raises(IntegrityError):
            models.create_user("frank", "f2@example.com", "h")


def test_lookups_by_name_compare_by_key(app):
    with app.app_context():
        models.create_user("Grace", "g@example.com", "h")
        models.create_user("Jos\u00e9", "j@example.com", "h")
        assert models.user_by_name("grace").username == "Grace"
        assert models.user_by_name("JOSE\u0301").username == "Jos\u00e9"
        assert models.user_by_name("grace\u200b") is None
        assert models.post_message_by_name("GRACE", "hi")
        ids = models.user_ids_by_name("gRACE", "jose\u0301")
        assert set(ids) == {"gRACE", "jose\u0301"}
        assert ids["gRACE"] == models.user_by_name("Grace").id
        assert models.user_ids_by_name("grace", "nobody") == {"grace": ids["gRACE"]}
        db.session.commit()
        assert [m["user"] for m in models.latest_messages(10)] == ["Grace"]
