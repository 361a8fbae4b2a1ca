"""The schema as the migrations build it, and the database settings the app relies on."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from tests.servers import build_app
from tests import seed
from twooter.data import tables as models
from twooter.extensions import db


def test_migrations_match_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_migrations_downgrade_and_upgrade_again(app):
    with app.app_context():
        downgrade(revision="base")
        tables = set(db.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        upgrade()
        assert {"users", "messages", "follows", "latest_action"} <= set(
            db.inspect(db.engine).get_table_names()
        )


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path):
    app = build_app("sqlite", tmp_path, None)
    with app.app_context(), db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_times_are_stored_and_read_as_utc(app):
    local = datetime(2026, 3, 1, 11, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1)))
    with app.app_context():
        author = seed.user("clock", "c@example.com", "x")
        message_id = seed.twoot(author, "tick", local)
        db.session.expire_all()
        stored = db.session.get(models.Message, message_id).pub_date
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == local
    assert stored.strftime("%Y-%m-%d @ %H:%M") == "2026-03-01 @ 10:30"


def _plan(app, query) -> str:
    with app.app_context():
        connection = db.session.connection()
        compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
            return "\n".join(str(row[-1]) for row in rows)
        # Tiny test tables make any plan cheap; ask whether an ordered index path exists.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        connection.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
        return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}"))


def _timeline_query(conditions):
    from sqlalchemy import false, select

    return (
        select(models.Message.id)
        .where(models.Message.flagged == false(), *conditions)
        .order_by(models.Message.pub_date.desc(), models.Message.id.desc())
        .limit(31)
    )


def test_public_and_user_timelines_read_an_index_in_order_without_sorting(app):
    public_plan = _plan(app, _timeline_query(()))
    user_plan = _plan(app, _timeline_query((models.Message.author_id == 1,)))
    assert "ix_messages_public_time" in public_plan, public_plan
    assert "ix_messages_author_time" in user_plan, user_plan
    for plan in (public_plan, user_plan):
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_each_follow_pair_is_stored_once(app):
    with app.app_context():
        reader = seed.user("reader", "r@example.com", "x")
        writer = seed.user("writer", "w@example.com", "x")
        seed.follow(reader, writer)
        seed.follow(reader, writer)
        count = db.session.execute(text("SELECT count(*) FROM follows")).scalar()
    assert count == 1
